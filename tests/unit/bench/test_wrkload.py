"""wrk's --latency report, read."""

from __future__ import annotations

import importlib

import pytest

wrkload = importlib.import_module("bench.wrkload")

REPORT = """Running 5s test @ https://127.0.0.1:41234/v1/chat/completions
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   103.21ms   12.02ms 250.10ms   90.12%
    Req/Sec   310.55     40.20   400.00     70.00%
  Latency Distribution
     50%  101.50ms
     75%  108.00ms
     90%  115.30ms
     99%    1.20s
  3105 requests in 5.01s, 1.10MB read
  Socket errors: connect 0, read 1, write 0, timeout 3
  Non-2xx or 3xx responses: 2
Requests/sec:    619.76
Transfer/sec:    224.33KB
"""


def test_the_figures_and_both_kinds_of_error() -> None:
    load = wrkload.parse(REPORT)
    assert load.p50_s == pytest.approx(0.1015)
    assert load.p99_s == pytest.approx(1.2)
    assert load.rps == pytest.approx(619.76)
    assert load.requests == 3105
    assert (load.non_2xx, load.socket_errors, load.errors) == (2, 4, 6)


def test_a_clean_run_has_no_errors() -> None:
    clean = "\n".join(
        line for line in REPORT.splitlines() if "errors" not in line and "Non-2xx" not in line
    )
    assert wrkload.parse(clean).errors == 0


def test_a_report_without_figures_is_refused_naming_them() -> None:
    with pytest.raises(ValueError, match="p50, p99"):
        wrkload.parse("unable to connect to 127.0.0.1:1 Connection refused\n")
