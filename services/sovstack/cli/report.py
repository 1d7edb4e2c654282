"""``sovstack audit report`` (make the signed evidence pack) and ``… report verify``.

Exit codes: ``report``: 0 every assessed control satisfied (or cannot yet be
shown), 1 the signed pack holds failures or errors, 2 usage or I/O error
(nothing signed; the folder is left as ``<out>.incomplete``).
``report verify``: 0 verified, 1 refused (the first bad file and why),
2 usage.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from sovstack.audit.errors import KeyFileError
from sovstack.audit.keys import generate_signing_key, load_public_key
from sovstack.cli._errors import UsageProblem, friendly
from sovstack.cli._options import root_option
from sovstack.core.paths import Paths, find_root
from sovstack.report import Clock, Inputs, LogInput, Refused, ReportError, build_report
from sovstack.report.browser import screenshot as chromium_screenshot
from sovstack.report.verify import verify_report

__all__ = ["report"]

_dir = click.Path(file_okay=False, path_type=Path)
_file = click.Path(dir_okay=False, path_type=Path)


def _dev_inputs(paths: Paths) -> tuple[list[tuple[Path, Path]], Path, Path | None]:
    """The dev stack's log and key (from dev.json), its report key (made once) and witness.

    The witness state is ``.sovstack/witness`` when 'sovstack audit witness' made one.
    """
    info_file = paths.state / "dev.json"
    if not info_file.is_file():
        raise UsageProblem(f"{info_file} does not exist: 'make dev' first (or drop --dev)")
    info = json.loads(info_file.read_text())
    pubkey = paths.state / "keys" / "audit-signing.key.pub"
    key = paths.state / "keys" / "report.key"
    if not key.is_file():
        generate_signing_key(key)
        click.echo(f"made the report signing key {key} (and {key}.pub)")
    witness = paths.state / "witness"
    return [(Path(info["audit_dir"]), pubkey)], key, witness if witness.is_dir() else None


def _parse_clock(text: str | None) -> Clock:
    if text is None:
        return Clock()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint="--clock") from exc
    return Clock(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


@click.group(invoke_without_command=True)
@root_option
@click.option("--out", type=_dir, help="The pack's folder (must not exist yet).")
@click.option("--signing-key", type=_file, help="Ed25519 key that signs the pack (audit keygen).")
@click.option("--policies", type=_dir, help="The policy folder (default: ROOT/policies).")
@click.option(
    "--log",
    "logs",
    type=(_dir, _file),
    multiple=True,
    metavar="DIR PUBKEY",
    help="An audit log folder and its public key (repeatable). A gateway's folder of"
    " worker logs is checked log by log, worker-<i> with PUBKEY's <key>.worker-<i>.pub.",
)
@click.option("--witness-state", type=_dir, help="The witness's state folder (audit witness).")
@click.option("--bundle", type=click.Path(path_type=Path), help="The offline bundle (folder/.tar).")
@click.option("--bundle-pubkey", type=_file, help="The bundle's public key.")
@click.option(
    "--hosts", "hosts", multiple=True, help="testinfra hosts for host checks: ansible://all, …"
)
@click.option("--inventory", type=click.Path(path_type=Path), help="Ansible inventory for --hosts.")
@click.option("--proofs", default=8, show_default=True, help="Inclusion proofs per log.")
@click.option("--clock", "clock_text", help="Fixed time (ISO 8601): a reproducible run.")
@click.option("--opa", type=_file, help="The opa binary (default: the pinned one in .cache/).")
@click.option("--dev", is_flag=True, help="Use the dev stack's log and keys (.sovstack/).")
@click.option("--screenshot/--no-screenshot", default=True, help="Render report.png (chromium).")
@click.pass_context
@friendly(ReportError, KeyFileError, exit_code=2)
def report(
    ctx: click.Context,
    root: Path | None,
    out: Path | None,
    signing_key: Path | None,
    policies: Path | None,
    logs: tuple[tuple[Path, Path], ...],
    witness_state: Path | None,
    bundle: Path | None,
    bundle_pubkey: Path | None,
    hosts: tuple[str, ...],
    inventory: Path | None,
    proofs: int,
    clock_text: str | None,
    opa: Path | None,
    dev: bool,
    screenshot: bool,
) -> None:
    """Make the signed compliance evidence pack in OUT (OSCAL, HTML, JUnit, evidence, DSSE).

    Every check the control catalogue names runs once over the inputs given;
    a check whose input is missing did not run, and its controls are not
    satisfied. 'report verify DIR --pubkey K' checks a pack offline.
    """
    if ctx.invoked_subcommand is not None:
        return
    paths = Paths(root or find_root())
    log_pairs = list(logs)
    if dev:
        dev_logs, dev_key, dev_witness = _dev_inputs(paths)
        log_pairs = log_pairs or dev_logs
        signing_key = signing_key or dev_key
        witness_state = witness_state or dev_witness
        hosts = hosts or ("local://",)
    if out is None or signing_key is None:
        raise click.UsageError("--out and --signing-key are required (or --dev for the key)")
    inputs = Inputs(
        policies=policies or paths.policies,
        project_root=paths.root,
        opa=opa or paths.opa_bin,
        logs=tuple(LogInput(d, k) for d, k in log_pairs),
        witness_state=witness_state,
        bundle=bundle,
        bundle_pubkey=bundle_pubkey,
        hosts=tuple(h for spec in hosts for h in spec.split(",") if h),
        inventory=inventory,
        proofs=proofs,
    )
    outcome = build_report(
        inputs,
        out,
        signing_key,
        _parse_clock(clock_text),
        chromium_screenshot if screenshot else None,
    )
    figure = outcome.figure
    click.echo(f"wrote {outcome.folder} ({len(outcome.findings)} controls, signed)")
    click.echo(figure.formula())
    for finding in outcome.findings:
        if finding.state not in ("satisfied", "not-assessed"):
            click.echo(f"  {finding.state:<20} {finding.key}: {finding.reason}")
    if outcome.screenshot is not None:
        click.echo(f"no screenshot: {outcome.screenshot}")
    click.echo("verdict: " + ("pass" if outcome.exit_code == 0 else "FAIL"))
    ctx.exit(outcome.exit_code)


@report.command("verify")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--pubkey", required=True, type=_file, help="The report signer's public key.")
@friendly(ReportError, KeyFileError, exit_code=2)
def verify_cmd(folder: Path, pubkey: Path) -> None:
    """Check a pack offline: the signature, then every file against what was signed."""
    public = load_public_key(pubkey)
    try:
        predicate = verify_report(folder, public)
    except Refused as exc:
        click.echo(f"REFUSED: {exc.path}: {exc.why}")
        raise click.exceptions.Exit(1) from exc
    compliance = predicate.get("compliance", {})
    click.echo(
        f"verified: {folder}: verdict {predicate.get('verdict')},"
        f" compliance {compliance.get('percent')} % (signed {predicate.get('generated_at')})"
    )
