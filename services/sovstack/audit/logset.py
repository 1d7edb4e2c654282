"""The audit logs of one gateway: one log, or one log per worker process.

A gateway with one process writes one log in its ``audit_dir``. A gateway
with ``workers: N`` (N > 1) gives each worker process a log of its own, so
no lock is shared on the request path::

    audit_dir/worker-0/   origin "<audit_origin>/worker-0", key "<key>.worker-0"
    audit_dir/worker-1/   origin "<audit_origin>/worker-1", key "<key>.worker-1"
    ...

Each member is a complete log (its own entries, tree and signed
checkpoints) and is verified on its own, with its own public key
(``<key>.worker-<i>.pub`` beside ``<key>.pub``) and origin. A folder holding
both a log and worker logs is refused: it is not clear which is the site's.
Which members exist is read from the folder, so a log set is verified with
no knowledge of how many workers wrote it; ``expected`` lets a caller that
knows N refuse a set with a worker log missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sovstack.audit.errors import NotALogError
from sovstack.audit.segments import list_segments

__all__ = [
    "WORKER_PREFIX",
    "Member",
    "holds_log",
    "logs_of",
    "member_key",
    "member_origin",
    "member_pubkey",
    "worker_name",
]

WORKER_PREFIX: Final = "worker-"
_WORKER: Final = re.compile(r"^worker-(0|[1-9][0-9]{0,2})$")


@dataclass(frozen=True)
class Member:
    """One log of a set: its name (``""`` for a single log, else ``worker-<i>``) and folder."""

    name: str
    directory: Path

    def label(self, site: Path) -> str:
        """How a message names this log: the folder given, and the member's name if any."""
        return str(site) if not self.name else f"{site}/{self.name}"


def worker_name(index: int) -> str:
    return f"{WORKER_PREFIX}{index}"


def member_origin(origin: str, name: str) -> str:
    """The origin of member ``name`` of the site's log whose origin is ``origin``."""
    return origin if not name else f"{origin}/{name}"


def member_key(key: Path, name: str) -> Path:
    """The private signing key of member ``name``: ``<key>.worker-<i>`` beside ``key``."""
    return key if not name else key.with_name(f"{key.name}.{name}")


def member_pubkey(pubkey: Path, name: str) -> Path:
    """The public key of member ``name``: ``<key>.worker-<i>.pub`` for ``<key>.pub``."""
    if not name:
        return pubkey
    stem = pubkey.name.removesuffix(".pub")
    return pubkey.with_name(f"{stem}.{name}.pub")


def _index(path: Path) -> int:
    return int(path.name.removeprefix(WORKER_PREFIX))


def holds_log(directory: Path) -> bool:
    """Whether ``directory`` itself holds a log (a segment or a checkpoints file)."""
    return bool(list_segments(directory)) or (directory / "checkpoints").exists()


def logs_of(directory: Path, expected: int | None = None) -> list[Member]:
    """The logs in ``directory``: itself when it is one log, else its worker logs in order.

    Raises :class:`NotALogError` when the folder holds both a log and worker
    logs, or (with ``expected``) when a worker log of ``worker-0`` up to
    ``worker-<expected - 1>`` is missing. A folder with neither is returned as
    one log, so the caller's own check says what is missing in it.
    """
    directory = Path(directory)
    workers = sorted(
        (p for p in directory.glob(f"{WORKER_PREFIX}*") if p.is_dir() and _WORKER.match(p.name)),
        key=_index,
    )
    if workers and holds_log(directory):
        raise NotALogError(
            f"{directory} holds a log and worker logs ({', '.join(p.name for p in workers)}): "
            "give the folder of one of them"
        )
    if expected is not None and expected > 1:
        missing = sorted(set(range(expected)) - {_index(p) for p in workers})
        if missing:
            names = ", ".join(worker_name(i) for i in missing)
            raise NotALogError(f"{directory}: worker logs missing: {names}")
    if not workers:
        return [Member("", directory)]
    return [Member(p.name, p) for p in workers]
