"""Content is sealed with AES-256-GCM under a named site key, which is never stored."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from sovstack.audit import (
    ContentError,
    KeyFileError,
    decrypt_content,
    encrypt_content,
    generate_site_key,
    load_site_key,
)
from tests.unit.audit.conftest import make_record

KEY = bytes(range(32))


def test_sealed_content_names_its_key_but_never_holds_it() -> None:
    sealed = encrypt_content(KEY, "site-2026", "the furnace runs at 1450 C")
    assert sealed["alg"] == "AES-256-GCM"
    assert sealed["key_id"] == "site-2026"
    assert len(base64.b64decode(sealed["nonce"])) == 12
    text = json.dumps(sealed)
    assert "furnace" not in text
    assert base64.b64encode(KEY).decode() not in text and KEY.hex() not in text
    assert decrypt_content({"site-2026": KEY}, sealed) == "the furnace runs at 1450 C"


def test_each_encryption_uses_a_fresh_nonce() -> None:
    a, b = encrypt_content(KEY, "k", "same"), encrypt_content(KEY, "k", "same")
    assert a["nonce"] != b["nonce"] and a["ciphertext"] != b["ciphertext"]


def test_altered_or_relabelled_or_unkeyed_content_does_not_decrypt() -> None:
    sealed = encrypt_content(KEY, "k1", "secret")
    raw = bytearray(base64.b64decode(sealed["ciphertext"]))
    raw[0] ^= 1
    with pytest.raises(ContentError, match="altered"):
        decrypt_content({"k1": KEY}, {**sealed, "ciphertext": base64.b64encode(raw).decode()})
    with pytest.raises(ContentError, match="altered"):
        decrypt_content({"k2": KEY}, {**sealed, "key_id": "k2"})
    with pytest.raises(ContentError, match="no site key with id 'k1'"):
        decrypt_content({"other": KEY}, sealed)
    with pytest.raises(ContentError, match="altered"):
        decrypt_content({"k1": os.urandom(32)}, sealed)


def test_a_sealed_value_fits_in_a_record() -> None:
    record = make_record(1, content={"prompt": encrypt_content(KEY, "k1", "p")})
    assert record["content"]["prompt"]["key_id"] == "k1"


def test_site_key_files_are_private_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "site.key"
    key_id = generate_site_key(path, "plant-a-2026")
    assert key_id == "plant-a-2026"
    assert path.stat().st_mode & 0o777 == 0o600
    loaded_id, key = load_site_key(path)
    assert loaded_id == "plant-a-2026" and len(key) == 32
    with pytest.raises(KeyFileError, match="already exists"):
        generate_site_key(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_site_key(path)


def test_a_malformed_site_key_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_text("not json")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="is not a site key file"):
        load_site_key(path)
    with pytest.raises(ContentError, match="32 bytes"):
        encrypt_content(b"short", "k", "x")
