"""Read the records a log's latest signed checkpoint covers, after verifying the log.

The log is verified first with ``audit verify``'s own code (every signature,
every root re-derived from the raw entries). The records are then read in a
second pass, and the leaves of the entries read are folded into a Merkle root
that must equal the checkpoint's: what is counted is exactly what was signed,
even if the files changed between the two passes. Entries after the
checkpoint are durable but not yet published; they are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sovstack.audit.checkpoint import Checkpoint
from sovstack.audit.entries import decode_entry
from sovstack.audit.errors import VerificationError
from sovstack.audit.segments import Scanner
from sovstack.audit.tree import Frontier
from sovstack.audit.verify import verify_log

__all__ = ["Covered", "read_covered"]


@dataclass(frozen=True)
class Covered:
    """The records of one log that ``checkpoint`` covers; ``uncovered`` entries came after it."""

    directory: Path
    checkpoint: Checkpoint
    records: list[dict[str, Any]]
    uncovered: int
    warnings: list[str]


def read_covered(
    directory: Path, public_key: Ed25519PublicKey, origin: str | None = None
) -> Covered:
    """Verify the log in ``directory``, then read the records its latest checkpoint covers.

    Raises :class:`VerificationError` (with evidence) when the log does not
    verify or the entries read do not hash to the checkpoint's root.
    """
    report = verify_log(directory, public_key, origin=origin)
    checkpoint = report.latest
    if checkpoint is None:  # verify_log refuses a log without checkpoints; said again for mypy
        raise VerificationError(f"{directory} has no checkpoint")
    frontier = Frontier()
    records: list[dict[str, Any]] = []
    for index, line, leaf in Scanner(directory):
        if index >= checkpoint.size:
            break
        frontier.append(leaf)
        records.append(decode_entry(line)[2])
    if frontier.size != checkpoint.size or frontier.root() != checkpoint.root:
        raise VerificationError(
            f"the entries read from {directory} do not hash to the verified checkpoint"
            f" (size {checkpoint.size}): the log changed while the report read it",
            first_bad_index=min(frontier.size, checkpoint.size),
        )
    return Covered(directory, checkpoint, records, report.uncovered, report.warnings)
