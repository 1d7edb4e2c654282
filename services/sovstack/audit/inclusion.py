"""``audit prove`` and ``audit verify-proof``: inclusion proof bundles.

A bundle is one JSON object that stands alone offline::

    {"format": "sovstack-audit-inclusion/v1", "index": N,
     "entry": "<the entry line>", "proof": ["<base64 node>", ...],
     "checkpoint": "<signed note>"}

Verifying one needs only the log's public key: the checkpoint signature is
checked, the entry is hashed as a leaf, and the proof must lead from it at
``index`` to the checkpoint's root.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sovstack.audit.checkpoint import Checkpoint, open_checkpoint, split_notes
from sovstack.audit.entries import decode_entry
from sovstack.audit.errors import ProofError, RecordError, VerificationError
from sovstack.audit.logset import Member
from sovstack.audit.proofs import inclusion_proof, verify_inclusion
from sovstack.audit.recovery import CHECKPOINTS_FILE, require_log
from sovstack.audit.rfc6962 import leaf_hash
from sovstack.audit.segments import Scanner
from sovstack.audit.site import Site

__all__ = [
    "BUNDLE_FORMAT",
    "Proved",
    "holds_request",
    "latest_note",
    "prove_in_site",
    "prove_request",
    "verify_bundle",
]

BUNDLE_FORMAT: Final = "sovstack-audit-inclusion/v1"


def latest_note(directory: Path) -> str:
    """The latest signed checkpoint note in ``directory`` (not yet verified)."""
    require_log(directory)
    path = directory / CHECKPOINTS_FILE
    if not path.is_file():
        raise VerificationError(f"{directory} has entries but no checkpoints file: it was removed")
    notes, _ = split_notes(path.read_bytes())
    if not notes:
        raise VerificationError(f"{path} holds no checkpoint")
    return notes[-1]


def prove_request(
    directory: Path, request_id: str, note: str, public_key: Ed25519PublicKey
) -> tuple[list[dict[str, Any]], list[int]]:
    """Bundles for every entry of ``request_id`` the checkpoint ``note`` covers.

    Also returns the indexes of matching entries the checkpoint does not
    cover yet (they will be in the next one).
    """
    checkpoint = open_checkpoint(note, public_key)
    needle = _needle(request_id)
    leaves: list[bytes] = []
    found: list[tuple[int, bytes]] = []
    later: list[int] = []
    scanner = Scanner(directory)
    for index, data, leaf in scanner:
        leaves.append(leaf)
        if _is_of(data, needle, request_id):
            if index < checkpoint.size:
                found.append((index, data))
            else:
                later.append(index)
    if len(leaves) < checkpoint.size:
        raise VerificationError(
            f"the checkpoint covers {checkpoint.size} entries but only {len(leaves)} can be read"
            + (f": {scanner.broken.reason}" if scanner.broken else ""),
            first_bad_index=len(leaves),
        )
    bundles = []
    for position, data in found:
        proof = inclusion_proof(leaves, position, checkpoint.size)
        verify_inclusion(leaves[position], position, checkpoint.size, proof, checkpoint.root)
        bundles.append(
            {
                "format": BUNDLE_FORMAT,
                "index": position,
                "entry": data.decode("utf-8"),
                "proof": [base64.b64encode(p).decode() for p in proof],
                "checkpoint": note,
            }
        )
    return bundles, later


@dataclass(frozen=True)
class Proved:
    """The bundles of a request's records in one log of a site, and those not covered yet.

    ``pubkey`` is the public key file that verifies them (the member's own).
    """

    member: Member
    pubkey: Path
    bundles: list[dict[str, Any]]
    later: list[int]


def prove_in_site(site: Site, request_id: str, note: str | None = None) -> list[Proved]:
    """Bundles for the records of ``request_id`` in the log of ``site`` that holds them.

    With ``note``: in the log the checkpoint is of (:meth:`Site.member_of`),
    against it. Without: against each log's latest checkpoint, in one log
    as it is, and in a set in every member that holds a record of the
    request (a request is served by one worker, so that is one member; an
    id found in several logs is proved in each). An empty list or empty
    bundles mean no covered record; the caller says so.
    """
    if note is not None:
        member, _ = site.member_of(note)
        chosen = [member]
    elif site.is_set:
        chosen = [m for m in site.members if holds_request(m.directory, request_id)]
    else:
        chosen = list(site.members)
    proved = []
    for member, pubkey, key in zip(site.members, site.pubkeys, site.keys, strict=True):
        if member not in chosen:
            continue
        with site.naming(member):
            against = latest_note(member.directory) if note is None else note
            bundles, later = prove_request(member.directory, request_id, against, key)
        proved.append(Proved(member, pubkey, bundles, later))
    return proved


def _needle(request_id: str) -> bytes:
    return b'"request_id":' + json.dumps(request_id, ensure_ascii=False).encode()


def _is_of(data: bytes, needle: bytes, request_id: str) -> bool:
    """Whether entry ``data`` is a record of ``request_id`` (the byte search skips most)."""
    return needle in data and decode_entry(data)[2].get("request_id") == request_id


def holds_request(directory: Path, request_id: str) -> bool:
    """Whether the log in ``directory`` holds a readable record of ``request_id``."""
    needle = _needle(request_id)
    return any(_is_of(data, needle, request_id) for _, data, _ in Scanner(directory))


def verify_bundle(
    bundle: Any, public_key: Ed25519PublicKey, origin: str | None = None
) -> tuple[Checkpoint, int, dict[str, Any]]:
    """Check one bundle offline; return its checkpoint, index and record."""
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise ProofError(f"not a {BUNDLE_FORMAT} bundle")
    try:
        index, entry, note = bundle["index"], bundle["entry"], bundle["checkpoint"]
        proof = [base64.b64decode(p, validate=True) for p in bundle["proof"]]
    except (KeyError, TypeError, binascii.Error) as exc:
        raise ProofError("the bundle is missing or has malformed fields") from exc
    if type(index) is not int or not isinstance(entry, str) or not isinstance(note, str):
        raise ProofError("the bundle's index, entry or checkpoint has the wrong type")
    checkpoint = open_checkpoint(note, public_key, origin)
    data = entry.encode("utf-8")
    try:
        claimed, _, record = decode_entry(data)
    except RecordError as exc:
        raise ProofError(f"the bundle's entry is not an entry: {exc}") from exc
    if claimed != index:
        raise ProofError(f"the entry says it is entry {claimed}, the bundle says {index}")
    verify_inclusion(leaf_hash(data), index, checkpoint.size, proof, checkpoint.root)
    return checkpoint, index, record
