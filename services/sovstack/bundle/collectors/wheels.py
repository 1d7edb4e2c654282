"""``wheels/``: every Python package the nodes install, one hashed requirements file per virtualenv.

Sets (see :mod:`sovstack.bundle.profiles`): ``gateway`` (sovstack and its
dependencies), ``control`` (ansible-core and sovstack, for the deploy host),
``vllm`` (the CPU or the CUDA build). The sovstack wheel is built from this
checkout with a fixed ``SOURCE_DATE_EPOCH``, so the same code gives the same
wheel. Each set's ``requirements-<set>.txt`` pins every file by SHA-256 and
says how to install it offline.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from sovstack import __version__
from sovstack.bundle.collectors.base import Collected, Context, Package
from sovstack.bundle.collectors.pypi import Resolved, download, pip_command, resolve
from sovstack.bundle.errors import BundleError
from sovstack.bundle.files import sha256_file
from sovstack.bundle.proc import run
from sovstack.bundle.profiles import NODE, WheelSet

__all__ = ["build_sovstack_wheel", "collect", "pinned_names"]

# 1980-01-01, the earliest time a zip file can hold.
SOURCE_DATE_EPOCH = "315532800"
_OWN_ORIGIN = "built from this sovstack checkout"


def build_sovstack_wheel(root: Path, work: Path) -> Path:
    """Build sovstack's wheel from a clean copy of the checkout (no build/ left in it)."""
    src = work / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (root / name).is_file():
            shutil.copyfile(root / name, src / name)
    shutil.copytree(
        root / "services",
        src / "services",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
    )
    out = work / "dist"
    run(
        pip_command("wheel", "--no-deps", "--no-cache-dir", "--quiet", "-w", out, src),
        "building the sovstack wheel",
        env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
    )
    built = sorted(out.glob("sovstack-*.whl"))
    if len(built) != 1:
        raise BundleError(f"building the sovstack wheel gave {[p.name for p in built]}")
    return built[0]


def pinned_names(files: Sequence[Path]) -> set[str]:
    """The package names a constraints file pins with ``==``."""
    names: set[str] = set()
    for path in files:
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if any(spec.operator == "==" for spec in req.specifier):
                names.add(canonicalize_name(req.name))
    return names


def _resolve_set(
    ctx: Context, wheel_set: WheelSet, own: Resolved | None, got: Collected
) -> list[Resolved]:
    root = ctx.paths.root
    constraints = [root / p for p in wheel_set.constraint_files]
    requirements = list(wheel_set.requirements)
    if wheel_set.with_sovstack and own is not None:
        extras = f"[{','.join(wheel_set.sovstack_extras)}]" if wheel_set.sovstack_extras else ""
        requirements.append(own.url + extras)
    items = (
        resolve(
            f"the {wheel_set.name} set",
            requirements,
            [root / p for p in wheel_set.requirement_files],
            constraints,
        )
        if requirements or wheel_set.requirement_files
        else []
    )
    if wheel_set.no_deps:
        items += resolve(f"the {wheel_set.name} set (no deps)", wheel_set.no_deps, no_deps=True)
    if own is not None:
        items = [own if i.name == "sovstack" else i for i in items]
    names = [i.name for i in items]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise BundleError(f"the {wheel_set.name} set resolves {doubled} twice")
    pin_files = [*wheel_set.constraint_files, *wheel_set.requirement_files]
    pinned = pinned_names([root / p for p in pin_files]) | {
        canonicalize_name(Requirement(spec).name) for spec in wheel_set.no_deps
    }
    loose = sorted({i.name for i in items} - pinned - {"sovstack"})
    if loose:
        got.notes.append(
            f"{wheel_set.name}: not pinned in {', '.join(pin_files) or 'any file'}: "
            f"{', '.join(loose)} (a later build may pick newer releases)"
        )
    return sorted(items, key=lambda i: i.name)


def _requirements_text(wheel_set: WheelSet, profile: str, items: Sequence[Resolved]) -> str:
    no_deps = " --no-deps" if wheel_set.no_deps else ""
    lines = [
        f"# sovstack bundle, {profile} profile: the {wheel_set.name} set for the nodes",
        f"# (CPython {NODE.python}, Debian {NODE.debian_version}, {NODE.machine}). Install it "
        "offline from the bundle's wheels/:",
        f"#   pip install --no-index --find-links wheels --require-hashes{no_deps} "
        f"-r wheels/requirements-{wheel_set.name}.txt",
    ]
    if wheel_set.no_deps:
        lines.append(
            "# --no-deps: this file is the complete set; "
            + ", ".join(wheel_set.no_deps)
            + " declares a dependency PyPI does not carry."
        )
    for item in items:
        lines.append(f"{item.name}=={item.version} \\\n    --hash=sha256:{item.sha256}")
    return "\n".join(lines) + "\n"


def collect(ctx: Context, sets: Sequence[WheelSet]) -> Collected:
    got = Collected()
    pool = ctx.cache / "wheels"
    with tempfile.TemporaryDirectory(prefix="sovstack-wheel-") as work:
        own: Resolved | None = None
        own_path: Path | None = None
        if any(s.with_sovstack for s in sets):
            ctx.echo("    building the sovstack wheel from this checkout")
            own_path = build_sovstack_wheel(ctx.paths.root, Path(work))
            own = Resolved(
                "sovstack", __version__, own_path.name, sha256_file(own_path)[1], str(own_path)
            )
        chosen: dict[str, list[Resolved]] = {}
        for wheel_set in sets:
            ctx.echo(
                f"    resolving the {wheel_set.name} set for CPython {NODE.python} on "
                f"{NODE.manylinux_tags()[0]}"
            )
            chosen[wheel_set.name] = _resolve_set(ctx, wheel_set, own, got)
        every = {r.filename: r for items in chosen.values() for r in items}
        missing = [r for r in every.values() if r is not own and not (pool / r.filename).is_file()]
        ctx.echo(
            f"    {len(every)} wheels: {len(every) - len(missing)} in the cache, "
            f"{len(missing)} to download"
        )
        if missing:
            download(missing, pool, ctx.echo)
        got.fetched = len(missing)
        got.reused = len(every) - len(missing) - (1 if own is not None else 0)
        for r in sorted(every.values(), key=lambda r: r.filename):
            src = own_path if r is own and own_path is not None else pool / r.filename
            origin = _OWN_ORIGIN if r is own else r.url
            entry = got.place(ctx, src, f"wheels/{r.filename}", "wheels", r.version, origin)
            if entry.sha256 != r.sha256:
                src.unlink()
                raise BundleError(
                    f"{src} does not have the SHA-256 pip resolved ({r.sha256}): "
                    "it was removed from the cache; build again to download it afresh"
                )
            got.packages.append(
                Package(
                    "library",
                    r.name,
                    r.version,
                    f"pkg:pypi/{r.name}@{r.version}",
                    entry.sha256,
                    description=origin,
                )
            )
    for wheel_set in sets:
        rel = f"wheels/requirements-{wheel_set.name}.txt"
        (ctx.staging / rel).write_text(
            _requirements_text(wheel_set, ctx.profile.name, chosen[wheel_set.name])
        )
        got.add_written(ctx, rel, "wheels", wheel_set.name, "generated from the resolution")
    return got
