package sovstack.placement_test

import data.sovstack.placement

# The replicas as the policy data declares them, as a gateway reports them.
_gpu_1 := {"id": "gpu-1", "model": "tiny-llama", "site": "plant-a", "jurisdiction": "DE", "hosting": "on-prem"}

_gpu_b1 := {"id": "gpu-b1", "model": "tiny-llama", "site": "plant-b", "jurisdiction": "DE", "hosting": "on-prem"}

_gpu_2 := {"id": "gpu-2", "model": "ops-llama-8b", "site": "plant-a", "jurisdiction": "DE", "hosting": "on-prem"}

_cloud := {
	"id": "sovcloud-fr-1",
	"model": "ops-llama-8b",
	"site": "sovcloud-paris",
	"jurisdiction": "FR",
	"hosting": "sovereign-cloud",
}

_request(site, class, model, replicas) := {
	"subject": {"site": site},
	"data_classification": class,
	"model": model,
	"replicas": replicas,
}

_after_agreement_ends := time.parse_rfc3339_ns("2027-07-01T00:00:00Z")

test_allow_plant_a_data_on_a_plant_a_replica if {
	req := _request("plant-a", "internal", "tiny-llama", [_gpu_1, _gpu_b1])
	placement.eligible == {"gpu-1"} with input as req
	placement.model_approved with input as req
	object.keys(placement.refusals) == {"gpu-b1"} with input as req
	count(placement.denials) == 0 with input as req
	count(placement.grounds) == 3 with input as req
}

test_deny_plant_b_confidential_data_on_a_plant_a_replica if {
	req := _request("plant-b", "confidential", "tiny-llama", [_gpu_1])
	placement.eligible == set() with input as req
	object.keys(placement.refusals) == {"gpu-1"} with input as req
	count(placement.denials) == 2 with input as req
}

test_allow_plant_b_internal_data_on_plant_a_under_the_agreement if {
	req := _request("plant-b", "internal", "tiny-llama", [_gpu_1])
	placement.eligible == {"gpu-1"} with input as req
	count(placement.grounds) == 3 with input as req
}

test_deny_plant_b_internal_data_on_plant_a_once_the_agreement_has_ended if {
	req := _request("plant-b", "internal", "tiny-llama", [_gpu_1])
	placement.eligible == set() with input as req with time.now_ns as _after_agreement_ends
}

test_allow_public_data_to_leave_its_site if {
	req := _request("plant-b", "public", "ops-llama-8b", [_gpu_2, _cloud])
	placement.eligible == {"gpu-2", "sovcloud-fr-1"} with input as req
}

test_allow_plant_a_internal_data_to_burst_to_the_sovereign_cloud if {
	req := _request("plant-a", "internal", "ops-llama-8b", [_gpu_2, _cloud])
	placement.eligible == {"gpu-2", "sovcloud-fr-1"} with input as req
}

test_deny_confidential_data_the_sovereign_cloud_for_site_jurisdiction_and_hosting if {
	agreements := [{"id": "X", "from_site": "plant-a", "to_site": "sovcloud-paris", "classifications": ["confidential"]}]
	req := _request("plant-a", "confidential", "ops-llama-8b", [_gpu_2, _cloud])
	placement.eligible == {"gpu-2"} with input as req
	count(placement.refusals["sovcloud-fr-1"]) == 3 with input as req

	# An agreement lifts site residency, never the jurisdiction or hosting rules.
	count(placement.refusals["sovcloud-fr-1"]) == 2 with input as req
		with data.plant.data_sharing_agreements as agreements
}

test_deny_a_replica_the_policy_data_does_not_declare if {
	rogue := object.union(_gpu_1, {"id": "gpu-9"})
	req := _request("plant-a", "internal", "tiny-llama", [rogue])
	placement.eligible == set() with input as req
	count(placement.refusals["gpu-9"]) == 1 with input as req
}

test_deny_a_replica_the_gateway_reports_differently if {
	moved := object.union(_gpu_1, {"site": "plant-b"})
	req := _request("plant-b", "confidential", "tiny-llama", [moved])
	placement.eligible == set() with input as req
	count(placement.refusals["gpu-1"]) == 2 with input as req
}

test_allow_a_replica_the_gateway_reports_with_an_attribute_the_data_does_not_declare if {
	# Only the declared attributes are compared: one the data does not name is no refusal.
	zoned := object.union(_gpu_1, {"zone": "hall-3"})
	req := _request("plant-a", "internal", "tiny-llama", [zoned])
	placement.eligible == {"gpu-1"} with input as req
	count(placement.refusals) == 0 with input as req
}

test_deny_a_replica_of_another_model if {
	req := _request("plant-a", "internal", "tiny-llama", [_gpu_2])
	placement.eligible == set() with input as req
	count(placement.refusals["gpu-2"]) == 1 with input as req
}

test_deny_a_model_not_approved_for_the_data if {
	req := _request("plant-a", "restricted", "ops-llama-8b", [_gpu_2])
	not placement.model_approved with input as req
	placement.eligible == {"gpu-2"} with input as req
	count(placement.denials) == 1 with input as req
}

test_deny_a_model_the_policy_data_does_not_declare if {
	req := _request("plant-a", "internal", "gpt-4o", [])
	not placement.model_approved with input as req
	count(placement.denials) == 2 with input as req
}

test_deny_a_request_no_replica_was_offered_for if {
	req := _request("plant-a", "internal", "tiny-llama", [])
	placement.eligible == set() with input as req
	count(placement.denials) == 1 with input as req
}

test_deny_every_replica_for_an_unknown_classification if {
	req := _request("plant-a", "secret", "tiny-llama", [_gpu_1])
	placement.eligible == set() with input as req
	not placement.model_approved with input as req
}

# A replica spanning two nodes, as the policy data declares it and a gateway reports it.
_tiny_pp := {
	"id": "tiny-pp-1",
	"model": "tiny-llama-pp",
	"site": "plant-a",
	"jurisdiction": "DE",
	"hosting": "on-prem",
	"nodes": {"gpu-1": "plant-a", "gpu-2": "plant-b"},
}

# A copy of an object with some attributes replaced (object.union merges nested objects).
_with(obj, attributes) := object.union(object.remove(obj, object.keys(attributes)), attributes)

# The same replica with both nodes at plant A.
_tiny_pp_at_home := _with(_tiny_pp, {"nodes": {"gpu-1": "plant-a", "gpu-2": "plant-a"}})

_replicas_with(replica) := _with(data.plant.replicas, {replica.id: object.remove(replica, ["id"])})

test_allow_a_spanning_replica_whose_nodes_are_all_at_the_callers_site if {
	req := _request("plant-a", "confidential", "tiny-llama-pp", [_tiny_pp_at_home])
	placement.eligible == {"tiny-pp-1"} with input as req with data.plant.replicas as _replicas_with(_tiny_pp_at_home)
	count(placement.refusals) == 0 with input as req with data.plant.replicas as _replicas_with(_tiny_pp_at_home)
}

test_deny_a_spanning_replica_with_a_node_at_another_site_no_agreement_covers if {
	req := _request("plant-a", "internal", "tiny-llama-pp", [_tiny_pp])
	placement.eligible == set() with input as req
	count(placement.refusals["tiny-pp-1"]) == 1 with input as req
}

test_deny_a_spanning_replica_for_each_site_no_agreement_covers if {
	req := _request("plant-b", "confidential", "tiny-llama-pp", [_tiny_pp])
	placement.eligible == set() with input as req

	# Its site, plant A (node gpu-1), is refused; gpu-2 is at the caller's own site.
	count(placement.refusals["tiny-pp-1"]) == 1 with input as req

	# A caller at a third site is refused for both.
	third := _request("plant-c", "internal", "tiny-llama-pp", [_tiny_pp])
	count(placement.refusals["tiny-pp-1"]) == 2 with input as third
}

test_allow_a_spanning_replica_under_an_agreement_covering_its_other_nodes_site if {
	req := _request("plant-b", "internal", "tiny-llama-pp", [_tiny_pp])
	placement.eligible == {"tiny-pp-1"} with input as req
	count(placement.refusals) == 0 with input as req

	# The model, the replica, and DSA-2026-014 for node gpu-1 at plant A.
	count(placement.grounds) == 3 with input as req
}

test_allow_a_spanning_replica_under_an_agreement_covering_a_node_away_from_its_own_site if {
	# The replica is at plant A, the caller's site; its node gpu-2 is at plant B.
	to_plant_b := {"id": "DSA-T", "from_site": "plant-a", "to_site": "plant-b", "classifications": ["internal"]}
	req := _request("plant-a", "internal", "tiny-llama-pp", [_tiny_pp])
	placement.eligible == {"tiny-pp-1"} with input as req with data.plant.data_sharing_agreements as [to_plant_b]

	# The model, the replica, and DSA-T for node gpu-2 at plant B.
	count(placement.grounds) == 3 with input as req with data.plant.data_sharing_agreements as [to_plant_b]
}

test_deny_a_spanning_replica_when_the_agreement_does_not_cover_the_classification if {
	req := _request("plant-b", "restricted", "tiny-llama-pp", [_tiny_pp])
	placement.eligible == set() with input as req
	count(placement.refusals["tiny-pp-1"]) == 1 with input as req
}

test_deny_a_spanning_replica_once_the_agreement_has_ended if {
	req := _request("plant-b", "internal", "tiny-llama-pp", [_tiny_pp])
	placement.eligible == set() with input as req with time.now_ns as _after_agreement_ends
	count(placement.refusals["tiny-pp-1"]) == 1 with input as req with time.now_ns as _after_agreement_ends
}

test_allow_public_data_on_a_spanning_replica_across_sites if {
	req := _request("plant-a", "public", "tiny-llama-pp", [_tiny_pp])
	placement.eligible == {"tiny-pp-1"} with input as req
}

test_deny_a_spanning_replica_whose_reported_nodes_differ_from_the_data if {
	moved := _with(_tiny_pp, {"nodes": {"gpu-1": "plant-a", "gpu-3": "plant-b"}})
	req := _request("plant-b", "internal", "tiny-llama-pp", [moved])
	placement.eligible == set() with input as req
	count(placement.refusals["tiny-pp-1"]) == 1 with input as req

	# A gateway that does not report the nodes at all is refused as well.
	unreported := _request("plant-b", "internal", "tiny-llama-pp", [object.remove(_tiny_pp, ["nodes"])])
	placement.eligible == set() with input as unreported
}

test_deny_a_replica_the_gateway_reports_spanning_that_the_data_declares_on_one_node if {
	spanning := object.union(_gpu_1, {"nodes": {"gpu-1": "plant-a", "gpu-2": "plant-b"}})
	req := _request("plant-a", "internal", "tiny-llama", [spanning])
	placement.eligible == set() with input as req
	count(placement.refusals["gpu-1"]) == 1 with input as req

	# No nodes, reported as null or as none, is a single-node replica.
	null_nodes := _request("plant-a", "internal", "tiny-llama", [object.union(_gpu_1, {"nodes": null})])
	placement.eligible == {"gpu-1"} with input as null_nodes
	no_nodes := _request("plant-a", "internal", "tiny-llama", [object.union(_gpu_1, {"nodes": {}})])
	placement.eligible == {"gpu-1"} with input as no_nodes
}

test_deny_a_replica_the_policy_data_gives_no_site if {
	replicas := _with(data.plant.replicas, {"gpu-1": object.remove(data.plant.replicas["gpu-1"], ["site"])})
	req := _request("plant-a", "internal", "tiny-llama", [_gpu_1])
	placement.eligible == set() with input as req with data.plant.replicas as replicas
}
