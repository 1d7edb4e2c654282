"""``bin/opa``: the development stack's OPA binary, built by ``go install`` (Go module proxy).

It is the pinned release (:mod:`sovstack.core.versions`), built with
``CGO_ENABLED=0`` into a static binary, so it runs on the nodes as it runs
here. A cache without it is filled the way ``sovstack deps --only opa`` does.
"""

from __future__ import annotations

from pathlib import Path

from sovstack.bundle.collectors.base import Collected, Context, Package
from sovstack.bundle.errors import BundleError
from sovstack.components import fetch
from sovstack.core import versions

__all__ = ["check_binary", "collect"]

_ELF_X86_64 = 0x3E


def check_binary(path: Path) -> None:
    """Refuse anything but an x86-64 ELF executable (a binary built for another machine)."""
    with path.open("rb") as stream:
        head = stream.read(20)
    if head[:4] != b"\x7fELF" or len(head) < 20:
        raise BundleError(f"{path} is not an ELF executable")
    if int.from_bytes(head[18:20], "little") != _ELF_X86_64:
        raise BundleError(f"{path} is not built for x86-64, which the nodes run")


def collect(ctx: Context) -> Collected:
    got = Collected()
    binary = ctx.paths.opa_bin
    if binary.is_file():
        got.reused = 1
    else:
        ctx.echo("    OPA is not in .cache/ yet: building it as 'sovstack deps --only opa' does")
        fetch.fetch_all(ctx.paths, ctx.echo, only=("opa",))
        got.fetched = 1
    check_binary(binary)
    origin = f"go install {versions.OPA_MODULE}@{versions.OPA_VERSION} (Go module proxy, CGO off)"
    entry = got.place(ctx, binary, "bin/opa", "opa", versions.OPA_VERSION, origin, executable=True)
    got.packages.append(
        Package(
            "application",
            "opa",
            versions.OPA_VERSION,
            f"pkg:golang/{versions.OPA_MODULE}@{versions.OPA_VERSION}",
            entry.sha256,
            description=origin,
        )
    )
    return got
