"""Read the records a log's latest signed checkpoint covers, after verifying the log.

The log is verified first with ``audit verify``'s own code (every signature,
every root re-derived from the raw entries). The records are then streamed in
a second pass (a log of millions of records is never held in memory), and the
leaves of the entries read are folded into a Merkle root that must equal the
checkpoint's once the last one is read: what is counted is exactly what was
signed, even if the files changed between the two passes. Entries after the
checkpoint are durable but not yet published; they are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sovstack.audit.checkpoint import Checkpoint
from sovstack.audit.entries import decode_entry
from sovstack.audit.errors import VerificationError
from sovstack.audit.segments import Scanner
from sovstack.audit.site import Site
from sovstack.audit.tree import Frontier
from sovstack.audit.verify import verify_log

__all__ = ["Covered", "read_covered", "read_site"]


@dataclass(frozen=True)
class Covered:
    """The records of one log that ``checkpoint`` covers; ``uncovered`` entries came after it.

    ``records`` may be iterated once; it raises :class:`VerificationError` at
    its end if what it read does not hash to the checkpoint's root.
    """

    directory: Path
    checkpoint: Checkpoint
    records: Iterable[dict[str, Any]]
    uncovered: int
    warnings: list[str]


def read_covered(
    directory: Path, public_key: Ed25519PublicKey, origin: str | None = None
) -> Covered:
    """Verify the log in ``directory``; its records up to the latest checkpoint, to stream.

    Raises :class:`VerificationError` (with evidence) when the log does not
    verify, and from the records' iteration when the entries read do not
    hash to the checkpoint's root.
    """
    report = verify_log(directory, public_key, origin=origin)
    checkpoint = report.latest
    if checkpoint is None:  # verify_log refuses a log without checkpoints; said again for mypy
        raise VerificationError(f"{directory} has no checkpoint")
    return Covered(
        directory, checkpoint, _records(directory, checkpoint), report.uncovered, report.warnings
    )


def read_site(directory: Path, pubkey: Path, origin: str | None = None) -> list[Covered]:
    """:func:`read_covered` for every log of a site's audit folder, in order.

    ``directory`` is one log or a folder of worker logs
    (:mod:`sovstack.audit.logset`): each worker log is verified with its
    own key (``member_pubkey(pubkey, name)``) and, when ``origin`` is given,
    its own origin, and its usage is counted once, as a log of its own. The
    first log that does not verify stops the report: its
    :class:`VerificationError` names it. A missing key file is a
    :class:`KeyFileError`, raised before any log is read.
    """
    site = Site.open(directory, pubkey)
    logs = []
    for member, key in zip(site.members, site.keys, strict=True):
        with site.naming(member):
            logs.append(read_covered(member.directory, key, site.origin_of(member, origin)))
    return logs


def _records(directory: Path, checkpoint: Checkpoint) -> Iterator[dict[str, Any]]:
    frontier = Frontier()
    for index, line, leaf in Scanner(directory):
        if index >= checkpoint.size:
            break
        frontier.append(leaf)
        yield decode_entry(line)[2]
    if frontier.size != checkpoint.size or frontier.root() != checkpoint.root:
        raise VerificationError(
            f"the entries read from {directory} do not hash to the verified checkpoint"
            f" (size {checkpoint.size}): the log changed while the report read it",
            first_bad_index=min(frontier.size, checkpoint.size),
        )
