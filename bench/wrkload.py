"""The load: one wrk run at a given number of connections, and its figures.

wrk keeps ``connections`` requests in flight (one per connection) for
``seconds`` and reports its own latency percentiles and rate; each run gets a
Lua script with the request's method, body and headers. Errors are answers
other than 2xx/3xx, and socket errors (an answer later than ``TIMEOUT_S``
is one).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Load", "parse", "run"]

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
# wrk's own default (2 s) would count a slow answer of a saturated target as an error.
TIMEOUT_S = 10


@dataclass(frozen=True)
class Load:
    p50_s: float
    p99_s: float
    rps: float
    requests: int
    non_2xx: int  # answers other than 2xx/3xx
    socket_errors: int  # connect, read, write errors and timeouts (TIMEOUT_S)

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def _seconds(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def parse(out: str) -> Load:
    """The figures of wrk's ``--latency`` report; ValueError naming what is missing."""
    patterns = {
        "p50": r"^\s+50%\s+(\S+)\s*$",
        "p99": r"^\s+99%\s+(\S+)\s*$",
        "rps": r"^Requests/sec:\s+(\S+)\s*$",
        "requests": r"^\s*(\d+) requests in ",
    }
    found = {key: re.search(pattern, out, re.M) for key, pattern in patterns.items()}
    missing = [key for key, match in found.items() if match is None]
    if missing:
        raise ValueError(f"wrk gave no {', '.join(missing)}:\n{out}")
    groups = {key: match.group(1) for key, match in found.items() if match is not None}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return Load(
        _seconds(groups["p50"]),
        _seconds(groups["p99"]),
        float(groups["rps"]),
        int(groups["requests"]),
        int(bad.group(1)) if bad else 0,
        sum(map(int, sockets.groups())) if sockets else 0,
    )


def run(url: str, headers: dict[str, str], body: dict[str, Any], connections: int, seconds: int,
        script: Path) -> Load:  # fmt: skip
    """wrk against ``url`` for ``seconds`` with ``connections`` in flight."""
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(json.dumps(body))}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    threads = 1 if connections == 1 else 2
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={TIMEOUT_S}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60)
    return parse(done.stdout)
