"""Log entries: how each record is framed and chained in a segment file.

An entry is one line of canonical JSON, ``{"index":N,"prev":"<hex>","record":{...}}``
followed by ``\\n``. ``index`` is the record's position (its sequence number)
and ``prev`` the hex RFC 6962 leaf hash of entry N-1 (64 zeros for entry 0).
The leaf of the Merkle tree is the entry line without its newline.

The chain is not what makes the log tamper-evident (signed checkpoints over
the Merkle root are); it lets a verifier name the exact first record that
was changed, deleted or reordered instead of a whole checkpoint interval.
"""

from __future__ import annotations

import json
from binascii import hexlify
from typing import Any, Final

from sovstack.audit.errors import RecordError

__all__ = ["GENESIS_PREV", "decode_entry", "encode_entry", "entry_prefix"]

GENESIS_PREV: Final = bytes(32)


def entry_prefix(index: int, prev: bytes) -> bytes:
    """The bytes every valid entry ``index`` following leaf hash ``prev`` starts with."""
    return b'{"index":%d,"prev":"%s","record":' % (index, hexlify(prev))


def encode_entry(index: int, prev: bytes, record_json: bytes) -> bytes:
    """The entry line (without newline) for canonical ``record_json`` at ``index``."""
    return entry_prefix(index, prev) + record_json + b"}"


def decode_entry(data: bytes) -> tuple[int, str, dict[str, Any]]:
    """``(index, prev hex, record)`` of an entry line; :class:`RecordError` if malformed."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError("entry is not JSON") from exc
    if (
        not isinstance(doc, dict)
        or set(doc) != {"index", "prev", "record"}
        or type(doc["index"]) is not int
        or not isinstance(doc["prev"], str)
        or not isinstance(doc["record"], dict)
    ):
        raise RecordError("entry is not {index, prev, record}")
    return doc["index"], doc["prev"], doc["record"]
