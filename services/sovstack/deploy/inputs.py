"""What a deploy stands on: the verified bundle folder, its public key, and the nodes.

Two cases. A real site (an inventory is given) brings a bundle (folder or
``.tar``) and the public key that must have signed it; nothing is built or
fetched. The local cluster (no inventory) is the embedded default: the keys
are made once in ``.sovstack/keys/`` if there are none, a cpu bundle is built
unless the one there was built from the same inputs, and the cluster is
brought up unless it is up.

A ``.tar`` is verified before it is unpacked (into ``.sovstack/deploy/``,
named by its manifest's SHA-256, once); the folder is verified again by the
``bundle_verify`` role before any node is touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sovstack.bundle import signing
from sovstack.bundle.build import BuildOptions, build
from sovstack.bundle.collectors.models import parse_model_option
from sovstack.bundle.sources import open_source
from sovstack.bundle.verify import verify
from sovstack.cluster import image, lifecycle
from sovstack.cluster.record import Record
from sovstack.core.paths import Paths
from sovstack.deploy.errors import DeployUsageError
from sovstack.policy import keys as policy_keys

__all__ = ["Inputs", "local_inputs", "site_inputs"]

Echo = Callable[[str], None]

# What a local bundle is built from: when none of it changed, the last build is reused.
_BUILD_INPUTS = ("pyproject.toml", "README.md", "requirements", "services", "policies", "roles")


@dataclass(frozen=True)
class Inputs:
    inventory: Path
    bundle_dir: Path
    pubkey: Path


def _digest(root: Path, parts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for part in parts:
        base = root / part
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            h.update(path.relative_to(root).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _keys(paths: Paths, echo: Echo) -> tuple[Path, Path]:
    folder = paths.state / "keys"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    bundle_key = folder / "bundle.key"
    if not bundle_key.exists():
        signing.generate_key(bundle_key)
        echo(f"    made the bundle signing key {bundle_key} (and {bundle_key}.pub)")
    pair = policy_keys.key_pair(folder)
    if not pair.private.exists():
        policy_keys.generate(folder)
        echo(f"    made the policy signing key {pair.private}")
    if not bundle_key.with_name("keys-made-here.txt").exists():
        bundle_key.with_name("keys-made-here.txt").write_text(
            "These keys were made by 'make deploy' for the local cluster. A real site makes its\n"
            "signing keys once, keeps the private halves offline on the build side, and gives\n"
            "the deploy host only bundle.key.pub.\n"
        )
        echo(f"    a real site keeps its private signing keys offline (see {folder})")
    return bundle_key, pair.private


def _local_bundle(paths: Paths, echo: Echo) -> Path:
    bundle_key, policy_key = _keys(paths, echo)
    out = paths.state / "bundle" / "cpu"
    stamp = out.with_name("cpu.inputs")
    digest = _digest(paths.root, _BUILD_INPUTS)
    if (out / "manifest.json").is_file() and stamp.is_file() and stamp.read_text() == digest:
        echo(f"    reusing {out}: built from the same inputs")
        return out
    model = paths.tiny_model
    if not (model / "model.safetensors").is_file():
        raise DeployUsageError(f"the tiny model is not in {model}: run 'make deps' first")
    echo(f"    building a cpu bundle into {out} (downloads are cached in {paths.cache / 'bundle'})")
    stamp.unlink(missing_ok=True)
    build(
        paths,
        BuildOptions(
            out=out,
            signing_key=bundle_key,
            profile="cpu",
            policy_key=policy_key,
            models=(parse_model_option(f"tiny-llama={model}"),),
        ),
        lambda line: echo(f"    {line}"),
    )
    stamp.write_text(digest)
    return out


def _cluster(paths: Paths, inventory: Path, echo: Echo) -> None:
    where = lifecycle.Where(state=paths.state / "cluster", cache=paths.cache.resolve())
    record = Record.load(where.record)
    if record is not None and record.info.get("ready"):
        echo(f"    the local cluster is up ({len(record.info.get('nodes', []))} nodes)")
        return
    if record is not None:
        echo("    a cluster that did not finish coming up is in the way: removing it")
        lifecycle.down(where, lambda line: echo(f"    {line}"))
    lifecycle.up(where, inventory, image.DEFAULT_MIRROR, lambda line: echo(f"    {line}"))


def local_inputs(paths: Paths, echo: Echo) -> Inputs:
    """The embedded default: keys, a cpu bundle and the local cluster, made as needed."""
    inventory = paths.root / "inventory" / "local"
    echo("==> bundle")
    bundle = _local_bundle(paths, echo)
    echo("==> cluster")
    _cluster(paths, inventory, echo)
    return Inputs(inventory, bundle, paths.state / "keys" / "bundle.key.pub")


def _unpack(tar: Path, pubkey: Path, into: Path, echo: Echo) -> Path:
    public = signing.load_public(pubkey)
    source = open_source(tar)
    with contextlib.closing(source):
        report = verify(source, public, None, True)
    if not report.ok or report.manifest_sha256 is None:
        problems = "; ".join(str(p) for p in report.problems[:5])
        raise DeployUsageError(f"{tar} does not verify with {pubkey}: {problems}")
    folder = into / f"bundle-{report.manifest_sha256[:16]}"
    if (folder / "manifest.json").is_file():
        echo(f"    {tar} is unpacked already in {folder}")
        return folder
    partial = folder.with_name(folder.name + ".partial")
    echo(f"    {tar} verified; unpacking it into {folder}")
    with tarfile.open(tar) as archive:
        archive.extractall(partial, filter="data")
    partial.replace(folder)
    return folder


def site_inputs(paths: Paths, inventory: Path, bundle: Path, pubkey: Path, echo: Echo) -> Inputs:
    """A real site's: its inventory, its bundle (a folder, or a tar unpacked once) and key."""
    for what, path in (("inventory", inventory), ("bundle", bundle), ("public key", pubkey)):
        if not path.exists():
            raise DeployUsageError(f"the {what} {path} does not exist")
    echo("==> bundle")
    if bundle.is_file():
        bundle = _unpack(bundle, pubkey, paths.state / "deploy", echo)
    elif not (bundle / "manifest.json").is_file():
        raise DeployUsageError(f"{bundle} is not a bundle: it has no manifest.json")
    return Inputs(inventory.resolve(), bundle.resolve(), pubkey.resolve())
