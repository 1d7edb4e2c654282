"""The dashboard's replica panels name metrics a real vLLM replica exports.

The replica is the one the integration fixtures start (the pinned vLLM with
the flags ``make dev`` and the vllm role use, ``--disable-log-stats``
included, which leaves only the HTTP server's metrics); its /metrics is what
the prometheus role scrapes as job ``vllm``. The gateway's and the witness's
names are checked by tests/unit/monitoring/test_dashboard.py.
"""

from __future__ import annotations

import re

import httpx

from tests.integration.conftest import Served
from tests.unit.monitoring.test_dashboard import VLLM_METRICS

_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def test_the_replica_metrics_the_dashboard_uses_are_exported(vllm_server: Served) -> None:
    text = httpx.get(f"{vllm_server.url}/metrics", trust_env=False, timeout=30).text
    exported = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\w+)$", text, re.M):
        base = name.removesuffix("_total") if kind == "counter" else name
        exported |= {base + suffix for suffix in _SUFFIXES.get(kind, ("",))}
    assert VLLM_METRICS - exported == set(), sorted(exported)
