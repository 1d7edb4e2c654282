# METADATA
# title: Validity of time-bound grants
# description: |
#   A role or a data-sharing agreement in the policy data may carry
#   `valid_until` (RFC 3339). It is in force until that instant, and not after.
#   A date that does not parse puts the grant out of force: a typo never
#   extends a grant.
# custom:
#   controls:
#     - nist_800_53_rev5/AC-3
package sovstack.validity

# METADATA
# title: in_force
# description: True while the grant has no valid_until, or valid_until is still ahead.
# scope: document
in_force(grant) if not "valid_until" in object.keys(grant)

in_force(grant) if time.now_ns() < time.parse_rfc3339_ns(grant.valid_until)
