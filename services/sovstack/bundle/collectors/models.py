"""``models/<name>/``: model weights from a local folder, safetensors only.

A pickle (``.bin``, ``.pt``, ``.pkl``, ...) runs arbitrary code when it is
loaded, so it is refused, and so is any file that is neither a safetensors
weight file nor a known configuration or tokenizer file. Each safetensors
file is checked to be one (its header parses, its tensors lie inside the
file): a pickle renamed ``.safetensors`` is refused too. Hidden entries
(``.git``, ``.cache``) are left out. Nothing is ever fetched from a hub.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from sovstack.bundle.collectors.base import Collected, Context, Package
from sovstack.bundle.errors import BundleError

__all__ = ["ModelSource", "check_safetensors", "collect", "model_files", "parse_model_option"]

WEIGHTS = ".safetensors"
# Configuration, tokenizer and documentation files: data, never code.
CONFIG_SUFFIXES = frozenset({".json", ".txt", ".jinja", ".model", ".md", ".tiktoken"})
PICKLE_SUFFIXES = frozenset(
    {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz", ".dill"}
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_MAX_HEADER = 100 << 20


@dataclass(frozen=True)
class ModelSource:
    name: str
    directory: Path


def parse_model_option(value: str) -> ModelSource:
    """``NAME=DIR`` or ``DIR`` (the model is then named after the folder)."""
    name, sep, folder = value.partition("=")
    directory = Path(folder if sep else value).expanduser()
    name = name if sep else directory.resolve().name
    if not _NAME.fullmatch(name):
        raise BundleError(f"model name {name!r}: use letters, digits, '.', '_' and '-'")
    if not directory.is_dir():
        raise BundleError(f"model folder {directory} does not exist")
    return ModelSource(name, directory)


def check_safetensors(path: Path) -> None:
    """Raise unless ``path`` is a well-formed safetensors file."""
    size = path.stat().st_size
    with path.open("rb") as stream:
        head = stream.read(8)
        if len(head) < 8:
            raise BundleError(f"{path}: not a safetensors file (shorter than its header)")
        length = int.from_bytes(head, "little")
        if length > min(_MAX_HEADER, size - 8):
            raise BundleError(f"{path}: not a safetensors file (header length {length})")
        try:
            header = json.loads(stream.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"{path}: not a safetensors file (header is not JSON)") from exc
    if not isinstance(header, dict):
        raise BundleError(f"{path}: not a safetensors file (header is not an object)")
    data = size - 8 - length
    for tensor, info in header.items():
        if tensor == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data
        ):
            raise BundleError(f"{path}: tensor {tensor!r} lies outside the file")


def _refusal(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        return "a pickle file: loading it runs arbitrary code; convert the weights to safetensors"
    if suffix != WEIGHTS and suffix not in CONFIG_SUFFIXES:
        return (
            "neither safetensors weights nor a configuration or tokenizer file "
            f"({', '.join(sorted(CONFIG_SUFFIXES))})"
        )
    with path.open("rb") as stream:
        magic = stream.read(4)
    if suffix != WEIGHTS and (magic[:1] == b"\x80" or magic == b"PK\x03\x04"):
        return "holds a pickle or a zip archive under a data file's name"
    return None


def model_files(source: ModelSource) -> list[tuple[str, Path]]:
    """(relative path, file) of every file the model carries; raise on anything refused."""
    files: list[tuple[str, Path]] = []
    problems: list[str] = []
    for path in sorted(source.directory.rglob("*")):
        rel = path.relative_to(source.directory)
        if any(part.startswith(".") for part in rel.parts) or path.is_dir():
            continue
        if not path.is_file():
            problems.append(f"{path}: not a regular file")
            continue
        why = _refusal(path)
        if why:
            problems.append(f"{path}: {why}")
            continue
        if path.suffix.lower() == WEIGHTS:
            check_safetensors(path)
        files.append((rel.as_posix(), path))
    if problems:
        raise BundleError(
            f"model {source.name!r} refused:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    if not any(rel.endswith(WEIGHTS) for rel, _ in files):
        raise BundleError(f"model {source.name!r}: {source.directory} has no safetensors weights")
    return files


def collect(ctx: Context, sources: list[ModelSource]) -> Collected:
    got = Collected()
    for source in sources:
        files = model_files(source)
        origin = f"local folder {source.directory.resolve()}"
        placed = [
            got.place(ctx, path, f"models/{source.name}/{rel}", "models", "pending", origin)
            for rel, path in files
        ]
        digest = hashlib.sha256()
        for entry in placed:
            digest.update(f"{entry.path}\0{entry.sha256}\n".encode())
        version = f"sha256:{digest.hexdigest()[:16]}"
        # The model's version is known only once every file is hashed.
        got.files[-len(placed) :] = [replace(e, version=version) for e in placed]
        got.reused += len(placed)
        got.packages.append(
            Package("machine-learning-model", source.name, version, description=origin)
        )
        ctx.echo(f"    model {source.name}: {len(placed)} files, version {version}")
    return got
