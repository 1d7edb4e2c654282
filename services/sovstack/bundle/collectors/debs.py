"""``debs/``: the roles' Debian packages with their full dependency closure, as a flat repository.

In the cached minimal Debian root (:mod:`sovstack.bundle.debroot`) apt, the
ordinary client, plans the installation of every package the profile lists
(``apt-get install --simulate``: the exact closure a fresh node lacks) and
downloads it (``--download-only``) from the configured sources, checking
Debian's signatures as it always does. The packages are copied out under
their pool names, indexed, and the repository is then checked on its own.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sovstack.bundle import aptrepo, debroot
from sovstack.bundle.collectors.base import Collected, Context, Package
from sovstack.bundle.errors import BundleError
from sovstack.bundle.proc import run
from sovstack.bundle.profiles import NODE

__all__ = ["AptSources", "Planned", "collect", "parse_plan", "update_problems"]

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY = "http://deb.debian.org/debian-security"

# "Inst name [old version] (version release, release [arch])"
_INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) (.*) \[(\S+)\]\)")


@dataclass(frozen=True)
class Planned:
    name: str
    version: str
    arch: str
    release: str

    @property
    def cached_name(self) -> str:
        """The file name apt gives the download (':' of an epoch quoted)."""
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"

    @property
    def pool_name(self) -> str:
        """The name the Debian archive gives it (no epoch)."""
        return f"{self.name}_{self.version.split(':', 1)[-1]}_{self.arch}.deb"


@dataclass(frozen=True)
class AptSources:
    """Where the packages come from: Debian's mirrors, or lines the site gives instead."""

    mirror: str = DEFAULT_MIRROR
    security: str = DEFAULT_SECURITY
    extra: tuple[str, ...] = ()  # more sources.list lines (e.g. NVIDIA's CUDA repository)
    keyrings: tuple[Path, ...] = ()  # keys apt trusts for those extra sources

    def render(self, components: Sequence[str]) -> str:
        comps = " ".join(components)
        suite = NODE.debian_suite
        return (
            f"deb {self.mirror} {suite} {comps}\n"
            f"deb {self.mirror} {suite}-updates {comps}\n"
            f"deb {self.security} {suite}-security {comps}\n"
        ) + "".join(f"{line}\n" for line in self.extra)


def parse_plan(text: str) -> list[Planned]:
    """The packages ``apt-get install --simulate`` would install, from its output."""
    plan = []
    for line in text.splitlines():
        match = _INST.match(line)
        if match:
            name, version, release, arch = match.groups()
            plan.append(Planned(name, version, arch, release))
    return plan


def _chroot_apt(root: Path, *args: str) -> list[str]:
    return ["chroot", str(root), "apt-get", "-q", *args]


def _configure(root: Path, sources: AptSources, components: Sequence[str]) -> None:
    (root / "etc/apt/sources.list").write_text(sources.render(components))
    trusted = root / "etc/apt/trusted.gpg.d"
    for old in trusted.glob("sovstack-*"):
        old.unlink()
    for key in sources.keyrings:
        if not key.is_file():
            raise BundleError(f"apt keyring {key} does not exist")
        suffix = ".asc" if key.read_bytes().startswith(b"-----BEGIN") else ".gpg"
        shutil.copyfile(key, trusted / f"sovstack-{key.stem}{suffix}")
    # The root resolves names the way this host does (it only ever talks to the mirrors).
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    shutil.copyfile("/etc/resolv.conf", resolv)


def update_problems(output: str) -> list[str]:
    """The lines of ``apt-get update`` that say a source failed (apt still exits 0 for them)."""
    return [
        line
        for line in output.splitlines()
        if line.startswith(("W: Failed to fetch", "E: ", "W: GPG error", "Err:"))
        or "is not signed" in line
        or "NO_PUBKEY" in line
    ]


_UNREADABLE = (
    "apt-get update could not read every source (is it reachable? is its key given "
    "with --apt-keyring?):\n"
)


def _update(root: Path) -> None:
    try:
        output = run(_chroot_apt(root, "update"), "apt-get update")
    except BundleError as exc:
        # A source that is not signed by a key apt has makes it exit 100 (others only warn).
        failed = update_problems(str(exc)) or str(exc).splitlines()
        raise BundleError(_UNREADABLE + "\n".join(f"  {line}" for line in failed)) from exc
    failed = update_problems(output)
    if failed:
        raise BundleError(_UNREADABLE + "\n".join(f"  {line}" for line in failed))


def collect(
    ctx: Context, packages: Sequence[str], components: Sequence[str], sources: AptSources
) -> Collected:
    debroot.require_tools()
    got = Collected()
    repo = ctx.staging / "debs"
    repo.mkdir(parents=True)
    with debroot.locked(ctx.cache):
        root = debroot.ensure(ctx.cache, NODE.debian_suite, sources.mirror, ctx.echo)
        _configure(root, sources, components)
        ctx.echo(f"    apt-get update ({', '.join(components)})")
        _update(root)
        install = ["install", "-y", "--no-install-recommends", *packages]
        try:
            plan = parse_plan(run(_chroot_apt(root, *install, "--simulate"), "resolving"))
        except BundleError as exc:
            raise BundleError(
                f"apt cannot resolve the {ctx.profile.name} profile's packages from "
                f"the configured sources:\n{exc}"
            ) from exc
        archives = root / debroot.ARCHIVES.lstrip("/")
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        cached = {p.name for p in plan if (archives / p.cached_name).is_file()}
        ctx.echo(
            f"    {len(plan)} packages in the closure: {len(cached)} in the cache, "
            f"{len(plan) - len(cached)} to download"
        )
        run(
            _chroot_apt(
                root, *install, "--download-only", "-o", f"Dir::Cache::archives={debroot.ARCHIVES}"
            ),
            "apt-get install --download-only",
            ctx.echo,
            show=lambda line: line if line.startswith("Fetched") else None,
        )
        got.fetched, got.reused = len(plan) - len(cached), len(cached)
        for p in sorted(plan, key=lambda p: p.pool_name):
            src = archives / p.cached_name
            if not src.is_file():
                raise BundleError(f"apt did not download {p.cached_name} into {archives}")
            entry = got.place(
                ctx, src, f"debs/{p.pool_name}", "debs", p.version, f"apt: {p.release}"
            )
            got.packages.append(
                Package(
                    "library",
                    p.name,
                    p.version,
                    f"pkg:deb/debian/{p.name}@{quote(p.version, safe='.-~')}?arch={p.arch}"
                    f"&distro=debian-{NODE.debian_version}",
                    entry.sha256,
                )
            )
        for index in aptrepo.write_indexes(repo, NODE.debian_suite, NODE.deb_arch):
            got.add_written(ctx, f"debs/{index.name}", "debs", "index", "dpkg-scanpackages")
        ctx.echo(
            "    checking that apt on a minimal Debian installs every package from debs/ alone"
        )
        aptrepo.check_installable(root, repo, packages)
    return got
