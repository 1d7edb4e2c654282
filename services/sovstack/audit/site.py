"""The logs of a site checked one by one: what ``audit verify``, ``witness`` and ``prove`` share.

A site's audit folder is one log or a folder of worker logs
(:mod:`sovstack.audit.logset`); each member is checked on its own, with its
own public key and origin. :class:`Site` opens the set and runs a check over
every member:

* every member's public key is loaded, and every member's folder checked to
  be a log, before any member is checked: a missing key file or an empty
  worker folder is a usage error (exit 2) and nothing was half done;
* a member of a set that fails verification does not stop the others: its
  :class:`VerificationError` is handed on named after the member, the other
  members are still checked, and the set fails at the end with one error
  naming every member that failed;
* a single log (not a set) is checked exactly as before: its error is raised
  unchanged, so the one-log commands keep their output byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sovstack.audit.checkpoint import Checkpoint, open_checkpoint, split_note
from sovstack.audit.errors import VerificationError
from sovstack.audit.keys import load_public_key
from sovstack.audit.logset import Member, logs_of, member_origin, member_pubkey
from sovstack.audit.recovery import require_log

__all__ = ["Site", "note_origin"]

T = TypeVar("T")


def note_origin(note: str) -> str:
    """The origin a signed note names (its first line); its signature is NOT checked."""
    body, _ = split_note(note)
    return body.split("\n", 1)[0]


@dataclass(frozen=True)
class Site:
    """The logs in ``directory``, each with the path and the key of its public key."""

    directory: Path
    members: tuple[Member, ...]
    pubkeys: tuple[Path, ...]
    keys: tuple[Ed25519PublicKey, ...]

    @classmethod
    def open(cls, directory: Path, pubkey: Path) -> Site:
        """The logs in ``directory``, with their keys from ``pubkey`` (``member_pubkey``).

        Raises :class:`KeyFileError` naming a member's key file that is
        missing or not a key, and :class:`NotALogError` for a folder that
        holds a log and worker logs, or a member that is not a log.
        """
        members = tuple(logs_of(directory))
        pubkeys = tuple(member_pubkey(pubkey, m.name) for m in members)
        keys = tuple(load_public_key(path) for path in pubkeys)
        if members[0].name:  # one log is checked where it is read, as it always was
            for member in members:
                require_log(member.directory)
        return cls(directory, members, pubkeys, keys)

    @property
    def is_set(self) -> bool:
        """Whether the folder is a set of worker logs (not one log)."""
        return bool(self.members[0].name)

    def prefix(self, member: Member) -> str:
        """What goes before a line about ``member``: nothing for one log, its label for a set."""
        return f"{member.label(self.directory)}: " if self.is_set else ""

    def named(self, member: Member, exc: VerificationError) -> VerificationError:
        """``exc`` with its message saying which member it is of (unchanged for one log)."""
        if not self.is_set:
            return exc
        return VerificationError(
            f"{self.prefix(member)}{exc}",
            first_bad_index=exc.first_bad_index,
            evidence=exc.evidence,
        )

    @contextmanager
    def naming(self, member: Member) -> Iterator[None]:
        """Re-raise a :class:`VerificationError` named after ``member`` (one log: unchanged)."""
        try:
            yield
        except VerificationError as exc:
            if not self.is_set:
                raise
            raise self.named(member, exc) from exc

    @staticmethod
    def origin_of(member: Member, origin: str | None) -> str | None:
        """The origin ``member`` must have when the site's log is ``origin`` (``None``: any)."""
        return None if origin is None else member_origin(origin, member.name)

    def member_of(self, note: str, origin: str | None = None) -> tuple[Member, Ed25519PublicKey]:
        """The member a checkpoint ``note`` is of, and its key (its signature is NOT checked).

        One log: that log. A set: the member whose origin the note names, that
        is ``member_origin(origin, name)`` when ``origin`` is given, else the
        one whose name is the last part of the note's origin
        (``<site origin>/worker-<i>``). Raises :class:`VerificationError` when
        no member of the set is the note's log.
        """
        if not self.is_set:
            return self.members[0], self.keys[0]
        named = note_origin(note)
        for member, key in zip(self.members, self.keys, strict=True):
            wanted = self.origin_of(member, origin)
            if named == wanted or (wanted is None and named.endswith(f"/{member.name}")):
                return member, key
        raise VerificationError(
            f"the checkpoint is of log {named!r}, and no log in {self.directory} is"
            f" ({', '.join(m.name for m in self.members)})",
            evidence={"checkpoint": note},
        )

    def kept(self, note: str, origin: str | None = None) -> tuple[Member, tuple[str, Checkpoint]]:
        """The member a checkpoint kept elsewhere is of, and the checkpoint, signature checked.

        Raises :class:`VerificationError` when no member is its log (see
        :meth:`member_of`) or its signature by that member's key does not verify.
        """
        member, key = self.member_of(note, origin)
        return member, (note, open_checkpoint(note, key, self.origin_of(member, origin)))

    def check_all(
        self,
        check: Callable[[Member, Ed25519PublicKey], T],
        show: Callable[[Member, T], None],
        failed: Callable[[VerificationError], None],
    ) -> None:
        """Run ``check`` on every member in order and ``show`` what each returns.

        One log: its :class:`VerificationError` is raised unchanged. A set: a
        member's error goes to ``failed`` named after the member, the next
        members are still checked, and once all are, a
        :class:`VerificationError` naming every member that failed is raised.
        Other errors (usage, I/O) stop at once.
        """
        failures: list[Member] = []
        for member, key in zip(self.members, self.keys, strict=True):
            if not self.is_set:
                show(member, check(member, key))
                continue
            try:
                result = check(member, key)
            except VerificationError as exc:
                failed(self.named(member, exc))
                failures.append(member)
                continue
            show(member, result)
        if failures:
            raise VerificationError(
                f"{len(failures)} of {len(self.members)} logs in {self.directory} failed:"
                f" {', '.join(m.name for m in failures)}"
            )
