package sovstack.access_test

import data.sovstack.access

_chat(roles, model) := {
	"subject": {"roles": roles},
	"action": {"kind": "chat"},
	"model": model,
}

_listing(roles) := {"subject": {"roles": roles}, "action": {"kind": "models"}, "model": null}

_before_contract_end := time.parse_rfc3339_ns("2027-03-31T23:59:58Z")

_after_contract_end := time.parse_rfc3339_ns("2027-04-01T00:00:00Z")

test_allow_an_operator_to_chat_with_the_dev_model if {
	access.granted with input as _chat(["operator", "default-roles-plant"], "tiny-llama")
	access.granting_roles == {"operator"} with input as _chat(["operator"], "tiny-llama")
	access.max_tokens == 256 with input as _chat(["operator"], "tiny-llama")
	count(access.grounds) == 2 with input as _chat(["operator"], "tiny-llama")
	count(access.denials) == 0 with input as _chat(["operator"], "tiny-llama")
}

test_deny_an_operator_a_model_its_role_does_not_name if {
	not access.granted with input as _chat(["operator"], "ops-llama-8b")
	access.max_tokens == null with input as _chat(["operator"], "ops-llama-8b")
	count(access.denials) == 1 with input as _chat(["operator"], "ops-llama-8b")
}

test_deny_an_operator_a_kind_of_request_its_role_does_not_name if {
	not access.granted with input as object.union(_chat(["operator"], "tiny-llama"), {"action": {"kind": "embeddings"}})
}

test_deny_an_auditor_chat if {
	not access.granted with input as _chat(["auditor"], "tiny-llama")
	count(access.denials) == 1 with input as _chat(["auditor"], "tiny-llama")
}

test_deny_a_role_the_policy_data_does_not_list if {
	not access.granted with input as _chat(["plant-admin", "offline_access"], "tiny-llama")
	access.active_roles == set() with input as _chat(["plant-admin", "offline_access"], "tiny-llama")
}

test_deny_a_request_without_a_subject if {
	not access.granted with input as {"action": {"kind": "chat"}, "model": "tiny-llama"}
}

test_allow_an_operator_to_list_the_models if {
	access.granted with input as _listing(["operator"])
	access.max_tokens == null with input as _listing(["operator"])
	count(access.grounds) == 1 with input as _listing(["operator"])
}

test_deny_an_auditor_the_model_list if {
	not access.granted with input as _listing(["auditor"])
	count(access.denials) == 1 with input as _listing(["auditor"])
}

test_allow_the_highest_cap_among_the_granting_roles if {
	access.max_tokens == 2048 with input as _chat(["engineer", "data-steward"], "tiny-llama")
	access.max_tokens == 1024 with input as _chat(["engineer", "data-steward"], "ops-llama-8b")
}

test_allow_a_granting_role_without_a_cap_to_lift_it if {
	roles := object.union(data.plant.roles, {"shift-lead": {"models": ["tiny-llama"], "actions": ["chat"]}})
	access.granted with input as _chat(["operator", "shift-lead"], "tiny-llama") with data.plant.roles as roles
	access.max_tokens == null with input as _chat(["operator", "shift-lead"], "tiny-llama")
		with data.plant.roles as roles
}

test_allow_the_actions_of_the_active_roles if {
	access.actions == {"chat", "completions", "embeddings", "models"} with input as _chat(["engineer"], null)
	access.actions == set() with input as _chat(["auditor"], null)
}

test_allow_a_contractor_before_the_contract_ends if {
	access.granted with input as _chat(["contractor"], "tiny-llama") with time.now_ns as _before_contract_end
	access.max_tokens == 128 with input as _chat(["contractor"], "tiny-llama")
		with time.now_ns as _before_contract_end
}

test_deny_a_contractor_once_the_contract_has_ended if {
	not access.granted with input as _chat(["contractor"], "tiny-llama") with time.now_ns as _after_contract_end
	access.active_roles == set() with input as _chat(["contractor"], "tiny-llama")
		with time.now_ns as _after_contract_end
	count(access.denials) == 2 with input as _chat(["contractor"], "tiny-llama")
		with time.now_ns as _after_contract_end
}
