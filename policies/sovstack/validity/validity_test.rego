package sovstack.validity_test

import data.sovstack.validity

_grant := {"valid_until": "2027-03-31T23:59:59Z"}

_before := time.parse_rfc3339_ns("2027-03-31T23:59:58Z")

_at_expiry := time.parse_rfc3339_ns("2027-03-31T23:59:59Z")

test_allow_a_grant_without_an_expiry if {
	validity.in_force({"models": ["tiny-llama"]})
}

test_allow_a_grant_before_its_expiry if {
	validity.in_force(_grant) with time.now_ns as _before
}

test_deny_a_grant_at_its_expiry if {
	not validity.in_force(_grant) with time.now_ns as _at_expiry
}

test_deny_a_grant_whose_expiry_does_not_parse if {
	not validity.in_force({"valid_until": "31.03.2027"}) with time.now_ns as _before
}
