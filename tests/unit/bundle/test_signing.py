"""Ed25519 over the manifest bytes: only the given public key's signature is accepted."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from sovstack.bundle import signing
from sovstack.bundle.errors import BundleKeyError

MANIFEST = b'{"format":"sovstack-bundle/1"}'


def test_a_signature_by_the_key_verifies(key: Path) -> None:
    sig = signing.sign(MANIFEST, signing.load_private(key))
    public = signing.load_public(Path(f"{key}.pub"))
    assert signing.check_signature(MANIFEST, sig, public) is None
    assert sig.decode().split()[1] == signing.key_id(public)


def test_another_keys_signature_names_both_key_ids(key: Path, other_key: Path) -> None:
    sig = signing.sign(MANIFEST, signing.load_private(other_key))
    public = signing.load_public(Path(f"{key}.pub"))
    why = signing.check_signature(MANIFEST, sig, public)
    other_id = signing.key_id(signing.load_public(Path(f"{other_key}.pub")))
    assert why == (
        f"signed by another key (key id {other_id}), not by the given public key "
        f"(key id {signing.key_id(public)})"
    )


def test_a_changed_manifest_fails_its_signature(key: Path) -> None:
    sig = signing.sign(MANIFEST, signing.load_private(key))
    why = signing.check_signature(MANIFEST + b" ", sig, signing.load_public(Path(f"{key}.pub")))
    assert why is not None and "changed after signing" in why


def test_another_key_claiming_our_key_id_still_fails(key: Path, other_key: Path) -> None:
    """The key id in manifest.sig is a hint: the given public key decides."""
    ours = signing.key_id(signing.load_public(Path(f"{key}.pub")))
    forged = signing.sign(MANIFEST, signing.load_private(other_key)).decode().split()
    sig = f"ed25519 {ours} {forged[2]}\n".encode()
    why = signing.check_signature(MANIFEST, sig, signing.load_public(Path(f"{key}.pub")))
    assert why is not None and "changed after signing" in why


@pytest.mark.parametrize("cut", [1, 10, 40, 60])
def test_a_truncated_signature_is_refused(key: Path, cut: int) -> None:
    sig = signing.sign(MANIFEST, signing.load_private(key)).rstrip(b"\n")
    why = signing.check_signature(MANIFEST, sig[:-cut], signing.load_public(Path(f"{key}.pub")))
    assert why is not None and "truncated" in why


def test_a_short_but_valid_base64_signature_says_how_long_it_is(key: Path) -> None:
    short = base64.b64encode(bytes(32)).decode()
    why = signing.check_signature(
        MANIFEST, f"ed25519 00 {short}".encode(), signing.load_public(Path(f"{key}.pub"))
    )
    assert why == "truncated or padded: the signature has 32 bytes, an Ed25519 signature has 64"


@pytest.mark.parametrize("garbage", [b"", b"\xff\xfe", b"rsa 00 AAAA", b"one two"])
def test_garbage_is_refused(key: Path, garbage: bytes) -> None:
    assert signing.check_signature(MANIFEST, garbage, signing.load_public(Path(f"{key}.pub")))


def test_keygen_never_overwrites_a_key(key: Path) -> None:
    with pytest.raises(BundleKeyError, match="refusing to overwrite"):
        signing.generate_key(key)


def test_a_private_key_others_can_read_is_refused(key: Path) -> None:
    key.chmod(0o644)
    with pytest.raises(BundleKeyError, match="chmod 600"):
        signing.load_private(key)


def test_a_missing_public_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(BundleKeyError, match=r"nope\.pub does not exist"):
        signing.load_public(tmp_path / "nope.pub")
