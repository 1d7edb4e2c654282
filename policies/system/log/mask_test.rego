package system.log_test

import data.system.log

test_deny_the_caller_subject_id_into_the_decision_log if {
	"/input/subject/sub" in log.mask
	"/input/subject/groups" in log.mask
}

test_deny_request_content_into_the_decision_log if {
	"/input/request/messages" in log.mask
	"/input/request/prompt" in log.mask
}

test_allow_what_an_auditor_needs_into_the_decision_log if {
	not "/input/subject/client_id" in log.mask
	not "/input/data_classification" in log.mask
	not "/result" in log.mask
}
