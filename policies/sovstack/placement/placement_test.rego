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
