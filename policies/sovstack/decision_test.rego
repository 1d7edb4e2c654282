package sovstack_test

import data.sovstack

# The demo realm's clients, as the gateway describes them from their tokens.
_line_monitor := {
	"sub": "0b9f",
	"client_id": "line-monitor",
	"roles": ["operator"],
	"site": "plant-a",
	"clearance": "internal",
}

_process_engineering := {
	"sub": "5d21",
	"client_id": "process-engineering",
	"roles": ["engineer"],
	"site": "plant-a",
	"clearance": "confidential",
}

_quality_lab := {
	"sub": "77e0",
	"client_id": "quality-lab",
	"roles": ["engineer", "data-steward"],
	"site": "plant-b",
	"clearance": "restricted",
}

_audit_office := {
	"sub": "c3aa",
	"client_id": "audit-office",
	"roles": ["auditor"],
	"site": "plant-a",
	"clearance": "internal",
}

_replicas := {
	"gpu-1": {"id": "gpu-1", "model": "tiny-llama", "site": "plant-a", "jurisdiction": "DE", "hosting": "on-prem"},
	"gpu-b1": {"id": "gpu-b1", "model": "tiny-llama", "site": "plant-b", "jurisdiction": "DE", "hosting": "on-prem"},
	"gpu-2": {"id": "gpu-2", "model": "ops-llama-8b", "site": "plant-a", "jurisdiction": "DE", "hosting": "on-prem"},
	"sovcloud-fr-1": {
		"id": "sovcloud-fr-1",
		"model": "ops-llama-8b",
		"site": "sovcloud-paris",
		"jurisdiction": "FR",
		"hosting": "sovereign-cloud",
	},
	"tiny-pp-1": {
		"id": "tiny-pp-1",
		"model": "tiny-llama-pp",
		"site": "plant-a",
		"jurisdiction": "DE",
		"hosting": "on-prem",
		"nodes": {"gpu-1": "plant-a", "gpu-2": "plant-b"},
	},
}

# The shipped roles, each granting tiny-llama-pp wherever it grants tiny-llama.
# No shipped role grants it yet (who may use a model is the plant's choice);
# the tests that use it grant it this way, so that only where its nodes are decides.
_roles_granting_tiny_llama_pp[name] := object.union(role, {"models": array.concat(role.models, ["tiny-llama-pp"])}) if {
	some name, role in data.plant.roles
	"tiny-llama" in role.models
}

_roles_granting_tiny_llama_pp[name] := role if {
	some name, role in data.plant.roles
	not "tiny-llama" in role.models
}

_chat(subject, model, class, replica_ids) := {
	"subject": object.union({"groups": []}, subject),
	"action": {"route": "/v1/chat/completions", "method": "POST", "kind": "chat"},
	"model": model,
	"data_classification": class,
	"replicas": [_replicas[id] | some id in replica_ids],
	"request": {"max_tokens": 64, "stream": false},
	"usage": _no_usage,
}

# As the gateway sends it: the client's usage so far in the current day and month.
_no_usage := {
	"day": {"period": "2026-12-07", "requests": 0, "tokens": 0, "joules": 0},
	"month": {"period": "2026-12", "requests": 0, "tokens": 0, "joules": 0},
}

_listing(subject, class) := {
	"subject": subject,
	"action": {"route": "/v1/models", "method": "GET", "kind": "models"},
	"model": null,
	"data_classification": class,
	"replicas": [replica | some replica in _replicas],
	"request": {"max_tokens": null, "stream": false},
	"usage": _no_usage,
}

test_allow_line_monitor_to_chat_with_internal_data if {
	d := sovstack.decision with input as _chat(_line_monitor, "tiny-llama", "internal", ["gpu-1", "gpu-b1"])
	d.allow
	d.allowed_replicas == ["gpu-1"]
	d.obligations == {"store_content": false, "max_tokens": 256}
	count(d.reasons) > 0
}

test_deny_line_monitor_confidential_data if {
	d := sovstack.decision with input as _chat(_line_monitor, "tiny-llama", "confidential", ["gpu-1"])
	not d.allow
	d.allowed_replicas == []
	count(d.reasons) == 1
}

test_deny_audit_office_chat_completions if {
	d := sovstack.decision with input as _chat(_audit_office, "tiny-llama", "internal", ["gpu-1"])
	not d.allow
	d.allowed_replicas == []
	d.obligations.max_tokens == null
	count(d.reasons) == 1
}

test_allow_process_engineering_confidential_data_with_its_content_kept if {
	req := _chat(_process_engineering, "ops-llama-8b", "confidential", ["gpu-2", "sovcloud-fr-1"])
	d := sovstack.decision with input as req
	d.allow
	d.allowed_replicas == ["gpu-2"]
	d.obligations == {"store_content": true, "max_tokens": 1024}
}

test_deny_quality_lab_restricted_data_on_plant_a_replicas if {
	d := sovstack.decision with input as _chat(_quality_lab, "tiny-llama", "restricted", ["gpu-1"])
	not d.allow
	d.allowed_replicas == []
	d.obligations.store_content
}

test_allow_quality_lab_restricted_data_on_its_own_site if {
	d := sovstack.decision with input as _chat(_quality_lab, "tiny-llama", "restricted", ["gpu-1", "gpu-b1"])
	d.allow
	d.allowed_replicas == ["gpu-b1"]
	d.obligations == {"store_content": true, "max_tokens": 2048}
}

test_allow_quality_lab_internal_data_on_plant_a_under_the_agreement if {
	d := sovstack.decision with input as _chat(_quality_lab, "tiny-llama", "internal", ["gpu-1", "gpu-b1"])
	d.allow
	d.allowed_replicas == ["gpu-1", "gpu-b1"]
}

test_allow_quality_lab_internal_data_on_the_replica_spanning_plants_a_and_b if {
	req := _chat(_quality_lab, "tiny-llama-pp", "internal", ["tiny-pp-1"])
	d := sovstack.decision with input as req with data.plant.roles as _roles_granting_tiny_llama_pp
	d.allow
	d.allowed_replicas == ["tiny-pp-1"]
}

test_deny_line_monitor_internal_data_on_the_replica_spanning_plants_a_and_b if {
	req := _chat(_line_monitor, "tiny-llama-pp", "internal", ["tiny-pp-1"])
	d := sovstack.decision with input as req with data.plant.roles as _roles_granting_tiny_llama_pp
	not d.allow
	d.allowed_replicas == []

	# No replica may take it, and why not: its node gpu-2 is at plant B.
	count(d.reasons) == 2

	# With both nodes at plant A it may.
	at_home := {"gpu-1": "plant-a", "gpu-2": "plant-a"}
	home := json.patch(req, [{"op": "replace", "path": "/replicas/0/nodes", "value": at_home}])
	d_home := sovstack.decision with input as home with data.plant.roles as _roles_granting_tiny_llama_pp
		with data.plant.replicas["tiny-pp-1"].nodes as at_home
	d_home.allow
}

test_deny_an_unknown_classification if {
	d := sovstack.decision with input as _chat(_quality_lab, "tiny-llama", "strictly-secret", ["gpu-b1"])
	not d.allow
	d.allowed_replicas == []
}

test_allow_a_missing_classification_as_the_clients_default if {
	d := sovstack.decision with input as _chat(_line_monitor, "tiny-llama", null, ["gpu-1"])
	d.allow
	d.data_classification == "internal"
	d.allowed_replicas == ["gpu-1"]
}

test_allow_process_engineering_without_a_classification_to_have_its_content_kept if {
	d := sovstack.decision with input as _chat(_process_engineering, "ops-llama-8b", null, ["gpu-2"])
	d.allow
	d.data_classification == "confidential"
	d.obligations.store_content
}

test_deny_a_missing_classification_from_a_client_the_data_gives_no_default if {
	subject := object.union(_line_monitor, {"client_id": "unlisted-app"})
	d := sovstack.decision with input as _chat(subject, "tiny-llama", null, ["gpu-1"])
	not d.allow
	d.data_classification == null
	count(d.reasons) == 1
}

test_deny_line_monitor_declaring_its_data_public if {
	d := sovstack.decision with input as _chat(_line_monitor, "tiny-llama", "public", ["gpu-1"])
	not d.allow
	d.data_classification == "public"
	d.allowed_replicas == []
	count(d.reasons) == 1
}

test_deny_an_unlisted_client_declaring_its_data_public if {
	subject := object.union(_line_monitor, {"client_id": "unlisted-app"})
	d := sovstack.decision with input as _chat(subject, "tiny-llama", "public", ["gpu-1"])
	not d.allow
}

test_deny_export_controlled_data_to_every_model if {
	subject := object.union(_quality_lab, {"clearance": "export-controlled"})
	d := sovstack.decision with input as _chat(subject, "tiny-llama", "export-controlled", ["gpu-b1"])
	not d.allow
	d.obligations.store_content
}

test_deny_a_request_no_replica_was_offered_for if {
	d := sovstack.decision with input as _chat(_line_monitor, "tiny-llama", "internal", [])
	not d.allow
	count(d.reasons) == 1
}

test_deny_an_empty_input_with_a_full_decision_object if {
	d := sovstack.decision with input as {}
	d.allow == false
	d.allowed_replicas == []
	d.obligations == {"store_content": false, "max_tokens": null}
	d.data_classification == null
	count(d.reasons) > 0
}

test_allow_line_monitor_to_list_the_models if {
	d := sovstack.decision with input as _listing(_line_monitor, null)
	d.allow
	d.allowed_replicas == []
	d.obligations == {"store_content": false, "max_tokens": null}
	count(d.reasons) == 1
}

test_deny_audit_office_the_model_list if {
	d := sovstack.decision with input as _listing(_audit_office, null)
	not d.allow
	count(d.reasons) == 1
}

test_allow_each_caller_to_see_the_models_it_may_use if {
	sovstack.visible_models == ["tiny-llama"] with input as _listing(_line_monitor, "internal")
	sovstack.visible_models == ["ops-llama-8b", "tiny-llama"] with input as _listing(_process_engineering, "confidential")
	sovstack.visible_models == ["tiny-llama"] with input as _listing(_quality_lab, "restricted")
}

test_allow_a_caller_without_a_classification_to_see_the_models_its_default_allows if {
	sovstack.visible_models == ["tiny-llama"] with input as _listing(_line_monitor, null)
	sovstack.visible_models == ["ops-llama-8b", "tiny-llama", "tiny-llama-pp"] with input as _listing(_quality_lab, null)
	sovstack.visible_models == ["ops-llama-8b"] with input as _listing(_process_engineering, null)
		with data.plant.models["tiny-llama"].max_classification as "internal"
}

test_allow_an_unlisted_caller_to_see_the_models_some_classification_it_may_declare_allows if {
	unlisted := object.union(_line_monitor, {"client_id": "unlisted-app"})
	sovstack.visible_models == ["tiny-llama"] with input as _listing(unlisted, null)
	sovstack.visible_models == [] with input as _listing(unlisted, null)
		with data.plant.classification_floor as "confidential"
}

test_deny_audit_office_every_model if {
	sovstack.visible_models == [] with input as _listing(_audit_office, "internal")
	sovstack.visible_models == [] with input as _listing(_audit_office, null)
}

test_deny_listing_a_model_for_data_the_caller_may_not_send if {
	sovstack.visible_models == [] with input as _listing(_line_monitor, "confidential")
	sovstack.visible_models == [] with input as _listing(_line_monitor, "strictly-secret")
}

test_allow_the_listed_models_and_the_decision_to_agree if {
	every subject in [_line_monitor, _process_engineering, _quality_lab, _audit_office] {
		every class in ["public", "internal", "confidential", "restricted", "export-controlled"] {
			listed := sovstack.visible_models with input as _listing(subject, class)
			usable := [model |
				some model in ["ops-llama-8b", "tiny-llama", "tiny-llama-pp"]
				d := sovstack.decision with input as _chat(subject, model, class, object.keys(_replicas))
				d.allow
			]
			listed == usable
		}
	}
}

# The tests' own budget, so they do not follow the demo data's.
_budget := {"clients": {"line-monitor": {"period": "day", "requests": 5000}}, "roles": {}}

_spent := {"day": {"period": "2026-12-07", "requests": 5000, "tokens": 10, "joules": 0}}

_room := {"day": {"period": "2026-12-07", "requests": 4999, "tokens": 10, "joules": 0}}

test_allow_line_monitor_with_room_in_its_quota if {
	req := object.union(_chat(_line_monitor, "tiny-llama", "internal", ["gpu-1"]), {"usage": _room})
	d := sovstack.decision with input as req with data.plant.quotas as _budget
	d.allow
	d.allowed_replicas == ["gpu-1"]
}

test_deny_line_monitor_whose_quota_is_spent if {
	req := object.union(_chat(_line_monitor, "tiny-llama", "internal", ["gpu-1"]), {"usage": _spent})
	d := sovstack.decision with input as req with data.plant.quotas as _budget
	not d.allow
	d.allowed_replicas == []
	count(d.reasons) == 1
}

test_allow_line_monitor_to_list_models_with_its_quota_spent if {
	listing := object.union(_listing(_line_monitor, null), {"usage": _spent})
	d := sovstack.decision with input as listing with data.plant.quotas as _budget
	d.allow
}
