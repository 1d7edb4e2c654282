package sovstack.consistency_test

import data.sovstack.consistency

test_allow_the_shipped_plant_data if {
	consistency.problems == set()
}

test_deny_a_role_naming_an_undeclared_model if {
	roles := {"operator": {"models": ["tiny-lama"], "actions": ["chat"]}}
	count(consistency.problems) == 1 with data.plant.roles as roles
}

test_deny_a_role_naming_an_unknown_action if {
	roles := {"operator": {"models": ["tiny-llama"], "actions": ["chat", "fine-tune"]}}
	count(consistency.problems) == 1 with data.plant.roles as roles
}

test_deny_a_role_whose_expiry_does_not_parse if {
	roles := {"contractor": {"models": [], "actions": [], "valid_until": "31.03.2027"}}
	count(consistency.problems) == 1 with data.plant.roles as roles
}

test_deny_an_agreement_whose_expiry_does_not_parse if {
	agreements := [{"id": "X", "from_site": "a", "to_site": "b", "classifications": [], "valid_until": "soon"}]
	count(consistency.problems) == 1 with data.plant.data_sharing_agreements as agreements
}

test_deny_a_replica_of_an_undeclared_model if {
	replicas := {"gpu-9": {"model": "llama-405b", "site": "plant-a", "jurisdiction": "DE", "hosting": "on-prem"}}
	count(consistency.problems) == 1 with data.plant.replicas as replicas
}

test_deny_a_model_approved_up_to_an_undeclared_classification if {
	models := object.union(data.plant.models, {"tiny-llama": {"max_classification": "secret"}})
	count(consistency.problems) == 1 with data.plant.models as models
}

test_deny_an_agreement_naming_an_undeclared_classification if {
	agreements := [{"id": "X", "from_site": "a", "to_site": "b", "classifications": ["secret"]}]
	count(consistency.problems) == 1 with data.plant.data_sharing_agreements as agreements
}

test_deny_two_classifications_of_the_same_rank if {
	classes := object.union(data.plant.classifications, {"secret": {"rank": 3}})
	count(consistency.problems) == 1 with data.plant.classifications as classes
}

test_deny_a_default_that_is_not_a_declared_classification if {
	count(consistency.problems) == 1 with data.plant.classification_when_missing as "normal"
	count(consistency.problems) == 1 with data.plant.clearance_when_missing as "basic"
	count(consistency.problems) == 1 with data.plant.classification_floor as "lowish"
}

test_deny_a_client_naming_an_undeclared_classification if {
	clients := {"lab": {"default_classification": "normal", "min_classification": "internal"}}
	count(consistency.problems) == 1 with data.plant.clients as clients
	count(consistency.problems) == 1 with data.plant.clients as {"lab": {"min_classification": "lowish"}}
}

test_deny_a_client_whose_default_is_below_its_floor if {
	clients := {"lab": {"default_classification": "internal", "min_classification": "confidential"}}
	count(consistency.problems) == 1 with data.plant.clients as clients
	count(consistency.problems) == 1 with data.plant.clients as {"lab": {"default_classification": "public"}}
}

test_allow_a_client_that_sets_only_what_it_needs if {
	consistency.problems == set() with data.plant.clients as {"lab": {"description": "no default, plant-wide floor"}}
}

test_deny_a_plant_wide_default_below_the_plant_wide_floor if {
	count(consistency.problems) == 1 with data.plant.classification_when_missing as "public"
}

test_deny_a_quota_with_another_period if {
	quotas := {"clients": {"line-monitor": {"period": "week", "requests": 10}}, "roles": {}}
	count(consistency.problems) == 1 with data.plant.quotas as quotas
}

test_deny_a_quota_with_a_negative_or_textual_limit if {
	quotas := {"clients": {"line-monitor": {"period": "day", "requests": -1, "tokens": "many"}}, "roles": {}}
	count(consistency.problems) == 2 with data.plant.quotas as quotas
}

test_deny_a_quota_that_limits_nothing if {
	quotas := {"clients": {"line-monitor": {"period": "day"}}, "roles": {}}
	count(consistency.problems) == 1 with data.plant.quotas as quotas
}

_spanning := {"model": "tiny-llama", "site": "plant-a", "jurisdiction": "DE", "hosting": "on-prem"}

test_allow_a_replica_spanning_nodes_at_its_site_and_others if {
	replicas := {"pp-1": object.union(_spanning, {"nodes": {"gpu-1": "plant-a", "gpu-2": "plant-b"}})}
	consistency.problems == set() with data.plant.replicas as replicas
}

test_deny_replica_nodes_that_are_not_an_object_of_node_sites if {
	malformed := [
		{}, ["gpu-1", "gpu-2"], "gpu-1", null,
		{"gpu-1": "plant-a", "gpu-2": ""}, {"": "plant-a"}, {"gpu-1": 1},
	]
	every nodes in malformed {
		replicas := {"pp-1": object.union(_spanning, {"nodes": nodes})}
		count(consistency.problems) == 1 with data.plant.replicas as replicas
	}
}

test_deny_a_replica_whose_site_is_none_of_its_nodes_sites if {
	replicas := {"pp-1": object.union(_spanning, {"nodes": {"gpu-1": "plant-b", "gpu-2": "plant-b"}})}
	count(consistency.problems) == 1 with data.plant.replicas as replicas
}
