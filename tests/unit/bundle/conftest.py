"""Small signed bundles made on the spot, for the verifier and CLI tests (no downloads)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sovstack.bundle import signing
from sovstack.bundle.manifest import MANIFEST_NAME, SIGNATURE_NAME, FileEntry, Manifest

# A realistic small layout: one file per kind the tamper matrix names.
FILES: dict[str, tuple[str, bytes]] = {
    "wheels/demo-1.0-py3-none-any.whl": ("wheels", b"PK\x03\x04 a wheel " * 50),
    "wheels/requirements-gateway.txt": ("wheels", b"demo==1.0 --hash=sha256:00\n"),
    "debs/demo_1.0-1_amd64.deb": ("debs", b"!<arch>\ndebian-binary " * 40),
    "debs/Packages": ("debs", b"Package: demo\nVersion: 1.0-1\n"),
    "bin/opa": ("opa", b"\x7fELF" + bytes(range(256)) * 8),
    "models/tiny/model.safetensors": ("models", b"\x10\x00\x00\x00\x00\x00\x00\x00{}" + bytes(64)),
    "models/tiny/config.json": ("models", b'{"hidden_size": 8}'),
    "sbom.cdx.json": ("sbom", b'{"bomFormat": "CycloneDX"}'),
}


def make_bundle(
    directory: Path,
    key_path: Path,
    version: str = "1.0.0",
    files: dict[str, tuple[str, bytes]] | None = None,
) -> Manifest:
    """Write ``files`` into ``directory`` with a manifest signed by the key at ``key_path``."""
    entries = []
    for rel, (component, data) in (files or FILES).items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        entries.append(FileEntry(rel, len(data), digest, component, "1.0", "made by the test"))
    manifest = Manifest(
        version=version,
        profile="cpu",
        built_at="2026-01-15T08:00:00Z",
        platform={"os": "debian-12 (bookworm)"},
        contents=("debs", "models", "opa", "wheels:gateway"),
        complete=False,
        files=tuple(entries),
    )
    data = manifest.to_bytes()
    (directory / MANIFEST_NAME).write_bytes(data)
    (directory / SIGNATURE_NAME).write_bytes(signing.sign(data, signing.load_private(key_path)))
    return manifest


@pytest.fixture
def key(tmp_path: Path) -> Path:
    """A bundle signing key (its public half is ``key.pub`` beside it)."""
    path = tmp_path / "keys" / "bundle.key"
    path.parent.mkdir()
    signing.generate_key(path)
    return path


@pytest.fixture
def other_key(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "other.key"
    path.parent.mkdir(exist_ok=True)
    signing.generate_key(path)
    return path


@pytest.fixture
def bundle_dir(tmp_path: Path, key: Path) -> Path:
    directory = tmp_path / "bundle"
    make_bundle(directory, key)
    return directory


def flip_byte(path: Path, offset: int = -1) -> None:
    """Change one byte of ``path`` in place (the last one by default)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
