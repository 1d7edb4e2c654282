# METADATA
# title: Quotas
# description: |
#   Budgets per client, and per role, for a period (a UTC "day" or "month"):
#   at most so many `requests`, `tokens` (prompt and completion) and `joules`,
#   all read from policies/data/quotas.json. A role's budget applies to each
#   client whose caller holds the role, on that client's own usage; every
#   budget that applies must have room. The gateway sends the client's usage
#   so far in the current day and month (`input.usage`); a budget is spent
#   once its usage reaches the limit, so the request that crosses it is
#   served and the next one is refused. A budget whose usage the gateway did
#   not send, or whose period is neither day nor month, is spent: an unknown
#   usage never lets a request through.
# custom:
#   controls:
#     - nist_800_53_rev5/AC-3
#     - nist_800_53_rev5/SC-6
package sovstack.quota

_client := object.get(input, ["subject", "client_id"], null)

_roles := object.get(input, ["subject", "roles"], [])

_measures := ["requests", "tokens", "joules"]

# [who the budget belongs to, the budget]
_budgets contains [sprintf("client %v", [_client]), budget] if {
	budget := data.plant.quotas.clients[_client]
}

_budgets contains [sprintf("role %v", [name]), budget] if {
	some name in _roles
	budget := data.plant.quotas.roles[name]
}

# [owner, measure, limit, used, period id]; used is null when the gateway did not send it
_limits contains [owner, measure, limit, used, period] if {
	some [owner, budget] in _budgets
	some measure in _measures
	limit := budget[measure]
	used := object.get(input, ["usage", budget.period, measure], null)
	period := object.get(input, ["usage", budget.period, "period"], budget.period)
}

# METADATA
# title: denials
# description: Every budget of the caller that is spent, or whose usage is unknown, in words.
# scope: document
denials contains msg if {
	some [owner, measure, limit, used, period] in _limits
	is_number(used)
	used >= limit
	msg := sprintf(
		"quota spent: the %v budget of %v %v for %v is used (%v)",
		[owner, limit, measure, period, used],
	)
}

denials contains msg if {
	some [owner, measure, limit, used, period] in _limits
	not is_number(used)
	msg := sprintf(
		"quota unknown: no %v usage for the %v budget of %v %v per %v",
		[measure, owner, limit, measure, period],
	)
}

# METADATA
# title: grounds
# description: Every budget of the caller that still has room, in words.
# scope: document
grounds contains msg if {
	some [owner, measure, limit, used, period] in _limits
	is_number(used)
	used < limit
	msg := sprintf(
		"within quota: the %v budget of %v %v for %v (%v used)",
		[owner, limit, measure, period, used],
	)
}
