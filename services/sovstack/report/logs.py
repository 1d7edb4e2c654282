"""The ``audit: …`` checks, on each audit log the report is given.

Per log, in one pass over its entries after :func:`verify_log` re-derived
every root:

- ``verify``: every checkpoint signature and root (and the witness's
  checkpoint, when there is one, must still be in the log);
- ``witness``: a consistency proof from the checkpoint the witness accepted
  to the latest one; no witness state, or none for this log, is a check
  that did not run;
- ``inclusion``: proofs for K entries at indexes derived from the latest
  root (SHA-256 of the root and the proof's number), so nobody picks them;
- ``pairing`` and ``retention``: from the records (:mod:`.logscan`).

A log that does not verify fails every one of its checks: nothing in it is
proven.

A log given may be a gateway's set of worker logs (:mod:`sovstack.audit.logset`):
it is expanded into its members, each checked on its own with its own public
key (``<key>.worker-<i>.pub`` for ``<key>.pub``) and named ``<dir>/worker-<i>``,
so a member that fails fails its own checks and no other member's.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sovstack.audit.checkpoint import Checkpoint
from sovstack.audit.errors import AuditError, VerificationError
from sovstack.audit.inclusion import BUNDLE_FORMAT, latest_note, verify_bundle
from sovstack.audit.jsonlines import dump_line
from sovstack.audit.keys import load_public_key
from sovstack.audit.logset import logs_of, member_pubkey
from sovstack.audit.proofs import consistency_proof, inclusion_proof, verify_consistency
from sovstack.audit.recovery import CHECKPOINTS_FILE
from sovstack.audit.verify import Report, verify_log
from sovstack.audit.witness import accepted_checkpoint
from sovstack.report.context import Context, LogInput, safe_name
from sovstack.report.logscan import Scan, dump, pairing, retention, scan_entries
from sovstack.report.model import ERROR, FAIL, NOT_RUN, PASS, CheckResult

__all__ = ["LOG_CHECKS", "LogMember", "check_logs", "log_members", "proof_indexes"]

LOG_CHECKS: Final = ("verify", "witness", "inclusion", "pairing", "retention")
_INDEX_DOMAIN: Final = b"sovstack-audit-report/inclusion-index\n"


def proof_indexes(root: bytes, size: int, count: int) -> list[int]:
    """``count`` indexes in ``[0, size)`` derived from ``root``: sorted, without repeats."""
    if size == 0:
        return []
    found = set()
    for n in range(count):
        digest = hashlib.sha256(_INDEX_DOMAIN + root + n.to_bytes(4, "big")).digest()
        found.add(int.from_bytes(digest[:8], "big") % size)
    return sorted(found)


@dataclass(frozen=True)
class LogMember:
    """One log the checks run on: how the report names it, its evidence folder, its input."""

    label: str  # "<dir>" for a single log, "<dir>/worker-<i>" for a member of a set
    slug: str
    log: LogInput  # the member's own folder and public key


def log_members(given: LogInput) -> list[LogMember]:
    """The logs of ``given``: itself, or its worker logs, each with its own public key.

    Raises :class:`NotALogError` for a folder holding both a log and worker logs.
    """
    site = given.directory
    return [
        LogMember(
            m.label(site),
            safe_name(f"{site.name}-{m.name}" if m.name else site.name),
            LogInput(m.directory, member_pubkey(given.pubkey, m.name)),
        )
        for m in logs_of(site)
    ]


def check_logs(ctx: Context) -> dict[str, list[CheckResult]]:
    """Run every ``audit: …`` check on every log, each member of a set on its own.

    Results are keyed by ``audit <check>``: one per log (member) and check,
    its ``where`` naming the log (``log <dir>``, or ``log <dir>/worker-<i>``).
    The caller MUST have refused a folder that holds both a log and worker
    logs (:func:`log_members` raises :class:`NotALogError`; ``build_report``
    refuses it before anything is written).
    """
    results: dict[str, list[CheckResult]] = {f"audit {c}": [] for c in LOG_CHECKS}
    members = [one for given in ctx.inputs.logs for one in log_members(given)]
    for number, one in enumerate(members, 1):
        with ctx.clock.timed() as timer:
            found = _check_log(ctx, one.log, f"evidence/logs/{number}-{one.slug}")
        where = f"log {one.label}"
        for check, result, message, evidence in found:
            results[f"audit {check}"].append(
                CheckResult(f"audit {check}", where, result, message, timer.seconds, evidence)
            )
    return results


Found = list[tuple[str, str, str, str]]  # (check, result, message, evidence file)


def _check_log(ctx: Context, log: LogInput, base: str) -> Found:
    try:
        key = load_public_key(log.pubkey)
        note = latest_note(log.directory)
    except AuditError as exc:
        why = f"the log cannot be read: {exc}"
        return [(c, ERROR, why, "") for c in LOG_CHECKS]
    ctx.write(f"{base}/checkpoints", (log.directory / CHECKPOINTS_FILE).read_bytes())
    ctx.write(f"{base}/latest-checkpoint.txt", note)
    trusted = None
    if ctx.inputs.witness_state is not None:
        origin = note.split("\n", 1)[0]
        try:
            trusted = accepted_checkpoint(ctx.inputs.witness_state, key, origin)
        except VerificationError as exc:
            why = f"the witness's checkpoint does not verify: {exc}"
            return [(c, FAIL, why, "") for c in LOG_CHECKS]
    verify_file = f"{base}/audit-verify.json"
    try:
        report = verify_log(log.directory, key, trusted=trusted, keep_leaves=True)
    except VerificationError as exc:
        ctx.write(
            verify_file,
            dump(
                {
                    "verified": False,
                    "error": str(exc),
                    "first_bad_index": exc.first_bad_index,
                    "evidence": exc.evidence,
                }
            ),
        )
        why = f"the log does not verify: {exc}"
        ctx.facts.setdefault("logs", []).append(
            {
                "directory": str(log.directory),
                "origin": note.split("\n", 1)[0],
                "entries": "",
                "size": "",
                "root": "",
                "checkpoint": note,
                "first_record": "",
                "witness": "not shown",
                "retention": "not shown",
                "error": why,
            }
        )
        return [("verify", FAIL, why, verify_file)] + [
            (c, FAIL, "not shown: the log does not verify", verify_file) for c in LOG_CHECKS[1:]
        ]
    latest = report.latest
    assert latest is not None  # noqa: S101 (verify_log refuses a log without checkpoints)
    ctx.write(verify_file, dump(_verified(report, latest)))
    found: Found = [("verify", PASS, _verified_text(report, latest), verify_file)]
    found.append(_witness(ctx, base, report, latest, trusted))
    indexes = proof_indexes(latest.root, latest.size, ctx.inputs.proofs)
    scan = scan_entries(log.directory, latest.size, set(indexes))
    found.append(_inclusion(ctx, base, report, key, note, scan, indexes))
    found.append(pairing(ctx, base, scan, latest))
    found.append(retention(ctx, base, scan, latest))
    ctx.facts.setdefault("logs", []).append(
        {
            "directory": str(log.directory),
            "origin": latest.origin,
            "entries": report.entries,
            "size": latest.size,
            "root": latest.root.hex(),
            "checkpoint": note,
            "first_record": scan.first_time or "",
            "witness": found[1][2],
            "retention": found[4][2],
            "error": "",
        }
    )
    return found


def _verified(report: Report, latest: Checkpoint) -> dict[str, Any]:
    return {
        "verified": True,
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "origin": latest.origin,
        "size": latest.size,
        "root": latest.root.hex(),
        "uncovered_entries": report.uncovered,
        "warnings": report.warnings,
    }


def _verified_text(report: Report, latest: Checkpoint) -> str:
    return (
        f"{report.entries} entries, {report.checkpoints} checkpoints verified;"
        f" latest {latest.origin} size {latest.size} root {latest.root.hex()}"
    )


def _witness(
    ctx: Context,
    base: str,
    report: Report,
    latest: Checkpoint,
    trusted: tuple[str, Checkpoint] | None,
) -> tuple[str, str, str, str]:
    if ctx.inputs.witness_state is None:
        return ("witness", NOT_RUN, "no witness state was given (--witness-state)", "")
    if trusted is None:
        return (
            "witness",
            NOT_RUN,
            f"the witness has accepted no checkpoint of {latest.origin}",
            "",
        )
    old_note, old = trusted
    ctx.write(f"{base}/witness-checkpoint.txt", old_note)
    proof = consistency_proof(report.leaves, old.size, latest.size)
    evidence = ctx.write(
        f"{base}/consistency-proof.json",
        dump(
            {
                "old_size": old.size,
                "old_root": old.root.hex(),
                "new_size": latest.size,
                "new_root": latest.root.hex(),
                "proof": [base64.b64encode(p).decode() for p in proof],
            }
        ),
    )
    try:
        verify_consistency(old.size, latest.size, old.root, latest.root, proof)
    except VerificationError as exc:
        return ("witness", FAIL, f"not consistent with the witness's checkpoint: {exc}", evidence)
    return (
        "witness",
        PASS,
        f"consistent with the witness's checkpoint (size {old.size} -> {latest.size})",
        evidence,
    )


def _inclusion(
    ctx: Context,
    base: str,
    report: Report,
    key: Ed25519PublicKey,
    note: str,
    scan: Scan,
    indexes: list[int],
) -> tuple[str, str, str, str]:
    if not indexes:
        return ("inclusion", FAIL, "the log holds no entry to prove", "")
    bundles = []
    size = len(report.leaves) if report.latest is None else report.latest.size
    for index in indexes:
        proof = inclusion_proof(report.leaves, index, size)
        bundles.append(
            {
                "format": BUNDLE_FORMAT,
                "index": index,
                "entry": scan.lines[index].decode("utf-8"),
                "proof": [base64.b64encode(p).decode() for p in proof],
                "checkpoint": note,
            }
        )
    evidence = ctx.write(
        f"{base}/inclusion-proofs.jsonl",
        "".join(dump_line(b) + "\n" for b in bundles),
    )
    try:
        for bundle in bundles:
            verify_bundle(bundle, key)
    except VerificationError as exc:
        return ("inclusion", FAIL, f"an inclusion proof does not verify: {exc}", evidence)
    return ("inclusion", PASS, f"{len(bundles)} proofs at indexes {indexes} verify", evidence)
