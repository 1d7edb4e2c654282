"""Benchmark: what the gateway adds, measured side by side against calling the upstream directly.

One run starts real Keycloak, OPA (the signed policy bundle) and vLLM (CPU,
the tiny model), plus a minimal OpenAI-compatible stub that answers after
about 20 ms, so that the gateway's own cost is visible. In front of each
upstream it starts the gateway with everything on, and with authentication,
policy or audit switched off (bench/gateway_variant.py), and then, in
interleaved rounds so that machine drift hits every target alike, measures:

- at 1 request in flight: latency p50/p99, and what the gateway adds to direct;
- at 64 in flight: throughput, and its ratio to direct.

It prints a table and writes it (Markdown and JSON) to bench/results/.
Targets from the gateway issue: with everything on, at most 1.5 ms added at
p50 and 3 ms at p99 at one in flight; at least 0.9 of direct throughput at 64.
Loopback only. Times are this machine's, not a promise: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from sovstack.components import launches
from sovstack.core import services
from sovstack.core.paths import Paths, find_root
from sovstack.core.services import Launch
from sovstack.devstack import realm
from sovstack.devstack.gatewaysetup import prepare_gateway
from sovstack.devstack.stack import DEV_REPLICA, DEV_SITE
from sovstack.policy import serve as policy_serve

# name -> (gateway_variant.py flags, settings over the defaults)
VARIANTS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "gateway (all on)": ([], {}),
    # The same, with the optional decision cache (keyed on the whole input) on for 1 s.
    "gateway (all on, decision cache 1 s)": ([], {"decision_cache_ttl_s": 1.0}),
    "gateway, auth off": (["--no-auth"], {}),
    "gateway, policy off": (["--no-policy"], {}),
    "gateway, audit off": (["--no-audit"], {}),
    "gateway (all off)": (["--no-auth", "--no-policy", "--no-audit"], {}),
}
CLIENT = "line-monitor"
# The load comes from one client: no rate or in-flight limit of its own may cut it short
# (the in-flight one is the global default, 256; a baseline without it drops it).
_BENCH_SETTINGS: dict[str, Any] = {
    "rate_limit_per_client": 1e9,
    "rate_limit_burst": 10**9,
    "max_in_flight_per_client": 256,
    "log_level": "warning",
}


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    # concurrency -> one (p50 s, p99 s, requests/s, non-2xx) per round
    runs: dict[int, list[tuple[float, float, float, int]]] = field(default_factory=dict)


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def _wrk(target: Target, body: dict[str, Any], concurrency: int, seconds: int, work: Path) -> None:
    """One wrk run against ``target``: latency percentiles and throughput, from wrk itself."""
    script = work / f"wrk-{abs(hash(target.name))}.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(body))}",
             'wrk.headers["Content-Type"] = "application/json"']  # fmt: skip
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in target.headers.items()]
    script.write_text("\n".join(lines) + "\n")
    threads = 1 if concurrency == 1 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", str(script),
         target.url],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    found = {
        key: re.search(pattern, out, re.M)
        for key, pattern in (("p50", r"^\s+50%\s+(\S+)\s*$"), ("p99", r"^\s+99%\s+(\S+)\s*$"),
                             ("rps", r"^Requests/sec:\s+(\S+)\s*$"))
    }  # fmt: skip
    if not all(found.values()):
        raise RuntimeError(f"wrk against {target.name} gave no figures:\n{out}")
    p50 = _seconds(found["p50"].group(1))  # type: ignore[union-attr]
    p99 = _seconds(found["p99"].group(1))  # type: ignore[union-attr]
    rps = float(found["rps"].group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    target.runs.setdefault(concurrency, []).append((p50, p99, rps, int(bad.group(1)) if bad else 0))


def _start(stack: ExitStack, launch: Launch, log: Path) -> services.Running:
    running = services.start(launch, log)
    stack.callback(services.stop, running.pid)
    return running


def _token(issuer: str, client: realm.DemoClient) -> str:
    response = httpx.post(
        f"{issuer}/protocol/openid-connect/token", trust_env=False,
        data={"grant_type": "client_credentials", "client_id": client.client_id,
              "client_secret": client.client_secret},
    )  # fmt: skip
    response.raise_for_status()
    return str(response.json()["access_token"])


@dataclass(frozen=True)
class Started:
    url: str
    ca_file: Path
    running: services.Running


def _gateway(stack: ExitStack, state: Path, name: str, variant: tuple[list[str], dict[str, Any]],
             issuer: str, opa_url: str, upstream_url: str) -> Started:  # fmt: skip
    flags, overrides = variant
    port = services.free_port()
    files = prepare_gateway(state, port, issuer, opa_url, [{
        "id": DEV_REPLICA, "model": launches.VLLM_MODEL_NAME, "url": upstream_url,
        "site": DEV_SITE, "jurisdiction": "DE", "hosting": "on-prem"}])  # fmt: skip
    config = yaml.safe_load(files.config.read_text())
    config |= _BENCH_SETTINGS | overrides
    files.config.write_text(yaml.safe_dump(config))
    launch = Launch(
        name=name, port=port, ready_url=f"https://127.0.0.1:{port}/readyz", ca_file=files.ca_file,
        argv=[sys.executable, str(Path(__file__).with_name("gateway_variant.py")),
              "--config", str(files.config), *flags],
    )  # fmt: skip
    return Started(f"https://127.0.0.1:{port}", files.ca_file,
                   _start(stack, launch, state / "gateway.log"))  # fmt: skip


def _baseline_tree(root: Path, ref: str, work: Path) -> Path:
    """The gateway's code as it was at ``ref`` (``git archive``), to measure beside today's."""
    tree = work / "baseline"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar", ref, "services"],
        capture_output=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True, timeout=120)
    return tree


def _baseline(stack: ExitStack, state: Path, tree: Path, issuer: str, opa_url: str,
              upstream_url: str) -> Started:  # fmt: skip
    """The gateway (all on) from ``tree``, with only the settings that code knows."""
    env = {"PYTHONPATH": str(tree / "services")}
    known = set(json.loads(subprocess.run(
        [sys.executable, "-c", "import json; from sovstack.gateway.config import Settings; "
         "print(json.dumps(sorted(Settings.model_fields)))"],
        capture_output=True, text=True, check=True, timeout=60, env={**os.environ, **env},
    ).stdout))  # fmt: skip
    port = services.free_port()
    files = prepare_gateway(state, port, issuer, opa_url, [{
        "id": DEV_REPLICA, "model": launches.VLLM_MODEL_NAME, "url": upstream_url,
        "site": DEV_SITE, "jurisdiction": "DE", "hosting": "on-prem"}])  # fmt: skip
    config = yaml.safe_load(files.config.read_text()) | _BENCH_SETTINGS
    files.config.write_text(yaml.safe_dump({k: v for k, v in config.items() if k in known}))
    launch = Launch(
        name="baseline", port=port, ready_url=f"https://127.0.0.1:{port}/readyz",
        ca_file=files.ca_file, env=env,
        argv=[sys.executable, "-m", "sovstack.cli", "gateway", "--config", str(files.config)],
    )  # fmt: skip
    return Started(f"https://127.0.0.1:{port}", files.ca_file,
                   _start(stack, launch, state / "gateway.log"))  # fmt: skip


def _table(upstream: str, targets: list[Target]) -> list[dict[str, Any]]:
    def med(t: Target, c: int, k: int) -> float:
        return statistics.median(run[k] for run in t.runs[c])

    direct = targets[0]
    rows = []
    for t in targets:
        rows.append({
            "upstream": upstream, "target": t.name,
            "errors": sum(run[3] for c in t.runs for run in t.runs[c]),
            "p50_ms": 1000 * med(t, 1, 0), "p99_ms": 1000 * med(t, 1, 1),
            "added_p50_ms": 1000 * (med(t, 1, 0) - med(direct, 1, 0)),
            "added_p99_ms": 1000 * (med(t, 1, 1) - med(direct, 1, 1)),
            "rps_64": med(t, 64, 2), "ratio_64": med(t, 64, 2) / med(direct, 64, 2),
            "p50_64_ms": 1000 * med(t, 64, 0),
        })  # fmt: skip
    return rows


def _markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"# Gateway benchmark — {meta['when']}", "",
        f"Machine: {meta['machine']}. Load: {meta['load']}, {meta['seconds']} s per run, "
        f"{meta['rounds']} interleaved rounds; each figure is the median over rounds.", "",
        "| upstream | target | p50 ms (1) | p99 ms (1) | added p50 | added p99 "
        "| rps (64) | vs direct (64) | p50 ms (64) | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['upstream']} | {r['target']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['added_p50_ms']:+.2f} | {r['added_p99_ms']:+.2f} | {r['rps_64']:.0f} "
            f"| {r['ratio_64']:.2f} | {r['p50_64_ms']:.1f} | {r['errors']} |"
        )
    lines += ["", "Targets (gateway, all on): added p50 <= 1.5 ms, added p99 <= 3 ms at 1 in "
              "flight; >= 0.9 of direct throughput at 64 in flight.", ""]  # fmt: skip
    return "\n".join(lines)


def _measure(targets: list[Target], body: dict[str, Any], rounds: int, seconds: int,
             work: Path, echo: Any) -> None:  # fmt: skip
    for round_ in range(rounds):
        # Alternate the order each round so that no target always runs first.
        order = targets if round_ % 2 == 0 else list(reversed(targets))
        for target in order:
            for concurrency in (1, 64):
                _wrk(target, body, concurrency, seconds, work)
        echo(f"  round {round_ + 1}/{rounds} done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4, help="length of each wrk run")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results"))
    parser.add_argument(
        "--upstream", choices=("both", "stub", "vllm"), default="both",
        help="which upstream to measure against (default: both; vLLM is started only if needed)",
    )  # fmt: skip
    parser.add_argument(
        "--variant", action="append", choices=sorted(VARIANTS), dest="variants",
        help="measure only these gateway variants (repeatable; default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", metavar="REF",
        help="also measure the gateway (all on) as it was at this git ref, side by side "
             "(e.g. main before a change): the row 'gateway (all on) @REF'",
    )  # fmt: skip
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk (make bench-gateway installs it)")
    # SIGTERM unwinds like Ctrl-C, so every process started here is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = find_root(Path(__file__).parent)
    work = Path(tempfile.mkdtemp(prefix="sovstack-bench-"))
    paths = Paths(root, work)
    echo = print
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)
        clients = realm.demo_clients()
        baseline_tree = _baseline_tree(root, args.baseline, work) if args.baseline else work
        kc_port, opa_port, vllm_port, stub_port = (services.free_port() for _ in range(4))
        echo(f"starting Keycloak, OPA (signed bundle) and the upstreams ({args.upstream}) ...")
        want_vllm = args.upstream in ("both", "vllm")
        want_stub = args.upstream in ("both", "stub")
        running = [
            _start(stack, launches.keycloak(
                paths, kc_port, services.free_port(), work / "keycloak",
                realm.render_realm(paths.realm_template, clients), realm.REALM),
                work / "keycloak.log"),
            _start(stack, policy_serve.dev_opa(paths, opa_port, echo), work / "opa.log"),
        ]  # fmt: skip
        if want_vllm:
            running.append(_start(stack, launches.vllm(paths, vllm_port), work / "vllm.log"))
        if want_stub:
            running.append(_start(stack, Launch(
                name="stub", port=stub_port, ready_url=f"http://127.0.0.1:{stub_port}/health",
                argv=[sys.executable, str(Path(__file__).with_name("stub_upstream.py")),
                      "--port", str(stub_port)]), work / "stub.log"))  # fmt: skip
        for r in running:
            services.wait_ready(r)
        issuer = f"http://127.0.0.1:{kc_port}/realms/{realm.REALM}"
        opa_url = f"http://127.0.0.1:{opa_port}"
        upstreams = {}
        if want_stub:
            upstreams["stub (20 ms)"] = f"http://127.0.0.1:{stub_port}"
        if want_vllm:
            upstreams["vLLM tiny model"] = f"http://127.0.0.1:{vllm_port}"
        variants = {n: f for n, f in VARIANTS.items() if not args.variants or n in args.variants}
        body = {"model": launches.VLLM_MODEL_NAME, "max_tokens": 4,
                "messages": [{"role": "user", "content": "Summarise the shift log"}]}  # fmt: skip
        for upstream, upstream_url in upstreams.items():
            echo(f"{upstream}: starting the gateway variants ...")
            gateways = {
                name: _gateway(stack, work / upstream.split()[0] / f"variant-{i}", name,
                               variant, issuer, opa_url, upstream_url)
                for i, (name, variant) in enumerate(variants.items())
            }  # fmt: skip
            if args.baseline:
                gateways[f"gateway (all on) @{args.baseline}"] = _baseline(
                    stack,
                    work / upstream.split()[0] / "baseline",
                    baseline_tree,
                    issuer,
                    opa_url,
                    upstream_url,
                )
            for started in gateways.values():
                services.wait_ready(started.running)
            token = _token(issuer, next(c for c in clients if c.client_id == CLIENT))
            headers = {"Authorization": f"Bearer {token}", "X-Data-Classification": "internal"}
            targets = [Target("direct", f"{upstream_url}/v1/chat/completions")]
            targets += [
                Target(name, f"{g.url}/v1/chat/completions", headers=headers)
                for name, g in gateways.items()
            ]
            echo(f"{upstream}: measuring ...")
            _measure(targets, body, args.rounds, args.seconds, work, echo)
            rows += _table(upstream, targets)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{os.cpu_count()} cores, loopback",
        "rounds": args.rounds,
        "seconds": args.seconds,
        "load": "wrk 4 (1 and 64 connections)",
    }
    text = _markdown(rows, meta)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"gateway-{stamp}.md").write_text(text)
    (args.out / f"gateway-{stamp}.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
