"""A gateway stand-in for the crash tests: appends from many tasks until it is killed.

Run as ``python -m tests.integration.audit.crash_child DIR KEY WRITERS TAG
SEGMENT_BYTES``. It prints ``ready`` once the log is open, then ``ack INDEX
REQUEST_ID`` for every append that returned (that is, was acknowledged as
durable), flushing each line so the parent sees it before any kill.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

from sovstack.audit import AuditLog, Decision, build_record, load_signing_key

ORIGIN = "plant-a.example/crash-test"


async def main(directory: Path, key: Path, writers: int, tag: str, segment_bytes: int) -> None:
    log = AuditLog.open(directory, load_signing_key(key), ORIGIN, 0.05, segment_bytes=segment_bytes)
    print("ready", log.size, flush=True)
    counter = itertools.count()

    async def writer() -> None:
        while True:
            request_id = f"{tag}-{next(counter)}"
            record = build_record(
                request_id=request_id, event="accepted", subject="alice", client="line-monitor",
                roles=["operator"], site="plant-a", model="tiny-llama",
                decision=Decision(True, ["allowed"], {}, "r1"),
            )  # fmt: skip
            index = await log.append(record)
            sys.stdout.write(f"ack {index} {request_id}\n")
            sys.stdout.flush()

    await asyncio.gather(*(writer() for _ in range(writers)))


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(Path(args[0]), Path(args[1]), int(args[2]), args[3], int(args[4])))
