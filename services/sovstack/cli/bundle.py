"""``sovstack bundle``: make the signing key, build the offline bundle, verify it offline.

Exit codes of ``verify``: 0 verified, 1 verification failed (every problem is
printed, naming the file and why), 2 usage or I/O error.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import click

from sovstack import __version__
from sovstack.bundle import signing, state
from sovstack.bundle.build import SKIPPABLE, BuildOptions, build
from sovstack.bundle.collectors.debs import DEFAULT_MIRROR, DEFAULT_SECURITY, AptSources
from sovstack.bundle.collectors.models import parse_model_option
from sovstack.bundle.errors import BundleError
from sovstack.bundle.parts import load_manifest, write_part
from sovstack.bundle.profiles import PROFILES, left_out
from sovstack.bundle.report import human_size, table, verify_summary
from sovstack.bundle.sources import open_source
from sovstack.bundle.verify import verify
from sovstack.cli._errors import UsageProblem, friendly
from sovstack.cli._options import root_option
from sovstack.core.paths import Paths, find_root

__all__ = ["bundle"]

# A BundleError or an OSError is a message (exit 2), never a traceback.
_guard = friendly(BundleError, exit_code=2)
_root = root_option


@click.group()
def bundle() -> None:
    """The signed offline bundle: make its key, build it, verify it offline.

    Build on the connected side ('make bundle'), carry the folder or its tar
    across the air gap, and check it there ('make verify-bundle') before
    anything is installed from it.
    """


@bundle.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (created 0600, never overwritten); OUT.pub beside it.",
)
@_guard
def keygen(out: Path) -> None:
    """Make the Ed25519 key pair that signs bundles.

    The private key stays on the build side; the air-gapped side gets only
    the public key (OUT.pub), and trusts a bundle only if it verifies with it.
    """
    public = signing.generate_key(out)
    key_id = signing.key_id(signing.load_public(public))
    click.echo(f"private key  {out}  (mode 0600; keep it on the build side)")
    click.echo(f"public key   {public}  (key id {key_id}; give it to the air-gapped side)")


@bundle.command("build")
@_root
@click.option(
    "--profile",
    type=click.Choice(list(PROFILES)),
    default="cpu",
    show_default=True,
    help="cpu: vLLM's CPU build (the local cluster); gpu: PyPI's CUDA vLLM and "
    "the NVIDIA driver packages.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The bundle folder to write (default: ROOT/.sovstack/bundle/PROFILE). "
    "A previous bundle there is replaced.",
)
@click.option(
    "--signing-key",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Ed25519 private key from 'sovstack bundle keygen'.",
)
@click.option(
    "--policy-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The ES256 key that signs the OPA policy bundle ('sovstack policy keygen').",
)
@click.option(
    "--model",
    "model_specs",
    multiple=True,
    metavar="NAME=DIR",
    help="Model weights to carry: a local folder of safetensors files and their "
    "config and tokenizer (repeatable). Pickle files are refused.",
)
@click.option(
    "--version",
    "version",
    default=__version__,
    show_default=True,
    help="The bundle's version (PEP 440); verify refuses to go back to an older one.",
)
@click.option(
    "--skip",
    multiple=True,
    type=click.Choice(SKIPPABLE),
    help="Leave a part out (repeatable); the manifest then says the bundle is "
    "incomplete. 'vllm', 'gateway', 'control' are wheel sets.",
)
@click.option(
    "--tar",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the bundle as one tar file, manifest and signature first.",
)
@click.option(
    "--apt-mirror",
    default=DEFAULT_MIRROR,
    show_default=True,
    help="The Debian mirror the packages come from.",
)
@click.option(
    "--apt-security-mirror",
    default=DEFAULT_SECURITY,
    show_default=True,
    help="The Debian security mirror.",
)
@click.option(
    "--apt-source",
    multiple=True,
    metavar="LINE",
    help="One more sources.list line, e.g. a repository with newer NVIDIA drivers (repeatable).",
)
@click.option(
    "--apt-keyring",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A key apt trusts for those extra sources (repeatable).",
)
@_guard
def build_(
    root: Path | None,
    profile: str,
    out: Path | None,
    signing_key: Path,
    policy_key: Path | None,
    model_specs: tuple[str, ...],
    version: str,
    skip: tuple[str, ...],
    tar: Path | None,
    apt_mirror: str,
    apt_security_mirror: str,
    apt_source: tuple[str, ...],
    apt_keyring: tuple[Path, ...],
) -> None:
    """Build the signed offline bundle for PROFILE (on a connected machine).

    Downloads with each registry's own client (pip, apt, mvn, go) into
    .cache/bundle/ and reuses what is there; writes the wheels, the Debian
    repository, OPA, Keycloak and its JDK, the models, the Ansible
    collections, the signed policy bundle, an SBOM, and manifest.json signed
    with the signing key. Needs root for the Debian repository (debootstrap
    and chroot). Ends with a table of size and time per component.
    """
    paths = _project(root, "run it from the checkout, or give --root")
    options = BuildOptions(
        out=out or paths.state / "bundle" / profile,
        signing_key=signing_key,
        profile=profile,
        policy_key=policy_key,
        models=tuple(parse_model_option(m) for m in model_specs),
        version=version,
        skip=frozenset(skip),
        tar=tar,
        apt=AptSources(apt_mirror, apt_security_mirror, apt_source, apt_keyring),
    )
    built = build(paths, options, click.echo)
    click.echo("")
    for line in table(built.rows):
        click.echo(line)
    click.echo("")
    for note in built.notes:
        click.echo(f"note: {note}")
    missing = left_out(profile, built.manifest.contents)
    if missing:
        click.echo(f"note: INCOMPLETE bundle, it leaves out: {', '.join(missing)}")
    click.echo(f"bundle     {built.out}")
    if built.tar is not None:
        click.echo(f"tar        {built.tar} ({human_size(built.tar.stat().st_size)})")
    key_id = signing.key_id(signing.load_private(signing_key).public_key())
    click.echo(
        f"signed by  key id {key_id}; check it with: sovstack bundle verify "
        f"{(built.tar or built.out).resolve()} --pubkey {signing_key.resolve()}.pub"
    )


def _project(root: Path | None, why: str) -> Paths:
    try:
        return Paths(root or find_root())
    except FileNotFoundError as exc:
        raise UsageProblem(f"{exc}; {why}") from exc


def _default_state(root: Path | None) -> Path:
    """The install record's place: the checkout's (or --root's), else the site's or the user's."""
    checkout = None
    with contextlib.suppress(FileNotFoundError):
        checkout = Paths(root or find_root()).state
    return state.default_path(checkout, is_root=os.geteuid() == 0, home=Path.home())


@bundle.command("verify")
@_root
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(path_type=Path))
@click.option(
    "--pubkey",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bundle signing key's public half (KEY.pub from 'bundle keygen').",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=(
        "The record of the last bundle installed (default: .sovstack/bundle-installed.json"
        " in a checkout; elsewhere /var/lib/sovstack/ as root, else ~/.local/state/sovstack/)."
    ),
)
@click.option(
    "--force/--no-force", default=False, help="Accept a bundle older than the last one installed."
)
@click.option(
    "--record", is_flag=True, help="Once verified, record this bundle as the one installed."
)
@_guard
def verify_(
    root: Path | None,
    bundle_path: Path,
    pubkey: Path,
    state_file: Path | None,
    force: bool,
    record: bool,
) -> None:
    """Verify BUNDLE (a folder or its tar) offline, before anything is installed from it.

    The Ed25519 signature of manifest.json first, then every file's size and
    SHA-256, no missing and no added file, and a version that does not go
    back from the last bundle installed (unless --force). Prints a summary
    per component and every problem, naming the file and why.
    """
    public = signing.load_public(pubkey)
    if state_file is None:
        state_file = _default_state(root)
    installed = state.read(state_file)
    source = open_source(bundle_path)
    with contextlib.closing(source):
        report = verify(source, public, installed, force)
    for line in verify_summary(report):
        click.echo(line)
    if not report.ok or report.manifest is None or report.manifest_sha256 is None:
        raise click.exceptions.Exit(1)
    if record and installed is not None and installed.manifest_sha256 == report.manifest_sha256:
        click.echo(f"unchanged  {installed.version} is already recorded as installed")
    elif record:
        manifest = report.manifest
        state.record(
            state_file,
            state.Installed(
                manifest.version,
                manifest.profile,
                report.manifest_sha256,
                manifest.built_at,
                state.now(),
            ),
        )
        click.echo(f"recorded   {manifest.version} as installed in {state_file}")


@bundle.command("part")
@click.argument(
    "bundle_dir", metavar="BUNDLE", type=click.Path(file_okay=False, exists=True, path_type=Path)
)
@click.argument("part")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The tar to write (replaced atomically).",
)
@_guard
def part_(bundle_dir: Path, part: str, out: Path) -> None:
    """Write PART of a verified BUNDLE folder as one tar to carry to a node.

    PART is debs (the Debian repository), wheels:SET (one virtualenv's
    wheels and their requirements file) or a folder of the bundle
    (models/NAME, dist, bin, policy). The tar holds SHA256SUMS.PART, the
    files' SHA-256 as the signed manifest gives them, for `sha256sum -c` on
    the node. Verify the bundle first: `sovstack bundle verify`.
    """
    files = write_part(load_manifest(bundle_dir), bundle_dir, part, out)
    size = sum(f.size for f in files)
    click.echo(f"wrote {out}: {part}, {len(files)} files, {human_size(size)}")
