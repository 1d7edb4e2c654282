package sovstack.classification_test

import data.sovstack.classification

_sending(class, clearance) := {"subject": {"clearance": clearance}, "data_classification": class}

test_allow_internal_data_from_a_caller_cleared_for_internal if {
	classification.known with input as _sending("internal", "internal")
	classification.cleared with input as _sending("internal", "internal")
	not classification.store_content with input as _sending("internal", "internal")
	count(classification.denials) == 0 with input as _sending("internal", "internal")
	count(classification.grounds) == 1 with input as _sending("internal", "internal")
}

test_allow_lower_data_than_the_clearance if {
	classification.cleared with input as _sending("public", "restricted")
}

test_deny_confidential_data_from_a_caller_cleared_for_internal if {
	not classification.cleared with input as _sending("confidential", "internal")
	count(classification.denials) == 1 with input as _sending("confidential", "internal")
}

test_deny_a_classification_the_policy_data_does_not_list if {
	not classification.known with input as _sending("secret", "restricted")
	not classification.cleared with input as _sending("secret", "restricted")
	count(classification.denials) == 1 with input as _sending("secret", "restricted")
}

test_deny_a_missing_classification_from_an_unlisted_client_when_the_data_sets_no_default if {
	not classification.effective with input as _sending(null, "internal")
	not classification.cleared with input as _sending(null, "internal")
	count(classification.denials) == 1 with input as _sending(null, "internal")
	count(classification.denials) == 1 with input as {"subject": {"clearance": "internal"}}
}

test_allow_a_missing_classification_when_the_data_sets_a_default if {
	classification.effective == "internal" with input as _sending(null, "internal")
		with data.plant.classification_when_missing as "internal"
	classification.cleared with input as _sending(null, "internal")
		with data.plant.classification_when_missing as "internal"
	count(classification.grounds) == 2 with input as _sending(null, "internal")
		with data.plant.classification_when_missing as "internal"
}

test_deny_a_missing_classification_even_with_a_default_the_clearance_does_not_cover if {
	not classification.cleared with input as _sending(null, "public")
		with data.plant.classification_when_missing as "internal"
}

test_allow_public_data_from_a_caller_without_a_clearance if {
	classification.clearance == "public" with input as _sending("public", null)
	classification.cleared with input as _sending("public", null)
}

test_deny_internal_data_from_a_caller_without_a_clearance if {
	not classification.cleared with input as _sending("internal", null)
}

test_deny_a_caller_without_a_clearance_when_the_data_gives_none if {
	not classification.cleared with input as _sending("internal", null) with data.plant.clearance_when_missing as null
	count(classification.denials) == 1 with input as _sending("internal", null)
		with data.plant.clearance_when_missing as null
}

test_deny_a_clearance_the_policy_data_does_not_list if {
	not classification.cleared with input as _sending("public", "top-secret")
}

test_allow_confidential_data_with_its_content_kept if {
	classification.store_content with input as _sending("confidential", "confidential")
	count(classification.grounds) == 2 with input as _sending("confidential", "confidential")
}

test_deny_keeping_content_of_an_unknown_classification if {
	not classification.store_content with input as _sending("secret", "restricted")
}

_from(client, class) := {"subject": {"client_id": client, "clearance": "restricted"}, "data_classification": class}

_clients := {
	"line-monitor": {"default_classification": "internal", "min_classification": "internal"},
	"lab": {"default_classification": "confidential"},
}

test_allow_a_missing_classification_as_the_clients_default if {
	classification.effective == "internal" with input as _from("line-monitor", null)
		with data.plant.clients as _clients
	classification.used == "internal" with input as _from("line-monitor", null)
		with data.plant.clients as _clients
	classification.above_floor with input as _from("line-monitor", null) with data.plant.clients as _clients
	count(classification.denials) == 0 with input as _from("line-monitor", null) with data.plant.clients as _clients
	classification.store_content with input as _from("lab", null) with data.plant.clients as _clients
}

test_allow_the_clients_default_over_the_plant_wide_one if {
	classification.used == "confidential" with input as _from("lab", null)
		with data.plant.clients as _clients
		with data.plant.classification_when_missing as "public"
	classification.used == "public" with input as _from("unlisted", null)
		with data.plant.clients as _clients
		with data.plant.classification_when_missing as "public"
}

test_deny_a_declared_classification_below_the_clients_floor if {
	not classification.above_floor with input as _from("line-monitor", "public") with data.plant.clients as _clients
	classification.used == "public" with input as _from("line-monitor", "public")
		with data.plant.clients as _clients
	count(classification.denials) == 1 with input as _from("line-monitor", "public") with data.plant.clients as _clients
}

test_allow_a_declared_classification_at_or_above_the_clients_floor if {
	classification.above_floor with input as _from("line-monitor", "internal") with data.plant.clients as _clients
	classification.above_floor with input as _from("line-monitor", "restricted") with data.plant.clients as _clients
}

test_deny_an_unlisted_client_below_the_plant_wide_floor if {
	not classification.above_floor with input as _from("unlisted", "public") with data.plant.clients as _clients
	not classification.above_floor with input as _from("lab", "public") with data.plant.clients as _clients
}

test_allow_any_known_classification_when_no_floor_is_set if {
	classification.above_floor with input as _from("lab", "public")
		with data.plant.clients as _clients
		with data.plant.classification_floor as null
	not classification.above_floor with input as _from("lab", "secret")
		with data.plant.clients as _clients
		with data.plant.classification_floor as null
}

test_deny_a_floor_the_policy_data_does_not_list if {
	not classification.above_floor with input as _from("lab", "internal")
		with data.plant.clients as {"lab": {"min_classification": "normal"}}
}

test_deny_nothing_recorded_when_there_is_no_classification if {
	classification.used == null with input as _from("unlisted", null)
}
