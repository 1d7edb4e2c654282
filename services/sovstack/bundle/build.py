"""``sovstack bundle build``: collect every component, write the SBOM and the manifest, sign it.

The bundle is assembled in a private folder beside the output and renamed
into place only once it is complete and signed, so an interrupted build
never leaves something that looks like a bundle. Everything a build could
refuse (keys, models, tools, the output folder) is checked before the first
download. Collectors run in a fixed order; each reports its files and
packages, and the time it took goes into the table printed at the end.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sovstack import __version__
from sovstack.bundle import compat, debroot, sbom, signing, state
from sovstack.bundle.collectors import ansible, debs, keycloak, models, opa, policy, wheels
from sovstack.bundle.collectors.base import Collected, Context, Package
from sovstack.bundle.collectors.debs import AptSources
from sovstack.bundle.collectors.models import ModelSource
from sovstack.bundle.errors import BundleError
from sovstack.bundle.files import remove, sha256_file, walk_files
from sovstack.bundle.manifest import MANIFEST_NAME, SIGNATURE_NAME, FileEntry, Manifest
from sovstack.bundle.profiles import (
    COLLECTIONS,
    NODE,
    PROFILES,
    Profile,
    expected_contents,
    role_debs,
)
from sovstack.bundle.report import Row, human_size
from sovstack.bundle.tarball import write_tar
from sovstack.core.paths import Paths
from sovstack.core.progress import Echo

__all__ = ["PARTS", "SKIPPABLE", "BuildOptions", "Built", "build"]

PARTS = ("wheels", "debs", "opa", "keycloak", "models", "collections", "policy")
# A part, or one wheel set (the vLLM set is most of a bundle's size).
SKIPPABLE = (*PARTS, "gateway", "control", "vllm")


@dataclass(frozen=True)
class BuildOptions:
    out: Path
    signing_key: Path
    profile: str = "cpu"
    policy_key: Path | None = None
    models: tuple[ModelSource, ...] = ()
    version: str = __version__
    skip: frozenset[str] = frozenset()
    tar: Path | None = None
    apt: AptSources = field(default_factory=AptSources)


@dataclass(frozen=True)
class Built:
    out: Path
    manifest: Manifest
    rows: tuple[Row, ...]
    notes: tuple[str, ...]
    tar: Path | None


def _contents(profile: Profile, skip: frozenset[str]) -> list[str]:
    def kept(name: str) -> bool:
        part, _, wheel_set = name.partition(":")
        if part == "jdk":
            part = "keycloak"
        return part not in skip and wheel_set not in skip

    return [name for name in expected_contents(profile) if kept(name)]


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise BundleError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise BundleError(f"{out} exists and is not a bundle: refusing to replace it")


def _preflight(paths: Paths, options: BuildOptions) -> Profile:
    """Refuse now what would make the build fail later, before anything is downloaded."""
    if options.profile not in PROFILES:
        raise BundleError(f"no profile {options.profile!r}: choose one of {', '.join(PROFILES)}")
    unknown = sorted(options.skip - set(SKIPPABLE))
    if unknown:
        raise BundleError(f"cannot skip {unknown}: the parts are {', '.join(SKIPPABLE)}")
    state.parse_version(options.version)
    signing.load_private(options.signing_key)
    if "policy" not in options.skip:
        if options.policy_key is None:
            raise BundleError(
                "--policy-key is required: the policy bundle is signed with it "
                "(make one with 'sovstack policy keygen'), or pass --skip policy"
            )
        policy.public_key_pem(options.policy_key)
    if "models" not in options.skip:
        if not options.models:
            raise BundleError("give the model weights with --model NAME=DIR (or --skip models)")
        names = [m.name for m in options.models]
        if len(set(names)) != len(names):
            raise BundleError(f"two models share a name: {names}")
        for source in options.models:
            models.model_files(source)
    if "debs" not in options.skip:
        debroot.require_tools()
    _check_out(options.out)
    return PROFILES[options.profile]


def _steps(ctx: Context, options: BuildOptions) -> list[tuple[str, Callable[[], Collected]]]:
    profile = ctx.profile
    sets = [s for s in profile.wheel_sets if s.name not in options.skip]
    every: dict[str, Callable[[], Collected]] = {
        "wheels": lambda: wheels.collect(ctx, sets),
        "debs": lambda: debs.collect(
            ctx, role_debs(ctx.paths.root / "roles", profile), profile.apt_components, options.apt
        ),
        "opa": lambda: opa.collect(ctx),
        "keycloak": lambda: keycloak.collect(ctx),
        "models": lambda: models.collect(ctx, list(options.models)),
        "collections": lambda: ansible.collect(ctx, COLLECTIONS),
        "policy": lambda: policy.collect(ctx, options.policy_key or Path()),
    }
    steps = [(name, every[name]) for name in PARTS if name not in options.skip]
    if not sets:
        steps = [(n, w) for n, w in steps if n != "wheels"]
    return steps


def _seal(staging: Path, manifest: Manifest, options: BuildOptions) -> None:
    listed = {f.path for f in manifest.files}
    stray = [rel for rel, _ in walk_files(staging) if rel not in listed]
    if stray:
        raise BundleError(f"files were placed but not listed (a collector's bug): {stray[:5]}")
    data = manifest.to_bytes()
    (staging / MANIFEST_NAME).write_bytes(data)
    (staging / SIGNATURE_NAME).write_bytes(
        signing.sign(data, signing.load_private(options.signing_key))
    )


def _move_into_place(staging: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        out.rename(old / "bundle")
    staging.rename(out)
    if old is not None:
        remove(old)


def build(paths: Paths, options: BuildOptions, echo: Echo) -> Built:
    """Build, sign and put in place the bundle that ``options`` describe."""
    profile = _preflight(paths, options)
    out = options.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        ctx = Context(paths, profile, staging, paths.cache / "bundle", echo)
        ctx.cache.mkdir(parents=True, exist_ok=True)
        files: list[FileEntry] = []
        packages: list[Package] = []
        rows: list[Row] = []
        notes: list[str] = []
        steps = _steps(ctx, options)
        echo(f"building a {profile.name} bundle ({profile.summary}), version {options.version}")
        for i, (name, work) in enumerate(steps, 1):
            echo(f"==> [{i}/{len(steps)}] {name}")
            started = time.monotonic()
            got = work()
            took = time.monotonic() - started
            size = sum(f.size for f in got.files)
            files += got.files
            packages += got.packages
            notes += got.notes
            rows.append(Row(name, len(got.files), size, took, got.fetched, got.reused))
            echo(f"    {name}: {len(got.files)} files, {human_size(size)}, {took:.1f}s")
        (staging / sbom.SBOM_NAME).write_bytes(sbom.render(options.version, profile.name, packages))
        size, digest = sha256_file(staging / sbom.SBOM_NAME)
        files.append(
            FileEntry(
                sbom.SBOM_NAME,
                size,
                digest,
                "sbom",
                options.version,
                "generated by sovstack bundle build (CycloneDX 1.6)",
            )
        )
        rows.append(Row("sbom", 1, size, 0.0, 0, 0))
        note = compat.driver_note(files)
        if note:
            notes.append(note)
        contents = _contents(profile, options.skip)
        manifest = Manifest(
            version=options.version,
            profile=profile.name,
            built_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            platform=NODE.as_json(),
            contents=tuple(contents),
            complete=contents == expected_contents(profile),
            files=tuple(sorted(files, key=lambda f: f.path)),
            sources=(
                {"apt": options.apt.render(profile.apt_components)}
                if "debs" not in options.skip
                else {}
            ),
        )
        _seal(staging, manifest, options)
        _move_into_place(staging, out)
    finally:
        remove(staging)
    if options.tar is not None:
        echo(f"==> writing {options.tar}")
        started = time.monotonic()
        stamp = int(
            datetime.strptime(manifest.built_at, "%Y-%m-%dT%H:%M:%SZ")
            .replace(tzinfo=UTC)
            .timestamp()
        )
        write_tar(out, manifest, options.tar.resolve(), stamp)
        took = time.monotonic() - started
        echo(f"    {human_size(options.tar.stat().st_size)} in {took:.1f}s")
    return Built(out, manifest, tuple(rows), tuple(notes), options.tar)
