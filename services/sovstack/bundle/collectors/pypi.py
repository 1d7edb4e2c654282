"""Resolve and download wheels for the nodes' platform with pip, keeping a pool of downloads.

Resolution is ``pip install --dry-run --report`` with the nodes' platform
tags: pip picks every file (PyPI serves the metadata separately, so nothing
big is downloaded to resolve) and reports its URL and SHA-256. The files the
pool lacks are then fetched by ``pip download --require-hashes`` with exactly
those hashes. The pool (``.cache/bundle/wheels/``) is keyed by file name; a
pooled file that does not match the hash pip reported is dropped.

pip evaluates environment markers (``platform_machine == "x86_64"``) for the
machine it runs on, whatever ``--platform`` says, so the build refuses to
resolve on a machine whose markers differ from the nodes'.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from sovstack.bundle.errors import BundleError
from sovstack.bundle.proc import run
from sovstack.bundle.profiles import NODE, pip_target_args
from sovstack.core.progress import Echo

__all__ = ["Resolved", "batches", "download", "pip_command", "resolve"]


@dataclass(frozen=True)
class Resolved:
    name: str  # canonical (PEP 503)
    version: str
    filename: str
    sha256: str
    url: str


def pip_command(*args: str | Path) -> list[str | Path]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]


def _check_markers(environment: dict[str, Any]) -> None:
    want = {
        "sys_platform": "linux",
        "platform_machine": NODE.machine,
        "implementation_name": "cpython",
        "python_version": NODE.python,
    }
    wrong = {k: environment.get(k) for k, v in want.items() if environment.get(k) != v}
    if wrong:
        raise BundleError(
            "pip evaluates environment markers for the machine it runs on, and this one "
            f"differs from the nodes ({wrong}, nodes: {want}): build the bundle on Linux "
            f"{NODE.machine} with CPython {NODE.python}"
        )


def _item(raw: dict[str, Any]) -> Resolved:
    info = raw["download_info"]
    url = str(info["url"])
    filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    sha = info.get("archive_info", {}).get("hashes", {}).get("sha256", "")
    name = str(raw["metadata"]["name"])
    if not filename.endswith(".whl"):
        raise BundleError(
            f"{name} resolved to {filename}, which is not a wheel: the nodes install wheels only"
        )
    return Resolved(canonicalize_name(name), str(raw["metadata"]["version"]), filename, sha, url)


def resolve(
    what: str,
    requirements: Sequence[str],
    requirement_files: Sequence[Path] = (),
    constraint_files: Sequence[Path] = (),
    no_deps: bool = False,
) -> list[Resolved]:
    """The wheels pip picks for the nodes, with URL and SHA-256 (nothing is downloaded)."""
    with tempfile.TemporaryDirectory(prefix="sovstack-resolve-") as tmp:
        report = Path(tmp) / "report.json"
        argv = pip_command(
            "install",
            "--dry-run",
            "--ignore-installed",
            "--progress-bar",
            "off",
            "--report",
            report,
            "--target",
            Path(tmp) / "target",
            *pip_target_args(),
        )
        if no_deps:
            argv.append("--no-deps")
        for path in constraint_files:
            argv += ["-c", path]
        for path in requirement_files:
            argv += ["-r", path]
        argv += list(requirements)
        run(argv, f"resolving {what} with pip")
        data = json.loads(report.read_text())
    _check_markers(data.get("environment", {}))
    return [_item(raw) for raw in data["install"]]


def _counter(total: int) -> Callable[[str], str | None]:
    """pip's 'Downloading <file> (<size>)' lines, numbered, as each download starts."""
    count = 0

    def shown(line: str) -> str | None:
        nonlocal count
        if not line.lstrip().startswith("Downloading "):
            return None
        count += 1
        return f"[{count}/{total}] {line.split('Downloading ', 1)[1].rsplit('/', 1)[-1]}"

    return shown


def batches(items: Sequence[Resolved]) -> list[list[Resolved]]:
    """``items`` split so that no batch names one package twice.

    Sets may pin different versions of one package side by side (the gateway's
    fastapi and vLLM's); pip refuses a requirements file that asks for both, so
    each further version of a name goes into a later batch.
    """
    out: list[list[Resolved]] = []
    names: list[set[str]] = []
    for r in items:
        for batch, seen in zip(out, names, strict=True):
            if r.name not in seen:
                batch.append(r)
                seen.add(r.name)
                break
        else:
            out.append([r])
            names.append({r.name})
    return out


def download(missing: Sequence[Resolved], pool: Path, echo: Echo) -> None:
    """Fetch ``missing`` into ``pool`` with pip, each file checked against its SHA-256."""
    pool.mkdir(parents=True, exist_ok=True)
    shown = _counter(len(missing))
    with tempfile.TemporaryDirectory(prefix=".partial-", dir=pool) as partial:
        for batch in batches(missing):
            _download_batch(batch, Path(partial), echo, shown)
        for r in missing:
            got = Path(partial) / r.filename
            if not got.is_file():
                raise BundleError(f"pip download did not produce {r.filename} ({r.url})")
            got.replace(pool / r.filename)


def _download_batch(
    batch: Sequence[Resolved], partial: Path, echo: Echo, shown: Callable[[str], str | None]
) -> None:
    with tempfile.TemporaryDirectory(prefix="sovstack-pins-") as pins_dir:
        pins = Path(pins_dir) / "hashed.txt"
        pins.write_text("".join(f"{r.name}=={r.version} --hash=sha256:{r.sha256}\n" for r in batch))
        run(
            pip_command(
                "download",
                "--no-deps",
                "--require-hashes",
                "--progress-bar",
                "off",
                "-d",
                partial,
                "-r",
                pins,
                *pip_target_args(),
            ),
            "pip download",
            echo,
            show=shown,
        )
