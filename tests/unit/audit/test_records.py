"""Records follow schema 1 and always serialise to the same canonical bytes."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from sovstack.audit import Decision, RecordError, canonical_json, encrypt_content
from sovstack.audit.records import SCHEMA_VERSION, validate_record
from tests.unit.audit.conftest import make_record


def test_a_record_carries_every_schema_field_with_integers() -> None:
    record = make_record(7)
    assert record["v"] == SCHEMA_VERSION
    assert record["time"] == "2026-01-15T08:07:00.000000Z"
    assert record["decision"] == {
        "allow": True,
        "reasons": ["operator may use tiny-llama"],
        "obligations": {"store_content": False, "max_tokens": 256},
        "policy_revision": "r42",
    }
    assert record["tokens"] == {"prompt": 12, "completion": 30}
    assert record["latency_us"] == 1507
    assert record["content"] is None


def test_canonical_json_is_sorted_compact_utf8_and_stable() -> None:
    record = make_record(1, subject="Zoë 工場")
    data = canonical_json(record)
    assert "Zoë 工場".encode() in data  # UTF-8, not \\u escapes
    assert b'": ' not in data and b', "' not in data  # no whitespace between tokens
    assert list(json.loads(data)) == sorted(record)
    shuffled = dict(reversed(list(record.items())))
    assert canonical_json(shuffled) == data
    assert b"\n" not in canonical_json(make_record(1, subject="line\nbreak"))


def test_floats_are_refused_anywhere() -> None:
    record = make_record(1)
    record["decision"]["obligations"] = {"max_tokens": 1.5}
    with pytest.raises(RecordError, match=r"record\.decision\.obligations\.max_tokens is a float"):
        canonical_json(record)
    with pytest.raises(RecordError, match=r"decision\.obligations\.max_tokens is a float"):
        validate_record(record)  # what AuditLog.append runs before encoding
    with pytest.raises(RecordError, match="latency_us"):
        make_record(1, latency_us=1.5)
    with pytest.raises(RecordError, match=r"schema version 1\.0 "):
        validate_record({**make_record(1), "v": 1.0})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"event": "finished"}, "event 'finished' is not one of"),
        ({"request_id": ""}, "request_id must be a non-empty string"),
        ({"roles": ["ok", ""]}, "roles must be a list"),
        ({"status": -1}, "status must be a non-negative integer"),
        ({"prompt_sha256": "ABC"}, "prompt_sha256 must be 64 lowercase hex"),
        ({"time": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"prompt_tokens": 3, "completion_tokens": None}, "given together"),
        ({"content": {"prompt": {"text": "plain"}}}, "must come from encrypt_content"),
    ],
)
def test_values_outside_the_schema_are_refused_with_the_field_named(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(RecordError, match=message):
        make_record(1, **overrides)


def test_content_is_refused_unless_the_decision_asks_to_store_it() -> None:
    sealed = {"prompt": encrypt_content(bytes(32), "k1", "the prompt")}
    assert make_record(1, content=sealed)["content"] == sealed
    for decision in (None, Decision(True, [], {"store_content": False}, "r1")):
        with pytest.raises(RecordError, match="'store_content' obligation"):
            make_record(1, content=sealed, decision=decision)


def test_unknown_or_missing_keys_are_refused() -> None:
    record = make_record(1)
    record["extra"] = 1
    del record["site"]
    with pytest.raises(RecordError, match=r"missing \['site'\], unknown \['extra'\]"):
        validate_record(record)


_MEASURED = {"replica_us": 2_000, "gpu_us": 1_000, "energy_mj": 750, "energy_unmeasured": None}


def test_an_end_record_may_carry_its_usage_in_integer_units() -> None:
    record = make_record(1, event="completed", usage=_MEASURED)
    assert {k: record[k] for k in _MEASURED} == _MEASURED
    unmeasured = _MEASURED | {"energy_mj": None, "energy_unmeasured": "no energy counter"}
    assert make_record(1, event="aborted", usage=unmeasured)["energy_mj"] is None
    assert "energy_mj" not in make_record(1, event="completed")  # older records: no usage keys


@pytest.mark.parametrize(
    ("event", "usage", "message"),
    [
        ("accepted", _MEASURED, "unknown"),
        ("completed", _MEASURED | {"gpu_us": 0.5}, "gpu_us must be a non-negative integer"),
        ("completed", _MEASURED | {"energy_mj": -1}, "energy_mj must be a non-negative"),
        ("completed", _MEASURED | {"energy_unmeasured": "why"}, "only then"),
        ("error", _MEASURED | {"energy_mj": None}, "only then"),
        ("completed", {"gpu_us": 1}, "missing"),
    ],
)
def test_usage_outside_the_schema_is_refused(
    event: str, usage: dict[str, object], message: str
) -> None:
    with pytest.raises(RecordError, match=message):
        make_record(1, event=event, usage=usage)
