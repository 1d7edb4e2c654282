"""Audit records: schema version 1 and its canonical JSON.

A record is one JSON object with exactly these keys (``null`` where a value
does not apply to the event)::

    v                  1 (the schema version)
    time               UTC, "YYYY-MM-DDTHH:MM:SS.ffffffZ" (sorts as text)
    request_id         the gateway's request id
    event              accepted | denied | completed | aborted | error
    route              the API route asked for (e.g. "/v1/chat/completions"), or null
    subject client site        who asked, through which client, from which site
                       (null only in a ``denied`` record of a caller never authenticated)
    data_classification  the classification the request declared, or null
    roles              list of role names
    model model_digest replica what served it ("sha256:<hex>" for the weights)
    decision           {allow, reasons[], obligations{}, policy_revision} or null
    status             HTTP status (integer) or null
    tokens             {prompt, completion} integer counts, or null
    latency_us         integer microseconds, or null
    prompt_sha256 completion_sha256   hex SHA-256 of the UTF-8 text, or null
    content            {prompt?, completion?} values from encrypt_content, or null;
                       only when decision.obligations.store_content is true
    error              what went wrong, in words, for an ``error`` record; else null

End records (``completed``, ``aborted``, ``error``) written since issue 18 also
hold four usage keys, all or none (older records lack them; a reader takes
an absent value as unknown)::

    replica_us         integer microseconds the request was in flight on its replica, or null
    gpu_us             integer GPU-microseconds: the request's share of the replica's busy
                       time (each moment split evenly over the requests then in flight), or null
    energy_mj          integer millijoules apportioned to the request by tokens from the
                       node's energy counter, or null
    energy_unmeasured  why ``energy_mj`` is null, in words (e.g. the node has no energy
                       counter); null exactly when ``energy_mj`` is not

and one key more in one kind of record only: a ``denied`` record that stands for
many refusals not recorded one by one (a flood from one source, gateway/refusals.py)
also holds ``refusals``: ``{count, source, first, last}`` (how many, the peer
address, the first and last refusal's time). Every other record lacks the key.

Canonical JSON: keys sorted, no whitespace, UTF-8 (not \\u escapes), and no
floats anywhere (a float is refused: use integers such as ``latency_us``).
The same record always gives the same bytes, so its leaf hash is stable.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sovstack.audit.content import CONTENT_ALG
from sovstack.audit.errors import RecordError

__all__ = [
    "EVENTS",
    "SCHEMA_VERSION",
    "STORE_CONTENT",
    "USAGE_KEYS",
    "Decision",
    "build_record",
    "canonical_json",
    "encode_validated",
    "format_time",
    "sha256_text",
    "validate_record",
]

SCHEMA_VERSION: Final = 1
STORE_CONTENT: Final = "store_content"  # the policy obligation that asks to retain content
EVENTS: Final = ("accepted", "denied", "completed", "aborted", "error")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_KEYS: Final = frozenset(
    ("v", "time", "request_id", "event", "route", "subject", "client", "roles", "site",
     "data_classification", "model", "model_digest", "replica", "decision", "status",
     "tokens", "latency_us", "prompt_sha256", "completion_sha256", "content", "error")
)  # fmt: skip
_SUMMARY_KEYS: Final = _KEYS | {"refusals"}
USAGE_KEYS: Final = frozenset(("replica_us", "gpu_us", "energy_mj", "energy_unmeasured"))
_ENDS: Final = frozenset(("completed", "aborted", "error"))


@dataclass(frozen=True)
class Decision:
    """The policy decision a record carries (OPA's ``allow``/``reasons``/``obligations``)."""

    allow: bool
    reasons: Sequence[str] = ()
    obligations: Mapping[str, Any] = field(default_factory=dict)
    policy_revision: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "allow": self.allow,
            "reasons": list(self.reasons),
            "obligations": dict(self.obligations),
            "policy_revision": self.policy_revision,
        }


def format_time(moment: datetime) -> str:
    """``moment`` (timezone-aware) in the record's UTC text form."""
    if moment.tzinfo is None:
        raise RecordError("time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sha256_text(text: str) -> str:
    """The hex SHA-256 of ``text`` encoded as UTF-8 (``prompt_sha256``/``completion_sha256``)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_record(
    *,
    request_id: str,
    event: str,
    subject: str | None,
    client: str | None,
    roles: Sequence[str],
    site: str | None,
    time: datetime | None = None,
    route: str | None = None,
    data_classification: str | None = None,
    error: str | None = None,
    model: str | None = None,
    model_digest: str | None = None,
    replica: str | None = None,
    decision: Decision | None = None,
    status: int | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    latency_us: int | None = None,
    prompt_sha256: str | None = None,
    completion_sha256: str | None = None,
    content: Mapping[str, Mapping[str, str]] | None = None,
    refusals: Mapping[str, Any] | None = None,
    usage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A validated schema-1 record, ready for ``AuditLog.append``.

    ``time`` defaults to now. Token counts are given together or not at all.
    ``content`` holds values from ``encrypt_content`` under ``prompt`` and/or
    ``completion``; pass it only when the decision's ``store_content``
    obligation is true. ``usage`` (end records only) holds the four :data:`USAGE_KEYS`.
    Raises :class:`RecordError` on any value outside the schema.
    """
    if (prompt_tokens is None) != (completion_tokens is None):
        raise RecordError("prompt_tokens and completion_tokens are given together or not at all")
    record: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "time": format_time(time or datetime.now(UTC)),
        "request_id": request_id,
        "event": event,
        "route": route,
        "subject": subject,
        "client": client,
        "roles": list(roles),
        "site": site,
        "data_classification": data_classification,
        "model": model,
        "model_digest": model_digest,
        "replica": replica,
        "decision": decision.as_json() if decision is not None else None,
        "status": status,
        "tokens": (
            {"prompt": prompt_tokens, "completion": completion_tokens}
            if prompt_tokens is not None
            else None
        ),
        "latency_us": latency_us,
        "prompt_sha256": prompt_sha256,
        "completion_sha256": completion_sha256,
        "content": {k: dict(v) for k, v in content.items()} if content is not None else None,
        "error": error,
    }
    if refusals is not None:
        record["refusals"] = dict(refusals)
    if usage is not None:
        record.update(usage)
    validate_record(record)
    return record


def _str(record: Mapping[str, Any], key: str, *, optional: bool = False) -> None:
    value = record[key]
    if value is None and optional:
        return
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise RecordError(f"{key} must be a non-empty string of at most 1024 characters")


def _int(value: Any, name: str) -> None:
    if value is not None and (type(value) is not int or value < 0):
        raise RecordError(f"{name} must be a non-negative integer or null")


def validate_record(record: Mapping[str, Any]) -> None:
    """Raise :class:`RecordError` unless ``record`` follows schema version 1."""
    keys = set(record)
    if keys != _KEYS and not (
        (keys == _SUMMARY_KEYS and record["event"] == "denied")
        or (keys == _KEYS | USAGE_KEYS and record["event"] in _ENDS)
    ):
        missing, extra = sorted(_KEYS - keys), sorted(keys - _KEYS)
        raise RecordError(f"record keys differ from schema 1: missing {missing}, unknown {extra}")
    if type(record["v"]) is not int or record["v"] != SCHEMA_VERSION:
        raise RecordError(f"schema version {record['v']!r} is not {SCHEMA_VERSION}")
    if not isinstance(record["time"], str) or not _TIME.match(record["time"]):
        raise RecordError("time must look like 2025-01-31T12:00:00.000000Z")
    if record["event"] not in EVENTS:
        raise RecordError(f"event {record['event']!r} is not one of {', '.join(EVENTS)}")
    _str(record, "request_id")
    # A caller refused before it was authenticated has no subject, client or site.
    for key in ("subject", "client", "site"):
        _str(record, key, optional=record["event"] == "denied")
    for key in ("route", "data_classification", "model", "model_digest", "replica", "error"):
        _str(record, key, optional=True)
    roles = record["roles"]
    if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
        raise RecordError("roles must be a list of non-empty strings")
    _decision(record["decision"])
    _int(record["status"], "status")
    _int(record["latency_us"], "latency_us")
    tokens = record["tokens"]
    if tokens is not None:
        if not isinstance(tokens, dict) or set(tokens) != {"prompt", "completion"}:
            raise RecordError("tokens must be {prompt, completion} or null")
        _int(tokens["prompt"], "tokens.prompt")
        _int(tokens["completion"], "tokens.completion")
    for key in ("prompt_sha256", "completion_sha256"):
        value = record[key]
        if value is not None and (not isinstance(value, str) or not _HEX64.match(value)):
            raise RecordError(f"{key} must be 64 lowercase hex digits or null")
    _content(record["content"], record["decision"])
    if "refusals" in keys:
        _refusals(record["refusals"])
    if "energy_mj" in keys:
        _usage(record)


def _usage(record: Mapping[str, Any]) -> None:
    for key in ("replica_us", "gpu_us", "energy_mj"):
        _int(record[key], key)
    why = record["energy_unmeasured"]
    if (record["energy_mj"] is None) == (why is None):
        raise RecordError("energy_unmeasured says why energy_mj is null, and only then")
    if why is not None:
        _str(record, "energy_unmeasured")


def _refusals(summary: Any) -> None:
    if not isinstance(summary, dict) or set(summary) != {"count", "source", "first", "last"}:
        raise RecordError("refusals must be {count, source, first, last}")
    if type(summary["count"]) is not int or summary["count"] < 1:
        raise RecordError("refusals.count must be a positive integer")
    source = summary["source"]
    if not isinstance(source, str) or not source or len(source) > 1024:
        raise RecordError("refusals.source must be a non-empty string of at most 1024 characters")
    for key in ("first", "last"):
        if not isinstance(summary[key], str) or not _TIME.match(summary[key]):
            raise RecordError(f"refusals.{key} must look like 2025-01-31T12:00:00.000000Z")


def _decision(decision: Any) -> None:
    if decision is None:
        return
    if not isinstance(decision, dict) or set(decision) != {
        "allow", "reasons", "obligations", "policy_revision"
    }:  # fmt: skip
        raise RecordError("decision must be {allow, reasons, obligations, policy_revision}")
    if not isinstance(decision["allow"], bool):
        raise RecordError("decision.allow must be true or false")
    reasons = decision["reasons"]
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise RecordError("decision.reasons must be a list of strings")
    if not isinstance(decision["obligations"], dict):
        raise RecordError("decision.obligations must be an object")
    # The one free-form part of a record: every other field is type-checked exactly.
    _reject_floats(decision["obligations"], "decision.obligations")
    if not isinstance(decision["policy_revision"], str):
        raise RecordError("decision.policy_revision must be a string")


def _content(content: Any, decision: Any) -> None:
    if content is None:
        return
    if not decision or decision["obligations"].get(STORE_CONTENT) is not True:
        raise RecordError(
            f"content is stored only when the decision's {STORE_CONTENT!r} obligation asks for it"
        )
    if not isinstance(content, dict) or not content or set(content) - {"prompt", "completion"}:
        raise RecordError("content must hold prompt and/or completion, or be null")
    for name, sealed in content.items():
        if (
            not isinstance(sealed, dict)
            or set(sealed) != {"alg", "key_id", "nonce", "ciphertext"}
            or sealed["alg"] != CONTENT_ALG
            or not all(isinstance(value, str) for value in sealed.values())
        ):
            raise RecordError(f"content.{name} must come from encrypt_content ({CONTENT_ALG})")


_SCALARS: Final = frozenset((str, int, bool, type(None)))


def _reject_floats(value: Any, path: str) -> None:
    # Exact type checks first: this runs on every append, on the event loop.
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise RecordError(f"{path} has a non-string key {key!r}")
            if type(item) not in _SCALARS:
                _reject_floats(item, f"{path}.{key}")
        return
    if kind is list or kind is tuple:
        for i, item in enumerate(value):
            if type(item) not in _SCALARS:
                _reject_floats(item, f"{path}[{i}]")
        return
    if isinstance(value, float):
        raise RecordError(f"{path} is a float: records hold integers (e.g. latency_us)")
    if isinstance(value, str | int):  # str and int subclasses, e.g. enums
        return
    if isinstance(value, Mapping):
        _reject_floats(dict(value), path)
        return
    raise RecordError(f"{path} is a {type(value).__name__}, which JSON cannot hold")


_ENCODER: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(record: Mapping[str, Any]) -> bytes:
    """The canonical UTF-8 JSON bytes of ``record`` (sorted keys, no spaces, no floats)."""
    _reject_floats(record, "record")
    return encode_validated(record)


def encode_validated(record: Mapping[str, Any]) -> bytes:
    """:func:`canonical_json` of a record that :func:`validate_record` accepted.

    Validation already refuses floats everywhere (fields are type-checked
    exactly, obligations are walked), so the append path skips a second walk.
    """
    if type(record) is not dict:
        record = dict(record)
    try:
        return _ENCODER.encode(record).encode("utf-8")
    except (ValueError, UnicodeEncodeError) as exc:
        raise RecordError(f"record cannot be encoded as UTF-8 JSON: {exc}") from exc
