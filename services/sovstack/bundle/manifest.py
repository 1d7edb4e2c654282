"""``manifest.json``: every file of a bundle with its size, SHA-256, component, version, origin.

The manifest is canonical JSON (:mod:`sovstack.bundle.canonical`) and is what
``manifest.sig`` signs. Apart from ``built_at`` it is a pure function of the
bundle's content: two builds of the same inputs give the same manifest but
for that one field.

Paths are relative POSIX paths inside the bundle, without ``.`` or ``..``
parts, so a manifest can never name a file outside its bundle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from sovstack.bundle import canonical
from sovstack.bundle.errors import ManifestError

__all__ = [
    "FORMAT",
    "MANIFEST_NAME",
    "RESERVED",
    "SIGNATURE_NAME",
    "FileEntry",
    "Manifest",
    "check_path",
]

FORMAT = "sovstack-bundle/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
# The two files a manifest cannot list: itself and its signature.
RESERVED = frozenset({MANIFEST_NAME, SIGNATURE_NAME})

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def check_path(path: str) -> str:
    """Return ``path`` if it is a safe relative bundle path; raise ManifestError otherwise."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or _CONTROL.search(path)
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ManifestError(f"unsafe path {path!r}: paths are relative, without '.' or '..'")
    if path in RESERVED:
        raise ManifestError(f"{path} cannot list itself")
    return path


@dataclass(frozen=True)
class FileEntry:
    """One file of the bundle, as the manifest lists it."""

    path: str
    size: int
    sha256: str
    component: str
    version: str
    origin: str

    @property
    def top(self) -> str:
        """The bundle folder the file is in (``wheels``, ``debs``, ...)."""
        return PurePosixPath(self.path).parts[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "component": self.component,
            "version": self.version,
            "origin": self.origin,
        }

    @classmethod
    def from_json(cls, raw: Any) -> FileEntry:
        if not isinstance(raw, dict) or set(raw) != {
            "path",
            "size",
            "sha256",
            "component",
            "version",
            "origin",
        }:
            raise ManifestError(
                f"a file entry must have exactly path, size, sha256, "
                f"component, version and origin: {raw!r:.200}"
            )
        path = raw["path"]
        if not isinstance(path, str):
            raise ManifestError(f"a file path must be a string: {path!r:.100}")
        check_path(path)
        size = raw["size"]
        if type(size) is not int or size < 0:
            raise ManifestError(f"{path}: size must be a non-negative integer")
        digest = raw["sha256"]
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ManifestError(f"{path}: sha256 must be 64 lower-case hex digits")
        for key in ("component", "version", "origin"):
            if not isinstance(raw[key], str) or not raw[key]:
                raise ManifestError(f"{path}: {key} must be a non-empty string")
        return cls(path, size, digest, raw["component"], raw["version"], raw["origin"])


@dataclass(frozen=True)
class Manifest:
    """What a bundle holds. ``contents`` names the parts built; ``complete``: none left out."""

    version: str
    profile: str
    built_at: str
    platform: dict[str, str]
    contents: tuple[str, ...]
    complete: bool
    files: tuple[FileEntry, ...]
    sources: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": "sovstack",
            "version": self.version,
            "profile": self.profile,
            "built_at": self.built_at,
            "platform": dict(self.platform),
            "contents": list(self.contents),
            "complete": self.complete,
            "sources": dict(self.sources),
            "files": [f.to_json() for f in sorted(self.files, key=lambda f: f.path)],
        }

    def to_bytes(self) -> bytes:
        return canonical.dumps(self.to_json())

    def by_path(self) -> dict[str, FileEntry]:
        return {f.path: f for f in self.files}

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse and check a manifest; ManifestError says what is wrong with it."""
        raw = canonical.loads(data)
        if not isinstance(raw, dict):
            raise ManifestError("the manifest is not a JSON object")
        if raw.get("format") != FORMAT:
            raise ManifestError(
                f"format {raw.get('format')!r} is not {FORMAT!r}: not a bundle this sovstack reads"
            )
        for key in ("version", "profile", "built_at"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise ManifestError(f"{key} must be a non-empty string")
        for key in ("platform", "sources"):
            value = raw.get(key)
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ManifestError(f"{key} must be an object of strings")
        contents = raw.get("contents")
        if not isinstance(contents, list) or not all(isinstance(c, str) for c in contents):
            raise ManifestError("contents must be a list of strings")
        if not isinstance(raw.get("complete"), bool):
            raise ManifestError("complete must be true or false")
        entries = raw.get("files")
        if not isinstance(entries, list):
            raise ManifestError("files must be a list")
        files = tuple(FileEntry.from_json(e) for e in entries)
        seen: set[str] = set()
        for entry in files:
            if entry.path in seen:
                raise ManifestError(f"{entry.path} is listed twice")
            seen.add(entry.path)
        return cls(
            version=raw["version"],
            profile=raw["profile"],
            built_at=raw["built_at"],
            platform=raw["platform"],
            contents=tuple(contents),
            complete=raw["complete"],
            files=files,
            sources=raw["sources"],
        )
