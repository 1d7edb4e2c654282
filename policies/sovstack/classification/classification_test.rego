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

test_deny_a_missing_classification_when_the_data_sets_no_default if {
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
	not classification.cleared with input as _sending("public", null) with data.plant.clearance_when_missing as null
	count(classification.denials) == 1 with input as _sending("public", null)
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
