"""``sovstack usage``: who used how much of which model, from the audit log alone.

Exit codes: 0 report written, 1 a log does not verify (the evidence is
printed, no report is written), 2 usage or I/O error.
"""

from __future__ import annotations

from pathlib import Path

import click

from sovstack.cli._errors import friendly, verifying
from sovstack.usage import DIMENSIONS, ReportError, aggregate, parse_by, read_site
from sovstack.usage.formats import FORMATS, render

__all__ = ["usage"]


@click.group()
def usage() -> None:
    """Usage per client, model, site and day, from verified audit logs.

    Exit codes: 0 done, 1 a log does not verify, 2 usage or I/O error.
    """


@usage.command()
@click.argument(
    "directories",
    metavar="AUDIT_DIR...",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "--pubkey",
    "pubkeys",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The log's Ed25519 public key: once for all logs, or once per AUDIT_DIR in order.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(FORMATS)),
    default="json",
    show_default=True,
    help="json (a document), csv (a row per group) or html (one self-contained page).",
)
@click.option(
    "--by",
    default="client,model",
    show_default=True,
    help=f"Group by these, comma-separated: {', '.join(DIMENSIONS)} (day: UTC, accepted).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the report here (default: standard output).",
)
@friendly(ReportError, exit_code=2)
@verifying
def report(
    directories: tuple[Path, ...], pubkeys: tuple[Path, ...], fmt: str, by: str, out: Path | None
) -> None:
    """Report requests, tokens, GPU-seconds and joules from AUDIT_DIR (one or more logs).

    Each log is verified first, as 'sovstack audit verify' does; a log that
    does not verify stops the report (exit 1). Only the records the log's
    latest signed checkpoint covers are counted, and every format names that
    checkpoint (origin, size, root hash). Per group: requests accepted; how
    they ended (completed, aborted, error, or unfinished at the checkpoint);
    prompt and completion tokens, GPU-seconds and joules, each with the
    number of requests whose value is unknown (never counted as zero).

    \b
    Example:
      sovstack usage report LOGDIR --pubkey audit.key.pub \\
          --by client,model,day --format html --out usage.html

    Exit codes: 0 report written, 1 a log does not verify (no report), 2 usage
    or I/O error.
    """
    dimensions = parse_by(by)
    if len(pubkeys) not in (1, len(directories)):
        raise ReportError(
            f"give --pubkey once for all logs or once per AUDIT_DIR ({len(directories)}),"
            f" not {len(pubkeys)} times"
        )
    keys = list(pubkeys) * (len(directories) if len(pubkeys) == 1 else 1)
    logs = [log for d, key in zip(directories, keys, strict=True) for log in read_site(d, key)]
    result = aggregate(logs, dimensions)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    text = render(result, fmt)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
    for log in logs:
        cp = log.checkpoint
        click.echo(
            f"covered: {cp.origin} size {cp.size} root {cp.root.hex()}"
            + (f" ({log.uncovered} later entries not yet checkpointed)" if log.uncovered else ""),
            err=True,
        )
