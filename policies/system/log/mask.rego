# METADATA
# title: Decision-log masking
# description: |
#   OPA writes every decision to its local decision log (see
#   policies/opa-config.yaml, decision_logs.mask_decision). Before it does,
#   it erases the input fields listed in policies/data/decision_log.json: who
#   the caller is personally, and any request content a gateway might pass.
#   The tamper-evident audit log, not this one, is the record of who did what.
# custom:
#   controls:
#     - nist_800_53_rev5/AU-3
#     - iso_27001_2022/A.8.15
package system.log

# METADATA
# title: mask
# description: JSON pointers into the decision event to erase before it is logged.
# entrypoint: true
mask contains field if some field in data.plant.decision_log.masked_fields
