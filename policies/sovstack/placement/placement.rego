# METADATA
# title: Where data may be processed
# description: |
#   Which model, and which of its replicas, may process this request's data.
#   A model is approved for data up to its `max_classification`
#   (policies/data/models.json). A replica must be declared in the policy
#   data, exactly as the gateway reports it, and serve the requested model.
#   Its jurisdiction and hosting must be ones the data's classification
#   allows (policies/data/classifications.json). Site residency: data of a
#   site-bound classification is processed only at the caller's own site,
#   unless a data-sharing agreement in force lets that classification go from
#   the caller's site to the replica's (policies/data/agreements.json). A
#   replica spanning several nodes (`nodes`: each node's site) is one replica
#   that runs at every one of its nodes' sites: each of them must be the
#   caller's or one an agreement covers.
# custom:
#   controls:
#     - nist_800_53_rev5/AC-3
#     - nist_800_53_rev5/AC-4
#     - nist_800_53_rev5/SC-7
package sovstack.placement

import data.sovstack.classification
import data.sovstack.validity

_model := object.get(input, "model", null)

_origin := object.get(input, ["subject", "site"], null)

_offered := object.get(input, "replicas", [])

_class := data.plant.classifications[classification.effective]

# The offered replicas the policy data declares, by id, as the data describes them.
_declared[id] := data.plant.replicas[id] if {
	some replica in _offered
	id := replica.id
}

# Where a declared replica runs: its own site (where its API is served) and, for
# a replica spanning several nodes, each node's site. A replica the data gives no
# site is at null, which is nobody's site.
_sites_of(replica) := {object.get(replica, "site", null)} | {at | some at in object.get(replica, "nodes", {})}

# Which of a replica's nodes are at a site: none for a single-node replica.
_nodes_at(replica, site) := {node | some node, at in object.get(replica, "nodes", {}); at == site}

# Where a replica runs, in words: at its site, or, spanning nodes, with which of them at a site.
_where(site, nodes) := sprintf("is at %v", [site]) if count(nodes) == 0

_where(site, nodes) := sprintf("has node(s) %v at %v", [concat(", ", sort(nodes)), site]) if count(nodes) > 0

# Why a replica may take data under an agreement, in words.
_under_agreement(id, _, nodes, agreement) := msg if {
	count(nodes) == 0
	msg := sprintf("replica %v may take it under data-sharing agreement %v", [id, agreement])
}

_under_agreement(id, site, nodes, agreement) := msg if {
	count(nodes) > 0
	msg := sprintf(
		"replica %v may take it under data-sharing agreement %v, which covers its node(s) %v at %v",
		[id, agreement, concat(", ", sort(nodes)), site],
	)
}

# The sites the caller's data may go to under an agreement in force, with the agreements' ids.
_agreements[site] contains agreement.id if {
	some agreement in data.plant.data_sharing_agreements
	site := agreement.to_site
	agreement.from_site == _origin
	classification.effective in agreement.classifications
	validity.in_force(agreement)
}

# METADATA
# title: model_approved
# description: The requested model is approved for data of this classification.
model_approved if {
	approved_up_to := data.plant.models[_model].max_classification
	data.plant.classifications[approved_up_to].rank >= _class.rank
}

# METADATA
# title: refusals
# description: For each offered replica that may not take the request, why not, in words.
# scope: document
refusals[id] contains msg if {
	some replica in _offered
	id := replica.id
	not data.plant.replicas[id]
	msg := sprintf("replica %v is not declared in the policy data", [id])
}

refusals[id] contains msg if {
	some replica in _offered
	id := replica.id
	declared := data.plant.replicas[id]

	# Most replicas are reported exactly as declared: then no attribute needs comparing.
	object.remove(replica, ["id"]) != declared
	some attribute, value in declared
	reported := object.get(replica, attribute, null)
	reported != value
	msg := sprintf(
		"replica %v: the gateway reports %v %v, the policy data says %v",
		[id, attribute, reported, value],
	)
}

refusals[id] contains msg if {
	some id, replica in _declared
	replica.model != _model
	msg := sprintf("replica %v serves model %v, not %v", [id, replica.model, _model])
}

refusals[id] contains msg if {
	some replica in _offered
	id := replica.id
	reported := object.get(replica, "nodes", null)
	not reported in {null, {}}
	declared := data.plant.replicas[id]
	not "nodes" in object.keys(declared)
	msg := sprintf("replica %v: the gateway reports nodes %v, the policy data declares it on one node", [id, reported])
}

refusals[id] contains msg if {
	_class.site_bound
	some id, replica in _declared
	some site in _sites_of(replica)
	site != _origin

	# Of the whole of _agreements, evaluated once: _agreements[site] would be
	# evaluated again for each site.
	not site in object.keys(_agreements)
	msg := sprintf(
		"replica %v %v, but %v data from %v stays at %v: no data-sharing agreement lets it go to %v",
		[id, _where(site, _nodes_at(replica, site)), classification.effective, _origin, _origin, site],
	)
}

refusals[id] contains msg if {
	some id, replica in _declared
	not replica.jurisdiction in _class.jurisdictions
	msg := sprintf(
		"replica %v is in %v, where %v data may not be processed",
		[id, replica.jurisdiction, classification.effective],
	)
}

refusals[id] contains msg if {
	some id, replica in _declared
	not replica.hosting in _class.hosting
	msg := sprintf(
		"replica %v is hosted %v, which %v data may not use",
		[id, replica.hosting, classification.effective],
	)
}

# METADATA
# title: eligible
# description: The ids of the offered replicas that may take this request.
# scope: document
default eligible := set()

# The declared ones less the refused ones, from the whole of refusals: asking
# refusals[id] for each id would evaluate every refusal rule again per replica.
eligible := object.keys(_declared) - object.keys(refusals) if _class

# METADATA
# title: denials
# description: Why the model, or every offered replica, may not take the request, in words.
# scope: document
denials contains msg if {
	not data.plant.models[_model]
	msg := sprintf("model %v is not declared in the policy data", [_model])
}

denials contains msg if {
	max_class := data.plant.models[_model].max_classification
	_class
	not model_approved
	msg := sprintf(
		"model %v is approved for data up to %v, not for %v data",
		[_model, max_class, classification.effective],
	)
}

denials contains msg if {
	_class
	count(_offered) == 0
	msg := sprintf("the gateway offered no replica of model %v", [_model])
}

denials contains msg if {
	_class
	count(_offered) > 0
	count(eligible) == 0
	msg := sprintf(
		"none of the %v offered replicas of model %v may take this request",
		[count(_offered), _model],
	)
}

denials contains msg if {
	count(eligible) == 0
	some msgs in refusals
	some msg in msgs
}

# METADATA
# title: grounds
# description: Why the model and each eligible replica may take the request, in words.
# scope: document
grounds contains msg if {
	model_approved
	msg := sprintf("model %v is approved for %v data", [_model, classification.effective])
}

grounds contains msg if {
	some id in eligible
	replica := _declared[id]
	msg := sprintf(
		"replica %v (%v, %v, %v) may process %v data from %v",
		[id, replica.site, replica.jurisdiction, replica.hosting, classification.effective, _origin],
	)
}

# From the agreements (usually none) to the eligible replicas at their sites.
grounds contains msg if {
	some site, agreements in _agreements
	site != _origin
	some id in eligible
	replica := _declared[id]
	site in _sites_of(replica)
	some agreement in agreements
	msg := _under_agreement(id, site, _nodes_at(replica, site), agreement)
}

grounds contains msg if {
	count(eligible) > 0
	some msgs in refusals
	some msg in msgs
}
