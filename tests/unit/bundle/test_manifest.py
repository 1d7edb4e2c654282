"""The manifest: canonical bytes, strict parsing, paths that stay inside the bundle."""

from __future__ import annotations

import json

import pytest

from sovstack.bundle import canonical
from sovstack.bundle.errors import ManifestError
from sovstack.bundle.manifest import FORMAT, FileEntry, Manifest, check_path

SHA = "ab" * 32


def _manifest(**overrides: object) -> Manifest:
    fields: dict[str, object] = {
        "version": "1.2.0",
        "profile": "cpu",
        "built_at": "2026-01-15T08:00:00Z",
        "platform": {"os": "debian-12 (bookworm)"},
        "contents": ("debs", "opa"),
        "complete": False,
        "files": (
            FileEntry("debs/b.deb", 3, SHA, "debs", "1.0-1", "apt: Debian:12"),
            FileEntry("bin/opa", 10, SHA, "opa", "v1.22.2", "go install"),
        ),
        "sources": {"apt": "deb http://deb.debian.org/debian bookworm main\n"},
    }
    fields.update(overrides)
    return Manifest(**fields)  # type: ignore[arg-type]


def test_canonical_bytes_are_sorted_compact_utf8() -> None:
    assert canonical.dumps({"b": 1, "a": ["é", True]}) == '{"a":["é",true],"b":1}'.encode()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b'{"a": 1}', "canonical"),
        (b'{"b":1,"a":2}', "canonical"),
        (b'{"a":1,"a":1}', "twice"),
        (b'{"a":1.5}', "float"),
        (b"\xff\xfe", "UTF-8"),
        (b'{"a":1', "JSON"),
    ],
)
def test_non_canonical_json_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(ManifestError, match=why):
        canonical.loads(data)


def test_a_manifest_round_trips_and_lists_files_by_path() -> None:
    manifest = _manifest()
    again = Manifest.from_bytes(manifest.to_bytes())
    assert again.to_bytes() == manifest.to_bytes()
    assert [f.path for f in again.files] == ["bin/opa", "debs/b.deb"]
    assert json.loads(manifest.to_bytes())["format"] == FORMAT


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a//b",
        "a/./b",
        "a/",
        "a\\b",
        "a\nb",
        "manifest.json",
        "manifest.sig",
    ],
)
def test_paths_outside_the_bundle_are_refused(path: str) -> None:
    with pytest.raises(ManifestError):
        check_path(path)


def _raw(**changes: object) -> bytes:
    raw = _manifest().to_json()
    raw.update(changes)
    return canonical.dumps(raw)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"format": "other/1"}, "not 'sovstack-bundle/1'"),
        ({"version": ""}, "version"),
        ({"complete": "yes"}, "complete"),
        ({"contents": "debs"}, "contents"),
        ({"files": [{"path": "x"}]}, "exactly path, size"),
        (
            {
                "files": [
                    {
                        "path": "../x",
                        "size": 1,
                        "sha256": SHA,
                        "component": "c",
                        "version": "1",
                        "origin": "o",
                    }
                ]
            },
            "unsafe path",
        ),
        (
            {
                "files": [
                    {
                        "path": "x",
                        "size": -1,
                        "sha256": SHA,
                        "component": "c",
                        "version": "1",
                        "origin": "o",
                    }
                ]
            },
            "size",
        ),
        (
            {
                "files": [
                    {
                        "path": "x",
                        "size": 1,
                        "sha256": "AB" * 32,
                        "component": "c",
                        "version": "1",
                        "origin": "o",
                    }
                ]
            },
            "sha256",
        ),
        (
            {
                "files": [
                    {
                        "path": "x",
                        "size": 1,
                        "sha256": SHA,
                        "component": "c",
                        "version": "1",
                        "origin": "o",
                    }
                ]
                * 2
            },
            "listed twice",
        ),
    ],
)
def test_a_malformed_manifest_is_refused_with_the_reason(
    changes: dict[str, object], why: str
) -> None:
    with pytest.raises(ManifestError, match=why):
        Manifest.from_bytes(_raw(**changes))
