# METADATA
# title: Model access by role
# description: |
#   Which models a caller may use, for which kinds of request, and how long
#   an answer may be: all read from the roles in policies/data/roles.json.
#   The caller's roles are the realm and client roles of its token, flattened
#   by the gateway. A role the data does not list grants nothing; a role with
#   `valid_until` grants only while it is in force (time-bound grants, such as
#   a contractor's).
# custom:
#   controls:
#     - nist_800_53_rev5/AC-3
package sovstack.access

import data.sovstack.validity

_roles := object.get(input, ["subject", "roles"], [])

_kind := object.get(input, ["action", "kind"], null)

_model := object.get(input, "model", null)

# METADATA
# title: active_roles
# description: The caller's roles that the policy data lists and that are in force now.
active_roles contains name if {
	some name in _roles
	validity.in_force(data.plant.roles[name])
}

# METADATA
# title: actions
# description: Every kind of request some active role of the caller allows.
actions contains kind if {
	some name in active_roles
	some kind in data.plant.roles[name].actions
}

# METADATA
# title: granting_roles
# description: |
#   The active roles that allow this request: listing the models (kind
#   "models"), or this kind of request on this model.
# scope: document
granting_roles contains name if {
	_kind == "models"
	some name in active_roles
	"models" in data.plant.roles[name].actions
}

granting_roles contains name if {
	_kind != "models"
	some name in active_roles
	_kind in data.plant.roles[name].actions
	_model in data.plant.roles[name].models
}

# METADATA
# title: granted
# description: Some active role of the caller allows this request.
granted if count(granting_roles) > 0

# METADATA
# title: max_tokens
# description: |
#   The most tokens one answer may take: the highest cap among the roles
#   that allow the request. A granting role without a cap lifts it (null).
# scope: document
default max_tokens := null

max_tokens := max({data.plant.roles[name].max_tokens | some name in granting_roles}) if {
	_kind != "models"
	granted
	not _uncapped
}

# Some role that allows the request sets no cap, or one that is not a number.
_uncapped if {
	some name in granting_roles
	not is_number(object.get(data.plant.roles[name], "max_tokens", null))
}

# METADATA
# title: denials
# description: Why the caller's roles do not allow this request, in words.
# scope: document
denials contains "no role of the caller may list the models" if {
	_kind == "models"
	not granted
}

denials contains msg if {
	_kind != "models"
	not granted
	msg := sprintf("no role of the caller may use model %v for %v requests", [_model, _kind])
}

denials contains msg if {
	some name in _roles
	role := data.plant.roles[name]
	not name in active_roles # listed, and out of force: in_force was asked once, for active_roles
	msg := sprintf("role %v is no longer in force (valid until %v)", [name, role.valid_until])
}

# METADATA
# title: grounds
# description: Which roles allow this request, and the cap they set, in words.
# scope: document
grounds contains msg if {
	_kind == "models"
	some name in granting_roles
	msg := sprintf("role %v may list the models", [name])
}

grounds contains msg if {
	_kind != "models"
	some name in granting_roles
	msg := sprintf("role %v may use model %v for %v requests", [name, _model, _kind])
}

grounds contains msg if {
	is_number(max_tokens)
	msg := sprintf("answers are capped at %v tokens", [max_tokens])
}
