# METADATA
# title: sovstack authorization
# description: |
#   The decision the gateway asks OPA for on every request
#   (POST /v1/data/sovstack/decision), and the list of models it shows a
#   caller (POST /v1/data/sovstack/visible_models). Both come from the same
#   rules: model access by role (sovstack.access), data classification and
#   clearance (sovstack.classification), and where data may be processed
#   (sovstack.placement). Everything a plant decides lives in
#   policies/data/; nothing here names a model, a role or a site.
# custom:
#   controls:
#     - nist_800_53_rev5/AC-3
#     - nist_800_53_rev5/SC-7
#     - nist_800_53_rev5/SC-28
#     - nist_800_53_rev5/SC-6
package sovstack

import data.sovstack.access
import data.sovstack.classification
import data.sovstack.placement
import data.sovstack.quota

_kind := object.get(input, ["action", "kind"], null)

# METADATA
# title: decision
# description: |
#   Always an object: allow, the reasons (why allowed or why denied, in
#   words an auditor reads), the obligations the gateway must keep
#   (store_content: keep the prompt and completion encrypted in the audit log;
#   max_tokens: cap the answer, or null), and the ids of the offered replicas
#   the request may go to (empty when denied), and the data classification
#   the decision used (the one sent, or the client's default; null when none),
#   which the gateway records as the request's classification.
# entrypoint: true
# custom:
#   controls:
#     - nist_800_53_rev5/AC-3
#     - nist_800_53_rev5/AU-3
#     - nist_800_53_rev5/SC-28
decision := {
	"allow": allow,
	"reasons": reasons,
	"obligations": {
		"store_content": classification.store_content,
		"max_tokens": access.max_tokens,
	},
	"allowed_replicas": allowed_replicas,
	"data_classification": classification.used,
}

# METADATA
# title: allow
# description: |
#   Listing the models needs a role that allows it. Any other request needs a
#   role that allows this kind of request on this model, a known
#   classification no lower than the client's floor and covered by the
#   caller's clearance, a model approved for it,
#   at least one offered replica that may take it, and no spent quota.
# scope: document
default allow := false

allow if {
	_kind == "models"
	access.granted
}

allow if {
	_kind != "models"
	access.granted
	classification.above_floor
	classification.cleared
	placement.model_approved
	count(placement.eligible) > 0
	count(quota.denials) == 0
}

# METADATA
# title: reasons
# description: Why the request is allowed, or every reason it is denied.
# scope: document
reasons := sort(_grounds) if allow

else := sort(_denials)

# Like reasons, one rule with an else, rather than two rules with opposite
# conditions: the else is evaluated only when the first condition fails.
_grounds := access.grounds if _kind == "models"

else := ((access.grounds | classification.grounds) | placement.grounds) | quota.grounds

_denials := access.denials if _kind == "models"

else := ((access.denials | classification.denials) | placement.denials) | quota.denials

# METADATA
# title: allowed_replicas
# description: The ids of the offered replicas this request may be sent to, in order; empty unless allowed.
# scope: document
default allowed_replicas := []

allowed_replicas := sort(placement.eligible) if {
	_kind != "models"
	allow
}

# METADATA
# title: visible_models
# description: |
#   The models GET /v1/models lists for this caller: every declared model the
#   decision would allow it to use for some kind of request its roles allow,
#   with the classification it sent, or else its client's default. When it
#   sent none and there is no default, a model is listed if some
#   classification it may declare would do.
# entrypoint: true
# custom:
#   controls:
#     - nist_800_53_rev5/AC-3
visible_models := sort(_usable_models)

_usable_models contains model if {
	some model, _ in data.plant.models
	some kind in access.actions
	kind != "models"
	some class in _classifications_to_try

	# Evaluating the decision itself for each model is what keeps this list and
	# the decision from ever disagreeing; a handful of models makes it cheap.
	# regal ignore:with-outside-test-context
	allow with input.model as model with input.action.kind as kind with input.data_classification as class
}

_classifications_to_try contains classification.effective

_classifications_to_try contains name if {
	not classification.effective
	some name, _ in data.plant.classifications
}
