"""``audit verify``: re-derive every root from the raw entries and trust nothing else.

The verifier reads the ``checkpoints`` file and checks every signature
against the given public key, checks that checkpoints never shrink and never
give two roots for one size, then re-reads every entry, re-hashes it and
rebuilds the tree, comparing the root at each checkpoint's size with the
signed one. Any difference raises :class:`VerificationError` naming the
first bad index and carrying the evidence: both checkpoints, the recomputed
root and the consistency proof the entries yield between them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sovstack.audit.checkpoint import Checkpoint, open_checkpoint, split_notes
from sovstack.audit.errors import CheckpointError, ProofError, VerificationError
from sovstack.audit.logset import Member
from sovstack.audit.proofs import consistency_proof, verify_consistency
from sovstack.audit.recovery import CHECKPOINTS_FILE, require_log
from sovstack.audit.rfc6962 import EMPTY_ROOT
from sovstack.audit.segments import Break, Scanner
from sovstack.audit.site import Site
from sovstack.audit.tree import Frontier

__all__ = ["Report", "read_checkpoints", "verify_log", "verify_site"]

Signed = tuple[str, Checkpoint]


@dataclass
class Report:
    """What a successful verification established."""

    entries: int
    checkpoints: int
    latest: Checkpoint | None
    leaves: list[bytes] = field(default_factory=list, repr=False)
    warnings: list[str] = field(default_factory=list)

    @property
    def uncovered(self) -> int:
        """Entries after the latest checkpoint: durable, not yet published."""
        return self.entries - (self.latest.size if self.latest else 0)


def read_checkpoints(
    directory: Path, public_key: Ed25519PublicKey, origin: str | None = None
) -> tuple[list[Signed], list[str]]:
    """Every checkpoint in ``directory``, signature-checked, in order; plus warnings."""
    require_log(directory)
    path = directory / CHECKPOINTS_FILE
    if not path.is_file():
        raise VerificationError(f"{directory} has entries but no checkpoints file: it was removed")
    data = path.read_bytes()
    notes, complete = split_notes(data)
    warnings = []
    if complete < len(data):
        warnings.append(
            f"{len(data) - complete} bytes of an unfinished checkpoint at the end of {path.name}"
            " (a crash while publishing; reopening the log trims them)"
        )
    if not notes:
        raise VerificationError(f"{path} holds no checkpoint")
    signed: list[Signed] = []
    for number, note in enumerate(notes):
        try:
            checkpoint = open_checkpoint(note, public_key, origin)
        except CheckpointError as exc:
            exc.evidence["checkpoint_number"] = str(number)
            raise
        origin = checkpoint.origin
        if signed:
            _check_order(signed[-1], (note, checkpoint), number)
        signed.append((note, checkpoint))
    return signed, warnings


def _check_order(before: Signed, after: Signed, number: int) -> None:
    (note1, cp1), (note2, cp2) = before, after
    evidence = {"checkpoint_before": note1, "checkpoint_after": note2}
    if cp2.size < cp1.size:
        raise VerificationError(
            f"checkpoint {number} (size {cp2.size}) is older than the one before it"
            f" (size {cp1.size}): an old checkpoint was replayed or the log rolled back",
            first_bad_index=cp2.size,
            evidence=evidence,
        )
    if cp2.size == cp1.size and cp2.root != cp1.root:
        raise VerificationError(
            f"two signed checkpoints of size {cp1.size} with different roots: the log forked",
            evidence=evidence,
        )


def verify_log(
    directory: Path,
    public_key: Ed25519PublicKey,
    *,
    origin: str | None = None,
    trusted: Signed | None = None,
    check_records: bool = False,
    keep_leaves: bool = False,
) -> Report:
    """Verify the log in ``directory``; raise :class:`VerificationError` with evidence.

    ``trusted`` is a checkpoint obtained elsewhere (a witness, an earlier
    verification; its signature MUST already be verified): the log must
    still contain it. ``check_records`` also checks every record against
    the schema. ``keep_leaves`` returns all leaf hashes (for proofs).
    """
    signed, warnings = read_checkpoints(directory, public_key, origin)
    targets = list(signed)
    if trusted is not None:
        if trusted[1].origin != signed[-1][1].origin:
            raise VerificationError(
                f"the trusted checkpoint is for {trusted[1].origin!r}, the log is"
                f" {signed[-1][1].origin!r}"
            )
        if trusted[1].size > signed[-1][1].size:
            raise VerificationError(
                f"the log's latest checkpoint (size {signed[-1][1].size}) is older than the trusted"
                f" one (size {trusted[1].size}): the log was truncated or rolled back",
                first_bad_index=signed[-1][1].size,
                evidence={"trusted_checkpoint": trusted[0], "latest_checkpoint": signed[-1][0]},
            )
        targets = sorted([*signed, trusted], key=lambda s: s[1].size)
    scanner = Scanner(directory, strict_from=0 if check_records else None)
    frontier = Frontier()
    leaves: list[bytes] = []
    pending = 0
    verified: list[Signed] = []
    mismatch: tuple[list[Signed], Signed, bytes] | None = None
    while pending < len(targets) and targets[pending][1].size == 0:
        if targets[pending][1].root != EMPTY_ROOT:
            mismatch = (verified, targets[pending], EMPTY_ROOT)
            break
        verified.append(targets[pending])
        pending += 1
    for first, _lines, batch in scanner.batches():
        if keep_leaves:
            leaves.extend(batch)
        done = 0  # leaves of this batch already in the frontier (which then holds first + done)
        while mismatch is None and pending < len(targets):
            size = targets[pending][1].size
            if size > first + len(batch):
                break
            frontier.extend(batch[done : size - first])
            done = size - first
            root = frontier.root()
            if root != targets[pending][1].root:
                mismatch = (verified, targets[pending], root)
            else:
                verified.append(targets[pending])
                pending += 1
        frontier.extend(batch[done:])
    broken = scanner.broken
    if mismatch is not None:
        raise _root_mismatch(directory, public_key, mismatch, broken)
    covered = targets[-1][1].size
    if broken is not None:
        if not (broken.torn_tail and broken.index >= covered):
            evidence = {"segment": broken.segment.name, "byte_offset": str(broken.offset)}
            covering = [s for s in targets if s[1].size > broken.suspect]
            if covering:
                evidence["checkpoint"] = covering[0][0]
            raise VerificationError(
                broken.reason, first_bad_index=broken.suspect, evidence=evidence
            )
        warnings.append(f"{broken.reason} (after the latest checkpoint; reopening trims it)")
    if pending < len(targets):
        missing = targets[pending]
        raise VerificationError(
            f"a checkpoint covers {missing[1].size} entries but the log holds {frontier.size}:"
            f" entries {frontier.size}..{missing[1].size - 1} are missing (truncated)",
            first_bad_index=frontier.size,
            evidence={"checkpoint": missing[0]},
        )
    return Report(frontier.size, len(signed), signed[-1][1], leaves, warnings)


def verify_site(
    site: Site,
    show: Callable[[Member, Report], None],
    failed: Callable[[VerificationError], None],
    *,
    origin: str | None = None,
    note: str | None = None,
    check_records: bool = False,
) -> None:
    """:func:`verify_log` on every log of ``site``, as :meth:`Site.check_all` runs a check.

    ``origin`` is the site's (each worker log's is ``member_origin``);
    ``note`` is a checkpoint kept elsewhere, trusted for the log it is of
    (:meth:`Site.kept`) once its signature is checked, which happens first.
    """
    kept = site.kept(note, origin) if note is not None else None

    def check(member: Member, key: Ed25519PublicKey) -> Report:
        trusted = kept[1] if kept is not None and kept[0] == member else None
        return verify_log(
            member.directory,
            key,
            origin=site.origin_of(member, origin),
            trusted=trusted,
            check_records=check_records,
        )

    site.check_all(check, show, failed)


def _root_mismatch(
    directory: Path,
    public_key: Ed25519PublicKey,
    mismatch: tuple[list[Signed], Signed, bytes],
    broken: Break | None,
) -> VerificationError:
    verified, bad, root = mismatch
    end = bad[1].size
    # The last verified checkpoint strictly below: one of the same size that
    # matched while this one does not is a fork, and says nothing about where.
    below = [s for s in verified if s[1].size < end]
    good = below[-1] if below else None
    start = good[1].size if good else 0
    evidence = {"checkpoint": bad[0], "recomputed_root": base64.b64encode(root).decode()}
    if broken is not None and start <= broken.suspect < end:
        first_bad, detail = broken.suspect, broken.reason
    else:
        first_bad = start
        detail = (
            f"the entries in [{start}, {end}) hash to another root although each links to the one"
            f" before: they were rewritten from some index in that range (at the latest {end - 1})"
        )
    if good is not None and good[1].size > 0:
        evidence["previous_checkpoint"] = good[0]
        evidence.update(_consistency_evidence(directory, good[1], bad[1]))
    return VerificationError(
        f"checkpoint of size {end} does not match the entries: {detail}",
        first_bad_index=first_bad,
        evidence=evidence,
    )


def _consistency_evidence(directory: Path, old: Checkpoint, new: Checkpoint) -> dict[str, str]:
    leaves = [leaf for _, _, leaf in Scanner(directory)][: new.size]
    if len(leaves) < new.size:
        return {}
    proof = consistency_proof(leaves, old.size, new.size)
    evidence = {"consistency_proof": " ".join(base64.b64encode(p).decode() for p in proof)}
    try:
        verify_consistency(old.size, new.size, old.root, new.root, proof)
    except ProofError as exc:
        evidence["consistency_proof_result"] = str(exc)
    return evidence
