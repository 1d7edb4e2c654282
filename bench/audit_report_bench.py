"""``make bench-audit-report``: the evidence pack over a log of 100,000 records.

Not a test: it prints numbers and never fails on them. The log is built with
the log's own framing, hashing and signed checkpoints (each request an
``accepted`` and a ``completed`` record, a checkpoint every 10,000 entries,
a witness that accepted the log at half its size), then, side by side in one
run: ``audit verify`` alone (``verify_log``), and the whole report over the
shipped catalogue (``opa test``, the catalogue's pytest checks, every log
check with its inclusion and consistency proofs, HTML, OSCAL, DSSE). The
issue's target is the report in at most 60 s on the project's machine.

The records are those of the report's tests (``tests/integration/report``):
run it from the project root with ``PYTHONPATH=.``, as ``make bench-audit-report`` does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import canonical_json, generate_signing_key
from sovstack.audit.checkpoint import Checkpoint, sign_checkpoint
from sovstack.audit.entries import GENESIS_PREV, encode_entry
from sovstack.audit.keys import load_public_key, load_signing_key
from sovstack.audit.recovery import CHECKPOINTS_FILE
from sovstack.audit.rfc6962 import leaf_hash
from sovstack.audit.segments import segment_name
from sovstack.audit.tree import Frontier
from sovstack.audit.verify import verify_log
from sovstack.audit.witness import witness
from sovstack.core.paths import Paths
from sovstack.report import Clock, Inputs, LogInput, build_report
from tests.integration.report.conftest import request_records

ROOT = Path(__file__).resolve().parents[1]
ORIGIN = "bench.example/gateway-1"
START = datetime(2026, 1, 5, tzinfo=UTC)


def build_paired_log(directory: Path, key: Ed25519PrivateKey, records: int) -> list[str]:
    """``records`` entries (accepted/completed pairs); return every signed checkpoint note."""
    directory.mkdir(parents=True)
    # Request 0 of the report tests: an accepted and a completed record, as the gateway writes.
    accepted, completed = (canonical_json(r) for r in request_records(0, START))
    stamp = START.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
    frontier, prev = Frontier(), GENESIS_PREV
    notes = [sign_checkpoint(Checkpoint(ORIGIN, 0, frontier.root()), key)]
    lines = []
    for i in range(records):
        request = b"req-%09d" % (i // 2)
        when = (START + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
        body = (accepted if i % 2 == 0 else completed).replace(b"req-00000", request)
        line = encode_entry(i, prev, body.replace(stamp, when, 1))
        prev = leaf_hash(line)
        frontier.append(prev)
        lines.append(line)
        if frontier.size % 10_000 == 0 or frontier.size == records:
            notes.append(sign_checkpoint(Checkpoint(ORIGIN, frontier.size, frontier.root()), key))
    (directory / segment_name(0)).write_bytes(b"\n".join(lines) + b"\n")
    (directory / CHECKPOINTS_FILE).write_text("".join(n + "\n" for n in notes))
    return notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to work (default: temp)")
    args = parser.parse_args()
    paths = Paths(ROOT)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="audit-report-bench-") as tmp:
        base = Path(tmp)
        for name in ("audit.key", "report.key"):
            generate_signing_key(base / name)
        key = load_signing_key(base / "audit.key")
        half = base / "half"
        build_paired_log(half, key, args.records // 2)
        witness(half, load_public_key(base / "audit.key.pub"), base / "witness")
        shutil.rmtree(half)
        log = base / "log"
        began = time.perf_counter()
        build_paired_log(log, key, args.records)
        built = time.perf_counter() - began
        os.sync()
        began = time.perf_counter()
        verified = verify_log(log, key.public_key())
        verify_s = time.perf_counter() - began
        inputs = Inputs(
            policies=paths.policies,
            project_root=ROOT,
            opa=paths.opa_bin,
            logs=(LogInput(log, base / "audit.key.pub"),),
            witness_state=base / "witness",
        )
        began = time.perf_counter()
        outcome = build_report(inputs, base / "pack", base / "report.key", Clock())
        report_s = time.perf_counter() - began
        log_checks = [c for f in outcome.findings for c in f.checks if c.check.startswith("audit")]
        print(
            f"log of {verified.entries:,} records built in {built:.1f} s ({os.cpu_count()} cores)"
        )
        print(f"audit verify alone:        {verify_s:6.2f} s")
        print(
            f"the whole report:          {report_s:6.2f} s"
            f"  ({report_s / verify_s:.1f}x audit verify; target <= 60 s)"
        )
        print(f"  of which the log checks: {max(c.duration_s for c in log_checks):6.2f} s")
        print(f"report exit code {outcome.exit_code}: {outcome.figure.formula()}")
        for finding in outcome.findings:  # no bundle, no hosts here: those controls say so
            if finding.state not in ("satisfied", "not-assessed"):
                print(f"  {finding.state}: {finding.key}: {finding.reason[:120]}")
    sys.exit(0)


if __name__ == "__main__":
    main()
