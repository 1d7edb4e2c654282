# METADATA
# title: Data classification and clearance
# description: |
#   The classification a request is judged by, and whether the caller may
#   send data of that class. Classifications, their ranks and what each
#   requires live in policies/data/classifications.json. A classification the
#   data does not list is refused; so is a missing one, unless the data sets
#   `classification_when_missing`. A caller may send data up to its clearance
#   (by rank); a caller without one gets `clearance_when_missing`, if set.
# custom:
#   controls:
#     - nist_800_53_rev5/AC-3
#     - nist_800_53_rev5/SC-28
package sovstack.classification

_sent := object.get(input, "data_classification", null)

_held := object.get(input, ["subject", "clearance"], null)

# METADATA
# title: effective
# description: The classification the request is judged by; undefined when there is none.
# scope: document
effective := _sent if _sent != null

effective := data.plant.classification_when_missing if {
	_sent == null
	data.plant.classification_when_missing != null
}

# METADATA
# title: known
# description: The effective classification is one the policy data lists.
known if data.plant.classifications[effective]

# METADATA
# title: clearance
# description: The clearance the caller is judged by; undefined when there is none.
# scope: document
clearance := _held if _held != null

clearance := data.plant.clearance_when_missing if {
	_held == null
	data.plant.clearance_when_missing != null
}

# METADATA
# title: cleared
# description: The caller's clearance ranks at least as high as the data it sends.
cleared if data.plant.classifications[clearance].rank >= data.plant.classifications[effective].rank

# METADATA
# title: store_content
# description: Whether the audit log must keep this request's content (encrypted).
# scope: document
default store_content := false

store_content := data.plant.classifications[effective].store_content

# METADATA
# title: denials
# description: Why the data may not be sent, in words.
# scope: document
denials contains "no data classification was sent, and the policy data sets no default" if {
	not effective
}

denials contains msg if {
	not known
	msg := sprintf("data classification %v is not one the policy data lists", [effective])
}

denials contains msg if {
	known
	not cleared
	msg := sprintf("clearance %v does not cover %v data", [clearance, effective])
}

denials contains msg if {
	known
	not clearance
	msg := sprintf("the caller has no clearance, so it may not send %v data", [effective])
}

# METADATA
# title: grounds
# description: Which classification applies and why the caller may send it, in words.
# scope: document
grounds contains msg if {
	_sent == null
	known
	msg := sprintf("no data classification was sent: treated as %v, the policy default", [effective])
}

grounds contains msg if {
	cleared
	msg := sprintf("clearance %v covers %v data", [clearance, effective])
}

grounds contains "the audit log keeps this request's content, encrypted" if store_content
