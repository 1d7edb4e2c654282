# METADATA
# title: Data classification and clearance
# description: |
#   The classification a request is judged by, and whether the caller may
#   send data of that class. Classifications, their ranks and what each
#   requires live in policies/data/classifications.json; each client's
#   default and floor in policies/data/clients.json. A classification the
#   data does not list is refused. A request that sends none is judged by its
#   client's `default_classification`, else by `classification_when_missing`,
#   and is refused when neither is set. A client may not declare its data
#   below its floor (`min_classification`, else `classification_floor`), so it
#   cannot escape retention and residency rules by calling its data public.
#   A caller may send data up to its clearance (by rank); a caller without one
#   gets `clearance_when_missing`, if set.
# custom:
#   controls:
#     - nist_800_53_rev5/AC-3
#     - nist_800_53_rev5/SC-28
package sovstack.classification

_sent := object.get(input, "data_classification", null)

_held := object.get(input, ["subject", "clearance"], null)

_client := object.get(input, ["subject", "client_id"], null)

# The client's own setting, else the plant-wide one; null when neither is set.
_setting(client, own, plant_wide) := value if {
	value := object.get(object.get(object.get(data.plant, "clients", {}), client, {}), own, null)
	value != null
} else := object.get(data.plant, plant_wide, null)

# METADATA
# title: default_for
# description: |
#   The classification a request from `client` that sends none is judged
#   by: the client's `default_classification`, else
#   `classification_when_missing`; null when neither is set.
default_for(client) := _setting(client, "default_classification", "classification_when_missing")

# METADATA
# title: lowest_for
# description: |
#   The lowest classification `client` may declare: its
#   `min_classification`, else `classification_floor`; null when neither is set.
lowest_for(client) := _setting(client, "min_classification", "classification_floor")

_lowest := lowest_for(_client)

# METADATA
# title: used
# description: |
#   The classification the decision used, as the audit record shows it: the
#   one sent, else the client's default; null when there is none.
# scope: document
used := _sent if _sent != null

else := default_for(_client)

# METADATA
# title: effective
# description: The classification the request is judged by; undefined when there is none.
effective := used if used != null

# METADATA
# title: known
# description: The effective classification is one the policy data lists.
known if data.plant.classifications[effective]

# METADATA
# title: above_floor
# description: The effective classification ranks at least as high as the client's floor, or there is no floor.
# scope: document
above_floor if {
	known
	_lowest == null
}

above_floor if data.plant.classifications[effective].rank >= data.plant.classifications[_lowest].rank

# METADATA
# title: clearance
# description: The clearance the caller is judged by; undefined when there is none.
# scope: document
clearance := _held if _held != null

else := data.plant.clearance_when_missing if data.plant.clearance_when_missing != null

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
denials contains "no data classification was sent, and the policy data sets no default for this client" if {
	not effective
}

denials contains msg if {
	not known
	msg := sprintf("data classification %v is not one the policy data lists", [effective])
}

denials contains msg if {
	known
	not above_floor
	msg := sprintf(
		"client %v may not declare its data %v: its data is at least %v",
		[_client, effective, _lowest],
	)
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
	msg := sprintf("no data classification was sent: treated as %v, the policy's default for this client", [effective])
}

grounds contains msg if {
	cleared
	msg := sprintf("clearance %v covers %v data", [clearance, effective])
}

grounds contains "the audit log keeps this request's content, encrypted" if store_content
