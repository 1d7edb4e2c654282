"""The Grafana dashboard: every query names a metric something really exports, and loads offline.

The gateway's names come from a real ``Metrics()`` registry (so renaming a
metric there fails here); the witness's from the textfile its run script
writes for node_exporter; ``up`` is Prometheus's own series per target.
The replicas' (:data:`VLLM_METRICS`: vLLM runs with ``--disable-log-stats``,
so only its HTTP server's) are checked against a real replica's /metrics by
tests/integration/test_dashboard_vllm.py.
Each query is also parsed by ``promtool`` (as a recording rule), so a
query that is not PromQL fails too.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sovstack.gateway.metrics import STAGES, Metrics
from tests.unit.prometheus.test_rules import _promtool

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "monitoring" / "grafana" / "sovstack.json"
WITNESS_SCRIPT = ROOT / "roles" / "audit_witness" / "templates" / "sovstack-witness-run.j2"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
VLLM_METRICS = frozenset({"http_requests_total", "http_request_duration_seconds_bucket"})
# Grafana's own panel types: the dashboard needs no plugin.
BUILT_IN_PANELS = {"timeseries", "stat", "bargauge", "gauge", "table", "text", "row", "barchart"}
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
             "and", "or", "unless", "inf", "nan"}  # fmt: skip


def gateway_metrics() -> set[str]:
    """The series names a gateway's /metrics can show."""
    names = set()
    for family in Metrics().registry.collect():
        names |= {family.name + suffix for suffix in _SUFFIXES[family.type]}
    return names


def witness_metrics() -> set[str]:
    return set(re.findall(r"# TYPE (\w+) gauge", WITNESS_SCRIPT.read_text()))


def concrete(expr: str) -> str:
    """A Grafana query with its variables set, as Prometheus would receive it."""
    return (
        expr.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$instance", ".*")
    )


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", concrete(expr))  # label values
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)  # matchers and ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    found = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        follows = text[match.end() :].lstrip()[:1]
        if follows != "(" and match.group() not in _KEYWORDS:
            found.add(match.group())
    return found


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, expr)`` of every query: panel targets and query variables."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            text = variable["definition"]
            yield (
                f"variable {variable['name']}",
                re.sub(r"^label_values\((.*),[^,]*\)$", r"\1", text),
            )


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_the_name_reader_finds_metrics_and_only_metrics() -> None:
    expr = 'sum by (le, stage) (rate(a_bucket{x="y", stage=~"b|c"}[5m])) / on(i) b_total + time()'
    assert metric_names(expr) == {"a_bucket", "b_total"}
    assert metric_names("histogram_quantile(0.95, x_bucket) > bool 1 unless up") == {
        "x_bucket",
        "up",
    }


def test_every_query_names_only_metrics_that_are_exported(dashboard: dict[str, Any]) -> None:
    exported = gateway_metrics() | witness_metrics() | {"up"} | VLLM_METRICS
    unknown = {
        f"{where}: {name}"
        for where, expr in queries(dashboard)
        for name in metric_names(expr)
        if name not in exported
    }
    assert unknown == set()


def test_the_dashboard_shows_what_the_issue_asks_for(dashboard: dict[str, Any]) -> None:
    used = {name for _, expr in queries(dashboard) for name in metric_names(expr)}
    assert {
        "sovstack_requests_total", "sovstack_stage_seconds_bucket", "sovstack_client_tokens_total",
        "sovstack_energy_joules_total", "sovstack_gpu_seconds_total", "sovstack_refusals_total",
        "sovstack_audit_writable", "sovstack_witness_log_consistent",
    } <= used  # fmt: skip
    assert set(STAGES) == {"authenticate", "authorize", "audit", "upstream_first_byte", "total"}


def test_every_query_is_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:query:{n}", "expr": concrete(expr)}
        for n, (_, expr) in enumerate(queries(dashboard))
    ]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_loads_offline_from_any_prometheus(dashboard: dict[str, Any]) -> None:
    text = DASHBOARD.read_text()
    assert not re.search(r"https?://", text)  # no links out, nothing fetched
    assert dashboard["links"] == [] and dashboard["uid"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert len(variables) == len(dashboard["templating"]["list"])
    for panel in dashboard["panels"]:
        assert panel["type"] in BUILT_IN_PANELS, panel["title"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert panel["targets"] and len(refs) == len(set(refs)), panel["title"]
        assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])}  # fmt: skip
        assert not mine & cells, panel["title"]
        cells |= mine
