"""``sovstack audit``: keys, offline verification, proofs, export, the witness, the report.

Exit codes, for every subcommand: 0 verified (or done), 1 verification
failed (the evidence is printed), 2 usage or I/O error (a message, never a
stack trace).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from pathlib import Path
from typing import TextIO

import click

from sovstack.audit import (
    VerificationError,
    generate_signing_key,
    generate_site_key,
    load_public_key,
    load_site_key,
)
from sovstack.audit.checkpoint import open_checkpoint
from sovstack.audit.cosignature import verify_cosignature
from sovstack.audit.export import Filters, export_lines, follow, parse_time
from sovstack.audit.inclusion import prove_in_site, verify_bundle
from sovstack.audit.jsonlines import dump_line, split_lines
from sovstack.audit.keys import load_signing_key
from sovstack.audit.logset import Member
from sovstack.audit.site import Site
from sovstack.audit.verify import Report, verify_site
from sovstack.audit.witness import Accepted, store_cosigned, witness_site
from sovstack.cli._errors import UsageProblem, print_failure, reader_may_leave
from sovstack.cli._errors import verifying as _guard
from sovstack.cli._lazy import LazyGroup

__all__ = ["audit"]

_log_dir = click.argument(
    "directory", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
_pubkey = click.option(
    "--pubkey",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The log's Ed25519 public key (the .pub that 'audit keygen' wrote).",
)
# For the commands given a log folder, which may be a folder of worker logs.
_site_pubkey = click.option(
    "--pubkey",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The log's Ed25519 public key (the .pub that 'audit keygen' wrote); for a folder of"
    " worker logs, worker-<i>'s is <key>.worker-<i>.pub beside it.",
)
_origin = click.option("--origin", default=None, help="Require checkpoints of this log origin.")


# The report runs on the auditor's machine, not on a gateway node: its own extra.
@click.group(cls=LazyGroup, lazy={"report": ("sovstack.cli.report", "audit-report")})
def audit() -> None:
    """The tamper-evident audit log: keys, verification, proofs, export, witness.

    Exit codes: 0 verified, 1 verification failed, 2 usage or I/O error.
    """


@audit.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the new private key (created 0600, never overwritten).",
)
@click.option("--site-key", is_flag=True, help="Make an AES-256 site key for content instead.")
@click.option("--key-id", default=None, help="The site key's id (default: derived from it).")
@_guard
def keygen(out: Path, site_key: bool, key_id: str | None) -> None:
    """Make a checkpoint signing key (and OUT.pub), or with --site-key a content key."""
    if site_key:
        kid = generate_site_key(out, key_id)
        click.echo(f"wrote site key {kid!r} to {out} (mode 0600)")
        return
    if key_id is not None:
        raise click.UsageError("--key-id only applies to --site-key")
    pub = generate_signing_key(out)
    click.echo(f"wrote signing key {out} (mode 0600) and public key {pub}")


@audit.command()
@_log_dir
@_site_pubkey
@_origin
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A checkpoint kept elsewhere (e.g. by a witness) that the log must still contain.",
)
@click.option("--check-records", is_flag=True, help="Also check every record against the schema.")
@_guard
def verify(
    directory: Path,
    pubkey: Path,
    origin: str | None,
    checkpoint_file: Path | None,
    check_records: bool,
) -> None:
    """Re-derive every root from the raw entries and check every checkpoint.

    Checks each checkpoint's signature, that each is consistent with the
    next, and that the entries hash to each signed root. On failure prints
    the first bad index and the evidence.

    DIRECTORY may be a folder of worker logs (worker-0/, worker-1/, ...):
    each is verified with its own key (PUBKEY's <key>.worker-<i>.pub) and,
    with --origin, origin (ORIGIN/worker-<i>); a line per log says which.
    One that fails does not stop the others; the command then exits 1.
    --checkpoint applies to the worker log whose origin it names; one that
    names no worker log of the folder is refused (exit 1).
    """
    site = Site.open(directory, pubkey)
    note = checkpoint_file.read_text(encoding="utf-8") if checkpoint_file else None

    def show(member: Member, report: Report) -> None:
        where = site.prefix(member)
        for warning in report.warnings:
            click.echo(f"warning: {where}{warning}", err=True)
        latest = report.latest
        assert latest is not None  # noqa: S101 (verify_log refuses a log without checkpoints)
        click.echo(
            f"verified: {where}{report.entries} entries, {report.checkpoints} checkpoints;"
            f" latest checkpoint {latest.origin} size {latest.size} root {latest.root.hex()}"
        )
        if report.uncovered:
            click.echo(
                f"{where}{report.uncovered} entries after the latest checkpoint (not yet published)"
            )

    verify_site(site, show, print_failure, origin=origin, note=note, check_records=check_records)


@audit.command()
@_log_dir
@_site_pubkey
@click.option("--request-id", required=True, help="The request whose records to prove.")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Prove against this checkpoint (default: the log's latest).",
)
@_guard
def prove(directory: Path, pubkey: Path, request_id: str, checkpoint_file: Path | None) -> None:
    """Print an inclusion proof (JSON, one line per record) for a request id.

    In a folder of worker logs, the proof is made in the worker log that
    holds the request (or that --checkpoint is of), against its origin: check
    it with that log's key, which a line on standard error names.
    """
    site = Site.open(directory, pubkey)
    note = checkpoint_file.read_text(encoding="utf-8") if checkpoint_file else None
    proved = prove_in_site(site, request_id, note)
    for found in proved:
        for bundle in found.bundles:
            click.echo(dump_line(bundle))
        where = site.prefix(found.member)
        if found.later:
            click.echo(
                f"{where}entries {found.later} of {request_id!r} are not covered by that"
                " checkpoint yet",
                err=True,
            )
        if site.is_set and found.bundles:
            click.echo(f"{where}proved; check with --pubkey {found.pubkey}", err=True)
    if not any(found.bundles for found in proved):
        raise VerificationError(
            f"no record of request {request_id!r} is covered by the checkpoint"
            + (f" of any log in {directory}" if site.is_set else "")
        )


@audit.command(name="verify-proof")
@click.argument("proof_file", type=click.File("r", encoding="utf-8"), default="-")
@_pubkey
@_origin
@click.option("--request-id", default=None, help="Also require the record to be of this request.")
@_guard
def verify_proof(
    proof_file: TextIO, pubkey: Path, origin: str | None, request_id: str | None
) -> None:
    """Check inclusion proofs from 'audit prove' offline (PROOF_FILE or stdin)."""
    key = load_public_key(pubkey)
    lines = split_lines(proof_file.read())
    if not lines:
        raise click.UsageError("no proof given")
    for n, line in enumerate(lines, 1):
        try:
            bundle = json.loads(line)
        except ValueError as exc:
            raise UsageProblem(f"line {n} is not JSON") from exc
        checkpoint, index, record = verify_bundle(bundle, key, origin)
        if request_id is not None and record.get("request_id") != request_id:
            raise VerificationError(
                f"entry {index} is of request {record.get('request_id')!r}, not {request_id!r}",
                first_bad_index=index,
            )
        click.echo(
            f"verified: entry {index} ({record.get('event')} of request"
            f" {record.get('request_id')!r}) is in {checkpoint.origin}"
            f" at size {checkpoint.size}, root {checkpoint.root.hex()}"
        )


@audit.command()
@_log_dir
@click.option("--since", default=None, help="Only records at or after this ISO time (UTC).")
@click.option("--until", default=None, help="Only records before this ISO time (UTC).")
@click.option("--subject", default=None, help="Only this subject.")
@click.option("--client", default=None, help="Only this client.")
@click.option("--model", default=None, help="Only this model.")
@click.option(
    "--site-key",
    "site_keys",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Decrypt content sealed with this site key (repeatable). Without it content stays sealed.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write here instead of standard output.",
)
@_guard
def export(
    directory: Path,
    since: str | None,
    until: str | None,
    subject: str | None,
    client: str | None,
    model: str | None,
    site_keys: tuple[Path, ...],
    output: Path | None,
) -> None:
    """Write records as JSON lines ({"index", "record"}), filtered; does not verify.

    From a folder of worker logs, the logs' records are merged by time and
    each line also says which log it is from ("log": "worker-<i>").
    """
    filters = Filters(
        since=parse_time(since) if since else None,
        until=parse_time(until) if until else None,
        subject=subject,
        client=client,
        model=model,
    )
    keys = dict(load_site_key(path) for path in site_keys)
    warn: Callable[[str], None] = lambda message: click.echo(f"warning: {message}", err=True)  # noqa: E731 (one-line callback)
    count = 0
    sink_cm: AbstractContextManager[TextIO] = (
        output.open("w", encoding="utf-8") if output else nullcontext(sys.stdout)
    )
    with reader_may_leave(), sink_cm as sink:
        for line in export_lines(directory, filters, keys, warn):
            sink.write(line + "\n")
            count += 1
    click.echo(f"exported {count} records", err=True)


@audit.command()
@_log_dir
@click.option("-n", "--lines", "last", default=10, show_default=True, help="Records to show first.")
@click.option(
    "--follow/--no-follow",
    "follow_new",
    default=True,
    show_default=True,
    help="Keep printing new records as they become durable.",
)
@_guard
def tail(directory: Path, last: int, follow_new: bool) -> None:
    """Print the last records, then follow new ones as they become durable (Ctrl-C stops).

    From a folder of worker logs: the last records of them all, by time, then
    the new records of each; each line also says which log it is from.
    """
    rounds = None if follow_new else iter([True])

    def keep_going() -> bool:
        return True if rounds is None else next(rounds, False)

    with suppress(KeyboardInterrupt), reader_may_leave():
        for line in follow(directory, last, keep_going):
            click.echo(line)


@audit.command()
@_log_dir
@_site_pubkey
@_origin
@click.option(
    "--state",
    "state_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The witness's own directory: the last checkpoint it accepted for each log.",
)
@click.option(
    "--cosign-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The witness's Ed25519 key: cosign what is accepted (c2sp.org/tlog-cosignature).",
)
@click.option("--cosign-name", default=None, help="The witness's key name (with --cosign-key).")
@_guard
def witness(
    directory: Path,
    pubkey: Path,
    origin: str | None,
    state_dir: Path,
    cosign_key: Path | None,
    cosign_name: str | None,
) -> None:
    """Accept a copy of a log only if it consistently extends the last accepted one.

    A folder of worker logs is witnessed log by log, each with its own key
    and state: an 'accepted:' line for each log accepted (and cosigned),
    the evidence for each one refused, and then exit 1 if any was.
    """
    if (cosign_key is None) != (cosign_name is None):
        raise UsageProblem("--cosign-key and --cosign-name go together")
    key = load_signing_key(cosign_key) if cosign_key else None  # a bad key fails before work

    def show(_: Member, accepted: Accepted) -> None:
        before = f"size {accepted.previous.size}" if accepted.previous else "nothing (first copy)"
        click.echo(
            f"accepted: {accepted.latest.origin} size {accepted.latest.size}"
            f" root {accepted.latest.root.hex()} (previously {before})"
        )
        if key is not None and cosign_name is not None:
            path = store_cosigned(state_dir, accepted, key, cosign_name)
            click.echo(f"cosigned as {cosign_name}: {path}")

    witness_site(Site.open(directory, pubkey), state_dir, show, print_failure, origin)


@audit.command("verify-cosigned")
@click.argument("note_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_pubkey
@click.option(
    "--witness-pubkey",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The witness's public key (PEM).",
)
@click.option("--witness-name", required=True, help="The witness's key name.")
@_guard
def verify_cosigned(note_file: Path, pubkey: Path, witness_pubkey: Path, witness_name: str) -> None:
    """Check a cosigned checkpoint: the log's signature and the witness's cosignature."""
    note = note_file.read_text(encoding="utf-8")
    # A CheckpointError is a VerificationError: exit 1 with the note as evidence.
    checkpoint = open_checkpoint(note, load_public_key(pubkey))
    when = verify_cosignature(note, load_public_key(witness_pubkey), witness_name)
    click.echo(
        f"verified: {checkpoint.origin} size {checkpoint.size} cosigned by {witness_name} at {when}"
    )
