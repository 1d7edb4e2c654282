package sovstack.quota_test

import data.sovstack.quota

_quotas := {
	"clients": {"line-monitor": {"period": "day", "requests": 3, "tokens": 100}},
	"roles": {"contractor": {"period": "month", "tokens": 1000, "joules": 50}},
}

_caller(client, roles) := {"client_id": client, "roles": roles}

_usage(day, month) := {
	"day": object.union({"period": "2026-12-07"}, day),
	"month": object.union({"period": "2026-12"}, month),
}

_input(subject, usage) := {"subject": subject, "usage": usage}

_none := {"requests": 0, "tokens": 0, "joules": 0}

test_allow_a_client_below_every_budget if {
	usage := _usage({"requests": 2, "tokens": 99, "joules": 0}, _none)
	req := _input(_caller("line-monitor", ["operator"]), usage)
	count(quota.denials) == 0 with input as req with data.plant.quotas as _quotas
	count(quota.grounds) == 2 with input as req with data.plant.quotas as _quotas
}

test_deny_a_client_exactly_at_its_request_budget if {
	usage := _usage({"requests": 3, "tokens": 0, "joules": 0}, _none)
	req := _input(_caller("line-monitor", ["operator"]), usage)
	count(quota.denials) == 1 with input as req with data.plant.quotas as _quotas
}

test_deny_a_client_past_its_token_budget if {
	usage := _usage({"requests": 1, "tokens": 140, "joules": 0}, _none)
	req := _input(_caller("line-monitor", ["operator"]), usage)
	count(quota.denials) == 1 with input as req with data.plant.quotas as _quotas
}

test_allow_a_role_budget_per_month_below_its_joules if {
	usage := _usage(_none, {"requests": 9, "tokens": 999, "joules": 49.5})
	req := _input(_caller("vendor-tool", ["contractor"]), usage)
	count(quota.denials) == 0 with input as req with data.plant.quotas as _quotas
}

test_deny_a_role_budget_whose_joules_are_spent if {
	usage := _usage(_none, {"requests": 9, "tokens": 10, "joules": 50})
	req := _input(_caller("vendor-tool", ["contractor"]), usage)
	count(quota.denials) == 1 with input as req with data.plant.quotas as _quotas
}

test_deny_both_budgets_when_both_are_spent if {
	usage := _usage({"requests": 3, "tokens": 100, "joules": 0}, {"requests": 3, "tokens": 1000, "joules": 0})
	req := _input(_caller("line-monitor", ["contractor"]), usage)
	count(quota.denials) == 3 with input as req with data.plant.quotas as _quotas
}

test_deny_a_budget_whose_usage_was_not_sent if {
	req := {"subject": _caller("line-monitor", ["operator"])}
	count(quota.denials) == 2 with input as req with data.plant.quotas as _quotas
	count(quota.grounds) == 0 with input as req with data.plant.quotas as _quotas
}

test_deny_a_budget_with_an_unknown_period if {
	quotas := {"clients": {"line-monitor": {"period": "week", "requests": 3}}, "roles": {}}
	req := _input(_caller("line-monitor", []), _usage(_none, _none))
	count(quota.denials) == 1 with input as req with data.plant.quotas as quotas
}

test_allow_a_caller_without_any_budget if {
	req := {"subject": _caller("quality-lab", ["engineer"])}
	count(quota.denials) == 0 with input as req with data.plant.quotas as _quotas
	count(quota.grounds) == 0 with input as req with data.plant.quotas as _quotas
}
