"""``sovstack audit report verify``: check a pack offline with nothing but the public key.

First the envelope: it must be whole, of the in-toto payload type, and
signed by the given key over exactly its payload. Then every file: each
one the statement lists must be there with the same SHA-256 (raw bytes, so
a whitespace change is a change), and no other file may be there. The
first bad file, in path order, is named with why it was refused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sovstack.report.build import HTML_NAME, JUNIT_NAME, OSCAL_NAME
from sovstack.report.dsse import ENVELOPE_NAME, EnvelopeError, open_envelope
from sovstack.report.errors import Refused, ReportError

__all__ = ["verify_report"]

_REQUIRED = (OSCAL_NAME, HTML_NAME, JUNIT_NAME)


def _subjects(statement: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    subjects = statement.get("subject")
    if not isinstance(subjects, list):
        raise Refused(ENVELOPE_NAME, "the statement has no subject list")
    for subject in subjects:
        try:
            name, digest = subject["name"], subject["digest"]["sha256"]
        except (KeyError, TypeError) as exc:
            raise Refused(ENVELOPE_NAME, f"a subject is malformed: {subject!r:.200}") from exc
        parts = PurePosixPath(name).parts
        if not isinstance(name, str) or name.startswith("/") or ".." in parts or name in found:
            raise Refused(ENVELOPE_NAME, f"subject {name!r} is not a plain relative path")
        found[name] = str(digest)
    for name in _REQUIRED:
        if name not in found:
            raise Refused(name, "the signed statement does not list it")
    return found


def _on_disk(folder: Path) -> dict[str, Path]:
    found = {}
    for path in folder.rglob("*"):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[name] = path  # refused below: a link is never what was signed
        elif path.is_file() and name != ENVELOPE_NAME:
            found[name] = path
    return found


def verify_report(folder: Path, public: Ed25519PublicKey) -> dict[str, Any]:
    """The signed predicate, once every file checks; :class:`Refused` names the first bad one."""
    if not folder.is_dir():
        raise ReportError(f"{folder} is not a folder")
    envelope = folder / ENVELOPE_NAME
    if not envelope.is_file():
        raise Refused(ENVELOPE_NAME, "missing: the pack is not signed")
    try:
        statement = open_envelope(envelope.read_bytes(), public)
    except EnvelopeError as exc:
        raise Refused(ENVELOPE_NAME, str(exc)) from exc
    signed = _subjects(statement)
    present = _on_disk(folder)
    for name in sorted(set(signed) | set(present)):
        path = present.get(name)
        if name not in signed:
            raise Refused(name, "not in the signed statement: a file was added")
        if path is None:
            raise Refused(name, "missing: the signed statement lists it (a file was removed)")
        if path.is_symlink():
            raise Refused(name, "is a symbolic link, not the file that was signed")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != signed[name]:
            raise Refused(
                name, f"SHA-256 {actual} differs from the signed {signed[name]}: the file changed"
            )
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        raise Refused(ENVELOPE_NAME, "the statement has no predicate")
    return predicate
