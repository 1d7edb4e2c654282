"""``make bench-audit``: durable appends per second and offline verification time.

Not a test: it prints numbers and never fails on them. Appends go through
the real ``AuditLog`` (validation, canonical JSON, group commit, fsync) on
the file system of ``--dir``; the 1,000,000-entry log for the verification
timing is built with the log's own framing and hashing (``entries``,
``rfc6962``, ``checkpoint``) without an fsync per batch, then verified by
the real ``verify_log`` on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog, Decision, build_record, canonical_json
from sovstack.audit.checkpoint import Checkpoint, sign_checkpoint
from sovstack.audit.entries import GENESIS_PREV, encode_entry
from sovstack.audit.recovery import CHECKPOINTS_FILE
from sovstack.audit.rfc6962 import leaf_hash
from sovstack.audit.segments import segment_name
from sovstack.audit.tree import Frontier
from sovstack.audit.verify import verify_log

ORIGIN = "bench.example/audit"


def _record(i: int) -> dict[str, object]:
    return build_record(
        request_id=f"req-{i:09d}", event="completed", subject="alice", client="line-monitor",
        roles=["operator"], site="plant-a", model="tiny-llama", model_digest="sha256:" + "ab" * 32,
        replica="http://127.0.0.1:8100", status=200, prompt_tokens=12, completion_tokens=30,
        latency_us=1500, prompt_sha256="0" * 64, completion_sha256="1" * 64,
        decision=Decision(True, ["operator may use tiny-llama"], {"store_content": False}, "r42"),
    )  # fmt: skip


def bench_appends(base: Path, writers: int, total: int) -> tuple[float, float, float, float]:
    """(appends/s, p50 ms, p99 ms, fsyncs per append) for ``writers`` concurrent tasks."""
    records = [_record(i) for i in range(total)]
    log = AuditLog.open(base / f"appends-{writers}", Ed25519PrivateKey.generate(), ORIGIN)
    latencies: list[float] = []

    async def writer(start: int) -> None:
        for i in range(start, total, writers):
            began = time.perf_counter()
            await log.append(records[i])
            latencies.append(time.perf_counter() - began)

    async def run() -> float:
        began = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        return time.perf_counter() - began

    elapsed = asyncio.run(run())
    batches = log.commits
    log.close()
    latencies.sort()
    return (
        total / elapsed,
        latencies[len(latencies) // 2] * 1e3,
        latencies[int(len(latencies) * 0.99)] * 1e3,
        batches / total,
    )


def build_large_log(directory: Path, key: Ed25519PrivateKey, entries: int) -> None:
    """A valid log of ``entries`` entries and a checkpoint every 100,000 of them."""
    directory.mkdir(parents=True)
    template = canonical_json(_record(0))
    frontier, prev = Frontier(), GENESIS_PREV
    notes = [sign_checkpoint(Checkpoint(ORIGIN, 0, frontier.root()), key)]
    segment_entries = 150_000
    for first in range(0, entries, segment_entries):
        lines = []
        for i in range(first, min(first + segment_entries, entries)):
            body = template.replace(b"req-000000000", b"req-%09d" % i)
            line = encode_entry(i, prev, body)
            prev = leaf_hash(line)
            frontier.append(prev)
            lines.append(line)
            if frontier.size % 100_000 == 0 or frontier.size == entries:
                notes.append(
                    sign_checkpoint(Checkpoint(ORIGIN, frontier.size, frontier.root()), key)
                )
        (directory / segment_name(first)).write_bytes(b"\n".join(lines) + b"\n")
    (directory / CHECKPOINTS_FILE).write_text("".join(n + "\n" for n in notes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write (default: a temp dir)"
    )
    parser.add_argument("--appends", type=int, default=20_000, help="appends per concurrency level")
    parser.add_argument("--verify-entries", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="audit-bench-") as tmp:
        base = Path(tmp)
        print(f"audit bench in {base} ({os.cpu_count()} cores)")
        print(f"{'writers':>8} {'appends/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'fsyncs/append':>14}")
        single = None
        for writers in (1, 8, 64):
            total = args.appends if writers > 1 else max(args.appends // 10, 500)
            rate, p50, p99, per = bench_appends(base, writers, total)
            single = single or rate
            print(f"{writers:>8} {rate:>10.0f} {p50:>8.3f} {p99:>8.3f} {per:>14.3f}"
                  f"   ({rate / single:.1f}x one writer)")  # fmt: skip
        key = Ed25519PrivateKey.generate()
        large = base / "large"
        began = time.perf_counter()
        build_large_log(large, key, args.verify_entries)
        built = time.perf_counter() - began
        os.sync()  # verify a log at rest, not one still being written back
        began, cpu = time.perf_counter(), time.process_time()
        report = verify_log(large, key.public_key())
        elapsed, cpu_used = time.perf_counter() - began, time.process_time() - cpu
        print(f"built {report.entries:,} entries in {built:.1f} s;"
              f" verified them ({report.checkpoints} checkpoints) in {elapsed:.2f} s"
              f" wall, {cpu_used:.2f} s CPU on one core")  # fmt: skip


if __name__ == "__main__":
    main()
