"""The ``bundle: verify`` check: the offline bundle's signature and every file's SHA-256.

No bundle given is not a pass: the check fails with "not provided", so the
control that names it is not satisfied.
"""

from __future__ import annotations

from sovstack.bundle import signing
from sovstack.bundle.errors import BundleError
from sovstack.bundle.report import verify_summary
from sovstack.bundle.sources import open_source
from sovstack.bundle.verify import verify
from sovstack.report.context import Context
from sovstack.report.model import ERROR, FAIL, PASS, CheckResult

__all__ = ["BUNDLE_EVIDENCE", "check_bundle"]

BUNDLE_EVIDENCE = "evidence/bundle-verify.txt"
_CHECK = "bundle verify"


def check_bundle(ctx: Context) -> dict[str, list[CheckResult]]:
    bundle, pubkey = ctx.inputs.bundle, ctx.inputs.bundle_pubkey
    if bundle is None:
        return {
            _CHECK: [
                CheckResult(
                    _CHECK, "no bundle", FAIL, "not provided: no bundle was given (--bundle)"
                )
            ]
        }
    where = f"bundle {bundle}"
    if pubkey is None:
        why = "not provided: no public key for the bundle was given (--bundle-pubkey)"
        return {_CHECK: [CheckResult(_CHECK, where, FAIL, why)]}
    with ctx.clock.timed() as timer:
        try:
            public = signing.load_public(pubkey)
            source = open_source(bundle)
            try:
                report = verify(source, public)
            finally:
                source.close()
        except (BundleError, OSError) as exc:
            result = CheckResult(_CHECK, where, ERROR, f"could not be checked: {exc}")
            return {_CHECK: [result]}
    ctx.write(BUNDLE_EVIDENCE, "\n".join(verify_summary(report)) + "\n")
    if report.ok:
        message = (
            f"signature and {len(report.manifest.files) if report.manifest else 0} files verified"
        )
        outcome = PASS
    else:
        message = f"refused: {report.problems[0]}" + (
            f" (and {len(report.problems) - 1} more problems)" if len(report.problems) > 1 else ""
        )
        outcome = FAIL
    return {_CHECK: [CheckResult(_CHECK, where, outcome, message, timer.seconds, BUNDLE_EVIDENCE)]}
