"""The install record: written atomically, read back, never silently downgraded."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovstack.bundle import state
from sovstack.bundle.errors import BundleError

RECORD = state.Installed("1.2.0", "cpu", "ab" * 32, "2026-01-15T08:00:00Z", "2026-01-15T09:00:00Z")


def test_a_record_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "installed.json"
    assert state.read(path) is None
    state.record(path, RECORD)
    assert state.read(path) == RECORD
    assert [p.name for p in path.parent.iterdir()] == ["installed.json"]


def test_an_unreadable_record_says_which_file(tmp_path: Path) -> None:
    path = tmp_path / "installed.json"
    path.write_text("{not json")
    with pytest.raises(BundleError, match=r"installed\.json is unreadable"):
        state.read(path)


@pytest.mark.parametrize(
    ("version", "force", "refused"),
    [
        ("1.1.9", False, True),
        ("1.1.9", True, False),
        ("1.2.0", False, False),
        ("1.10.0", False, False),
        ("1.2.0.post1", False, False),
        ("1.2.0rc1", False, True),
    ],
)
def test_versions_compare_as_pep440(version: str, force: bool, refused: bool) -> None:
    assert (state.check_version(version, RECORD, force) is not None) is refused


def test_a_bundle_version_that_is_not_pep440_is_refused() -> None:
    assert state.check_version("latest", None, False) == (
        "the bundle's version 'latest' is not a PEP 440 version"
    )
