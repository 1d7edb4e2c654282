# METADATA
# title: Gateway decision (interim)
# description: >-
#   A minimal decision until the full policy set lands: callers with a
#   working role may send known classifications to replicas at their own site.
package sovstack

import rego.v1

_working_roles := {"operator", "engineer", "data-steward"}

_known_classes := {"public", "internal", "confidential", "restricted"}

_role_ok if {
	some role in input.subject.roles
	role in _working_roles
}

_class_ok if input.data_classification in _known_classes

_replicas := [r.id | some r in input.replicas; r.site == input.subject.site]

default decision := {"allow": false, "reasons": ["no working role"], "obligations": {}, "allowed_replicas": []}

decision := {"allow": false, "reasons": ["unknown data classification"], "obligations": {}, "allowed_replicas": []} if {
	_role_ok
	not _class_ok
}

decision := {
	"allow": count(_replicas) > 0,
	"reasons": ["working role, known classification, replica at the caller's site"],
	"obligations": {"store_content": input.data_classification == "restricted", "max_tokens": null},
	"allowed_replicas": _replicas,
} if {
	_role_ok
	_class_ok
}

default visible_models := []

visible_models := sort({r.model | some r in input.replicas; r.site == input.subject.site}) if _role_ok
