"""A witness: accept a newer copy of a log only if it extends what was accepted before.

An audit node receives copies of a gateway's log directory (segments and
``checkpoints``). For each origin the witness keeps, in its state
directory, the last checkpoint it accepted. A new copy is accepted only if
it verifies in full (every root re-derived from its entries, every
signature checked), still contains the accepted checkpoint, and a
consistency proof built from its entries joins the accepted checkpoint to
its latest one. A rewritten, truncated or forked copy is refused with a
:class:`VerificationError` carrying both checkpoints and the proof.

A witness with a key of its own then cosigns what it accepted
(:func:`store_cosigned`, c2sp.org/tlog-cosignature) and keeps the latest
cosigned note beside the accepted checkpoint.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sovstack.audit.checkpoint import Checkpoint, open_checkpoint
from sovstack.audit.cosignature import cosign
from sovstack.audit.errors import CheckpointError, ProofError, VerificationError
from sovstack.audit.logset import Member
from sovstack.audit.proofs import consistency_proof, verify_consistency
from sovstack.audit.site import Site
from sovstack.audit.verify import read_checkpoints, verify_log
from sovstack.core.keyfiles import fsync_directory, write_all

_WORKER_ORIGIN = re.compile(r"/worker-(0|[1-9][0-9]{0,2})$")

__all__ = [
    "Accepted",
    "accepted_checkpoint",
    "cosigned_path",
    "store_cosigned",
    "witness",
    "witness_site",
]


@dataclass(frozen=True)
class Accepted:
    previous: Checkpoint | None
    latest: Checkpoint
    note: str


def _state_file(state_dir: Path, origin: str, suffix: str = "checkpoint") -> Path:
    digest = hashlib.sha256(origin.encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in origin)[:64]
    return state_dir / f"{safe}.{digest}.{suffix}"


def cosigned_path(state_dir: Path, origin: str) -> Path:
    """Where :func:`store_cosigned` keeps the latest cosigned checkpoint of ``origin``."""
    return _state_file(state_dir, origin, "cosigned")


def accepted_checkpoint(
    state_dir: Path, public_key: Ed25519PublicKey, origin: str
) -> tuple[str, Checkpoint] | None:
    """The checkpoint last accepted for ``origin`` (signature re-checked), if any."""
    path = _state_file(state_dir, origin)
    if not path.exists():
        return None
    note = path.read_text(encoding="utf-8")
    try:
        return note, open_checkpoint(note, public_key, origin)
    except CheckpointError as exc:
        raise VerificationError(
            f"the witness state {path} does not verify with this key: {exc}"
        ) from exc


def witness(
    copy_dir: Path, public_key: Ed25519PublicKey, state_dir: Path, origin: str | None = None
) -> Accepted:
    """Check the copy in ``copy_dir`` against the witness state; record it if accepted."""
    signed, _ = read_checkpoints(copy_dir, public_key, origin)
    latest_note, latest = signed[-1]
    previous = accepted_checkpoint(state_dir, public_key, latest.origin)
    try:
        report = verify_log(copy_dir, public_key, origin=latest.origin, trusted=previous,
                            keep_leaves=True)  # fmt: skip
    except VerificationError as exc:
        evidence = dict(exc.evidence)
        if previous is not None:
            evidence.setdefault("accepted_checkpoint", previous[0])
        raise VerificationError(
            f"copy refused: {exc}", first_bad_index=exc.first_bad_index, evidence=evidence
        ) from exc
    if previous is not None:
        old_note, old = previous
        proof = consistency_proof(report.leaves, old.size, latest.size)
        try:
            verify_consistency(old.size, latest.size, old.root, latest.root, proof)
        except ProofError as exc:
            raise VerificationError(
                f"the copy is not a consistent extension of the accepted log: {exc}",
                first_bad_index=old.size,
                evidence={
                    "accepted_checkpoint": old_note,
                    "new_checkpoint": latest_note,
                    "consistency_proof": " ".join(base64.b64encode(p).decode() for p in proof),
                },
            ) from exc
    _store(state_dir, latest.origin, latest_note)
    return Accepted(previous[1] if previous else None, latest, latest_note)


def witness_site(
    site: Site,
    state_dir: Path,
    show: Callable[[Member, Accepted], None],
    failed: Callable[[VerificationError], None],
    origin: str | None = None,
) -> None:
    """:func:`witness` each log of ``site`` (a copy of a site's audit folder), in order.

    Each worker log is witnessed with its own key, under its own origin (the
    state is kept per origin), as :meth:`Site.check_all` runs a check: what
    one log accepts is recorded even when another is refused. A worker log of
    the same gateway that the witness accepted before and the copy no longer
    holds fails too (a removed log would otherwise go unseen): it is sent to
    ``failed`` and a :class:`VerificationError` naming each is raised.
    """
    accepted: list[str] = []

    def check(member: Member, key: Ed25519PublicKey) -> Accepted:
        return witness(member.directory, key, state_dir, site.origin_of(member, origin))

    def shown(member: Member, result: Accepted) -> None:
        accepted.append(result.latest.origin)
        show(member, result)

    refused: VerificationError | None = None
    try:
        site.check_all(check, shown, failed)
    except VerificationError as exc:
        refused = exc
    gone = _missing_workers(state_dir, accepted, {m.name for m in site.members})
    for lost in gone:
        failed(VerificationError(f"{lost}: accepted before, missing from {site.directory}"))
    if gone:
        raise VerificationError(
            f"{len(gone)} worker log(s) accepted before are missing from {site.directory}:"
            f" {', '.join(gone)}"
        )
    if refused is not None:
        raise refused


def _missing_workers(state_dir: Path, accepted: list[str], present: set[str]) -> list[str]:
    """Origins ``<gateway>/worker-<i>`` in the state whose gateway is accepted, log not present."""
    gateways = {o.rpartition("/")[0] for o in accepted if _WORKER_ORIGIN.search(o)}
    gone = []
    for path in sorted(state_dir.glob("*.checkpoint")):
        kept = path.read_text(encoding="utf-8").split("\n", 1)[0]
        gateway, _, name = kept.rpartition("/")
        if gateway in gateways and _WORKER_ORIGIN.search(kept) and name not in present:
            gone.append(kept)
    return gone


def store_cosigned(state_dir: Path, accepted: Accepted, key: Ed25519PrivateKey, name: str) -> Path:
    """Cosign the checkpoint :func:`witness` just accepted as ``name``; keep it; return where."""
    path = cosigned_path(state_dir, accepted.latest.origin)
    _write(path, cosign(accepted.note, key, name))
    return path


def _store(state_dir: Path, origin: str, note: str) -> None:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    _write(_state_file(state_dir, origin), note)


def _write(path: Path, note: str) -> None:
    """Replace ``path`` with ``note`` durably: a crash leaves the old or the new note."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        write_all(fd, note.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)
    fsync_directory(path.parent)
