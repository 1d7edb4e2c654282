"""Fixtures every tier shares: where the project and its cache are."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovstack.core.paths import Paths

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project_paths() -> Paths:
    return Paths(ROOT)
