"""``collections/ansible_collections/``: the Ansible collections the playbooks use.

Galaxy is not reachable from the build host; PyPI is, and its ``ansible``
package carries the same collection releases (each with the ``MANIFEST.json``
and ``FILES.json`` Galaxy would serve). The build takes the collections named
in :data:`~sovstack.bundle.profiles.COLLECTIONS` out of that wheel, checks
every file against the collection's own ``FILES.json``, and lays them out so
that ``ANSIBLE_COLLECTIONS_PATH=<bundle>/collections`` finds them.

It also reads ``playbooks/`` and ``roles/`` for the collections they use (as
modules, filters and lookups by FQCN, or in a ``collections:`` list) and
refuses to build a bundle that lacks one of them.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

from sovstack.bundle.collectors import pypi
from sovstack.bundle.collectors.base import Collected, Context, Package
from sovstack.bundle.errors import BundleError
from sovstack.bundle.manifest import FileEntry, check_path
from sovstack.bundle.profiles import ANSIBLE_VERSION

__all__ = ["check_used", "collect", "used_collections"]

_BUILTIN = frozenset({"ansible.builtin", "ansible.legacy"})
_ID = r"[a-z_][a-z0-9_]*"
_MODULE = re.compile(rf"^\s*(?:-\s+)?({_ID})\.({_ID})\.{_ID}\s*:", re.MULTILINE)  # a task's
_USES = (
    re.compile(rf"(?:lookup|query)\(\s*['\"]({_ID})\.({_ID})\.{_ID}"),  # a lookup plugin
    re.compile(rf"\|\s*({_ID})\.({_ID})\.{_ID}\b"),  # a filter
)
_LIST = re.compile(rf"^\s*collections:\s*\n((?:\s*-\s*{_ID}\.{_ID}\s*\n)+)", re.MULTILINE)


def used_collections(root: Path) -> dict[str, str]:
    """Every collection the playbooks and roles use, with the first file that uses it."""
    used: dict[str, str] = {}
    for folder in ("playbooks", "roles"):
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in (".yml", ".yaml", ".j2") or not path.is_file():
                continue
            text = path.read_text(errors="replace")
            patterns = list(_USES)
            # Variables and defaults hold data (sysctl names such as net.ipv4.ip_forward:),
            # never a task, so only their lookups and filters count.
            if path.parent.name not in ("defaults", "vars"):
                patterns.append(_MODULE)
            names = [f"{ns}.{c}" for pattern in patterns for ns, c in pattern.findall(text)]
            for block in _LIST.findall(text):
                names += [line.strip().lstrip("-").strip() for line in block.splitlines()]
            for name in names:
                if name and name not in _BUILTIN:
                    used.setdefault(name, path.relative_to(root).as_posix())
    return used


def check_used(root: Path, carried: Sequence[str]) -> None:
    lacking = {n: f for n, f in used_collections(root).items() if n not in carried}
    if lacking:
        raise BundleError(
            "the playbooks use collections the bundle does not carry:\n"
            + "\n".join(f"  - {name} (used in {where})" for name, where in sorted(lacking.items()))
            + "\n  add them to COLLECTIONS in services/sovstack/bundle/profiles.py"
        )


def _extract(ctx: Context, wheel: zipfile.ZipFile, name: str, origin: str, got: Collected) -> None:
    namespace, collection = name.split(".")
    prefix = f"ansible_collections/{namespace}/{collection}/"
    members = sorted(m for m in wheel.namelist() if m.startswith(prefix) and not m.endswith("/"))
    if not members:
        raise BundleError(f"ansible=={ANSIBLE_VERSION} does not carry the collection {name}")
    info = json.loads(wheel.read(prefix + "MANIFEST.json"))["collection_info"]
    version = str(info["version"])
    listed = {
        f["name"]: f["chksum_sha256"]
        for f in json.loads(wheel.read(prefix + "FILES.json"))["files"]
        if f["ftype"] == "file"
    }
    for member in members:
        rel = member[len(prefix) :]
        data = wheel.read(member)
        digest = hashlib.sha256(data).hexdigest()
        if rel not in ("MANIFEST.json", "FILES.json") and listed.get(rel) != digest:
            raise BundleError(
                f"{member} in ansible=={ANSIBLE_VERSION} does not match {name}'s FILES.json"
            )
        path = check_path(f"collections/{member}")
        target = ctx.staging / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        executable = bool((wheel.getinfo(member).external_attr >> 16) & 0o100)
        target.chmod(0o755 if executable else 0o644)
        got.files.append(FileEntry(path, len(data), digest, "collections", version, origin))
    got.packages.append(
        Package(
            "library",
            collection,
            version,
            group=namespace,
            description=f"Ansible collection {name}, from {origin}",
        )
    )
    ctx.echo(f"    {name} {version}: {len(members)} files")


def collect(ctx: Context, names: Sequence[str]) -> Collected:
    check_used(ctx.paths.root, names)
    got = Collected()
    (wheel,) = pypi.resolve("ansible", [f"ansible=={ANSIBLE_VERSION}"], no_deps=True)
    pool = ctx.cache / "wheels"
    src = pool / wheel.filename
    if src.is_file():
        got.reused = 1
    else:
        pypi.download([wheel], pool, ctx.echo)
        got.fetched = 1
    with src.open("rb") as stream:
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    if digest != wheel.sha256:
        src.unlink()
        raise BundleError(f"{src} does not match PyPI's SHA-256: removed; build again")
    origin = f"PyPI ansible=={ANSIBLE_VERSION} ({wheel.filename})"
    with zipfile.ZipFile(src) as archive:
        for name in sorted(names):
            _extract(ctx, archive, name, origin, got)
    return got
