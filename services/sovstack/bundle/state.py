"""The record of the last bundle installed, so that a site never goes back to an older one.

``sovstack bundle verify --record`` writes it once a bundle verified; a later
verify refuses a bundle whose version is older than the recorded one unless
``--force`` says the downgrade is meant. Versions are PEP 440 versions
(``0.1.0``, ``2026.3.1``), compared as such.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from packaging.version import InvalidVersion, Version

from sovstack.bundle.errors import BundleError

__all__ = [
    "RECORD_NAME",
    "SITE_DIR",
    "Installed",
    "check_version",
    "default_path",
    "now",
    "parse_version",
    "read",
    "record",
]

RECORD_NAME = "bundle-installed.json"
# Where a site keeps the record when verify runs as root outside a checkout.
SITE_DIR = Path("/var/lib/sovstack")


def default_path(checkout_state: Path | None, *, is_root: bool, home: Path) -> Path:
    """Where the install record is kept when ``--state`` is not given.

    In a checkout, its state folder (``.sovstack/``); elsewhere, as root, the
    site's (``/var/lib/sovstack/``); otherwise the user's
    (``~/.local/state/sovstack/``). So ``bundle verify`` needs nothing but the
    bundle and the key, wherever it runs.
    """
    if checkout_state is not None:
        return checkout_state / RECORD_NAME
    if is_root:
        return SITE_DIR / RECORD_NAME
    return home / ".local" / "state" / "sovstack" / RECORD_NAME


@dataclass(frozen=True)
class Installed:
    version: str
    profile: str
    manifest_sha256: str
    built_at: str
    recorded_at: str


def parse_version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion as exc:
        raise BundleError(f"{text!r} is not a valid version (PEP 440, e.g. 0.1.0)") from exc


def read(path: Path) -> Installed | None:
    """The recorded bundle, or None if none was ever recorded at ``path``."""
    try:
        raw = json.loads(path.read_text())
        return Installed(**{k: str(raw[k]) for k in Installed.__dataclass_fields__})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(
            f"the install record {path} is unreadable ({exc}): fix or remove it"
        ) from exc


def record(path: Path, installed: Installed) -> None:
    """Write ``installed`` to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(installed), out, indent=1, sort_keys=True)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
    Path(tmp).replace(path)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_version(version: str, installed: Installed | None, force: bool) -> str | None:
    """``None`` if ``version`` may be installed after ``installed``, else why not."""
    try:
        new = Version(version)
    except InvalidVersion:
        return f"the bundle's version {version!r} is not a PEP 440 version"
    if installed is None:
        return None
    old = parse_version(installed.version)
    if new < old and not force:
        return (
            f"version {version} is older than the bundle installed last ({installed.version}, "
            f"built {installed.built_at}): pass --force to go back on purpose"
        )
    return None
