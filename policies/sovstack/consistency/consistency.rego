# METADATA
# title: Consistency of the policy data
# description: |
#   The mistakes a person editing policies/data/ can make that the decision
#   rules would otherwise quietly read as "grants nothing" or "never
#   expires": a name that refers to nothing declared, a date that does not
#   parse, two classifications with the same rank, a client whose default
#   classification is below its floor (every request it sends without one
#   would be refused), a quota with a period other than day or month, a
#   limit that is not a number of at least 0, or one that limits nothing,
#   a replica spanning nodes whose `nodes` is not an object naming each
#   node's site, or whose `site` is none of its nodes' sites.
#   `sovstack policy bundle`
#   refuses to build while `problems` is not empty.
# custom:
#   controls:
#     - nist_800_53_rev5/AC-3
package sovstack.consistency

import data.sovstack.classification

# The kinds of request the gateway asks about (its contract, not plant data).
_kinds := {"chat", "completions", "embeddings", "models"}

_dated contains [sprintf("role %v", [name]), role] if some name, role in data.plant.roles

_dated contains [sprintf("data-sharing agreement %v", [agreement.id]), agreement] if {
	some agreement in data.plant.data_sharing_agreements
}

_budgets contains [sprintf("client %v", [name]), budget] if some name, budget in data.plant.quotas.clients

_budgets contains [sprintf("role %v", [name]), budget] if some name, budget in data.plant.quotas.roles

# METADATA
# title: problems
# description: Every inconsistency in the policy data, in words; empty when the data is sound.
# scope: document
problems contains msg if {
	some name, role in data.plant.roles
	some model in role.models
	not data.plant.models[model]
	msg := sprintf("role %v names model %v, which is not declared", [name, model])
}

problems contains msg if {
	some name, role in data.plant.roles
	some action in role.actions
	not action in _kinds
	msg := sprintf("role %v names the action %v; the gateway asks only for %v", [name, action, sort(_kinds)])
}

problems contains msg if {
	some [what, grant] in _dated
	not time.parse_rfc3339_ns(grant.valid_until)
	msg := sprintf("%v: valid_until %v is not an RFC 3339 date", [what, grant.valid_until])
}

problems contains msg if {
	some id, replica in data.plant.replicas
	not data.plant.models[replica.model]
	msg := sprintf("replica %v serves model %v, which is not declared", [id, replica.model])
}

problems contains msg if {
	some id, replica in data.plant.replicas
	nodes := replica.nodes
	not _node_sites(nodes)
	msg := sprintf("replica %v: nodes %v is not an object naming each node's site", [id, nodes])
}

problems contains msg if {
	some id, replica in data.plant.replicas
	_node_sites(replica.nodes)
	not replica.site in {site | some site in replica.nodes}
	msg := sprintf("replica %v: its site %v is none of its nodes' sites %v", [id, replica.site, replica.nodes])
}

problems contains msg if {
	some name, model in data.plant.models
	not data.plant.classifications[model.max_classification]
	msg := sprintf("model %v: max_classification %v is not a declared classification", [name, model.max_classification])
}

problems contains msg if {
	some agreement in data.plant.data_sharing_agreements
	some class in agreement.classifications
	not data.plant.classifications[class]
	msg := sprintf("data-sharing agreement %v names %v, which is not a declared classification", [agreement.id, class])
}

problems contains msg if {
	some name, class in data.plant.classifications
	some other, other_class in data.plant.classifications
	name < other
	class.rank == other_class.rank
	msg := sprintf("classifications %v and %v share rank %v", [name, other, class.rank])
}

problems contains msg if {
	some setting in ["classification_when_missing", "classification_floor", "clearance_when_missing"]
	value := data.plant[setting]
	value != null
	not data.plant.classifications[value]
	msg := sprintf("%v is %v, which is not a declared classification", [setting, value])
}

problems contains msg if {
	some name, client in data.plant.clients
	some setting in ["default_classification", "min_classification"]
	value := object.get(client, setting, null)
	value != null
	not data.plant.classifications[value]
	msg := sprintf("client %v: %v %v is not a declared classification", [name, setting, value])
}

problems contains msg if {
	some name, _ in data.plant.clients
	usual := classification.default_for(name)
	lowest := classification.lowest_for(name)
	data.plant.classifications[usual].rank < data.plant.classifications[lowest].rank
	msg := sprintf("client %v: its default classification %v is below its floor %v", [name, usual, lowest])
}

problems contains msg if {
	usual := data.plant.classification_when_missing
	lowest := data.plant.classification_floor
	data.plant.classifications[usual].rank < data.plant.classifications[lowest].rank
	msg := sprintf("classification_when_missing %v is below classification_floor %v", [usual, lowest])
}

problems contains msg if {
	some [owner, budget] in _budgets
	not budget.period in {"day", "month"}
	msg := sprintf("the quota of %v has period %v; it is day or month", [owner, object.get(budget, "period", null)])
}

problems contains msg if {
	some [owner, budget] in _budgets
	some measure in ["requests", "tokens", "joules"]
	limit := object.get(budget, measure, 0)
	not _non_negative(limit)
	msg := sprintf("the quota of %v: %v %v is not a number of at least 0", [owner, measure, limit])
}

problems contains msg if {
	some [owner, budget] in _budgets
	count({"requests", "tokens", "joules"} & object.keys(budget)) == 0
	msg := sprintf("the quota of %v limits nothing (requests, tokens or joules)", [owner])
}

_non_negative(value) if {
	is_number(value)
	value >= 0
}

# A replica's nodes: a non-empty object of node name to site, both non-empty strings.
_node_sites(nodes) if {
	is_object(nodes)
	count(nodes) > 0
	every node, site in nodes {
		_name(node)
		_name(site)
	}
}

_name(value) if {
	is_string(value)
	value != ""
}
