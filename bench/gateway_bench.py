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
import asyncio
import json
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from sovstack.devstack import components, process, realm
from sovstack.devstack.gatewaysetup import prepare_gateway
from sovstack.devstack.paths import Paths, find_root
from sovstack.devstack.process import Launch
from sovstack.devstack.stack import DEV_REPLICA, DEV_SITE
from sovstack.policy import serve as policy_serve

VARIANTS = {
    "gateway (all on)": [],
    "gateway, auth off": ["--no-auth"],
    "gateway, policy off": ["--no-policy"],
    "gateway, audit off": ["--no-audit"],
    "gateway (all off)": ["--no-auth", "--no-policy", "--no-audit"],
}
CLIENT = "line-monitor"


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    verify: ssl.SSLContext | bool = True
    latencies: dict[int, list[float]] = field(default_factory=dict)
    elapsed: dict[int, float] = field(default_factory=dict)
    done: dict[int, int] = field(default_factory=dict)
    errors: int = 0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _run(target: Target, body: dict[str, Any], concurrency: int, count: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(verify=target.verify, trust_env=False, limits=limits,
                                 timeout=120, headers=target.headers) as client:  # fmt: skip
        # Warm the connections first: the handshake is not what is being measured.
        await asyncio.gather(*(client.post(target.url, json=body) for _ in range(concurrency)))
        remaining = count
        lat = target.latencies.setdefault(concurrency, [])

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                response = await client.post(target.url, json=body)
                lat.append(time.perf_counter() - t0)
                if response.status_code != 200:
                    target.errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        target.elapsed[concurrency] = target.elapsed.get(concurrency, 0.0) + (
            time.perf_counter() - started
        )
        target.done[concurrency] = target.done.get(concurrency, 0) + count


def _start(stack: ExitStack, launch: Launch, log: Path) -> process.Running:
    running = process.start(launch, log)
    stack.callback(process.stop, running.pid)
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
    running: process.Running


def _gateway(stack: ExitStack, paths: Paths, state: Path, name: str, flags: list[str],
             issuer: str, opa_url: str, upstream_url: str) -> Started:  # fmt: skip
    port = process.free_port()
    files = prepare_gateway(state, port, issuer, opa_url, [{
        "id": DEV_REPLICA, "model": components.VLLM_MODEL_NAME, "url": upstream_url,
        "site": DEV_SITE, "jurisdiction": "DE", "hosting": "on-prem"}])  # fmt: skip
    config = yaml.safe_load(files.config.read_text())
    config |= {"rate_limit_per_client": 1e9, "rate_limit_burst": 10**9, "log_level": "warning"}
    files.config.write_text(yaml.safe_dump(config))
    launch = Launch(
        name=name, port=port, ready_url=f"https://127.0.0.1:{port}/readyz", ca_file=files.ca_file,
        argv=[sys.executable, str(Path(__file__).with_name("gateway_variant.py")),
              "--config", str(files.config), *flags],
    )  # fmt: skip
    return Started(f"https://127.0.0.1:{port}", files.ca_file,
                   _start(stack, launch, state / "gateway.log"))  # fmt: skip


def _table(upstream: str, targets: list[Target]) -> list[dict[str, Any]]:
    direct = targets[0]
    direct_p50, direct_p99 = statistics.median(direct.latencies[1]), _pct(direct.latencies[1], 0.99)
    rows = []
    for t in targets:
        one, many = t.latencies[1], t.latencies[64]
        rps = t.done[64] / t.elapsed[64]
        rows.append({
            "upstream": upstream, "target": t.name, "errors": t.errors,
            "p50_ms": 1000 * statistics.median(one), "p99_ms": 1000 * _pct(one, 0.99),
            "added_p50_ms": 1000 * (statistics.median(one) - direct_p50),
            "added_p99_ms": 1000 * (_pct(one, 0.99) - direct_p99),
            "rps_64": rps, "ratio_64": rps / (direct.done[64] / direct.elapsed[64]),
            "p50_64_ms": 1000 * statistics.median(many),
        })  # fmt: skip
    return rows


def _markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"# Gateway benchmark — {meta['when']}", "",
        f"Machine: {meta['machine']}. Rounds: {meta['rounds']} (interleaved). "
        f"Requests per target and round: {meta['counts']}.", "",
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


async def _measure(targets: list[Target], body: dict[str, Any], rounds: int,
                   counts: dict[int, int], echo: Any) -> None:  # fmt: skip
    for round_ in range(rounds):
        for concurrency, count in counts.items():
            # Alternate the order each round so no target always runs first.
            order = targets if round_ % 2 == 0 else list(reversed(targets))
            for target in order:
                await _run(target, body, concurrency, count)
        echo(f"  round {round_ + 1}/{rounds} done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results"))
    args = parser.parse_args()
    root = find_root(Path(__file__).parent)
    work = Path(tempfile.mkdtemp(prefix="sovstack-bench-"))
    paths = Paths(root, work)
    echo = print
    scale = 0.2 if args.quick else 1.0
    plan = {
        "stub (20 ms)": {1: int(60 * scale) or 5, 64: int(640 * scale) or 64},
        "vLLM tiny model": {1: int(20 * scale) or 5, 64: int(128 * scale) or 64},
    }
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)
        clients = realm.demo_clients()
        kc_port, opa_port, vllm_port, stub_port = (process.free_port() for _ in range(4))
        echo("starting Keycloak, OPA (signed bundle), vLLM and the 20 ms stub ...")
        running = [
            _start(stack, components.keycloak(
                paths, kc_port, process.free_port(), work / "keycloak",
                realm.render_realm(paths.realm_template, clients), realm.REALM),
                work / "keycloak.log"),
            _start(stack, policy_serve.dev_opa(paths, opa_port, echo), work / "opa.log"),
            _start(stack, components.vllm(paths, vllm_port), work / "vllm.log"),
            _start(stack, Launch(
                name="stub", port=stub_port, ready_url=f"http://127.0.0.1:{stub_port}/health",
                argv=[sys.executable, str(Path(__file__).with_name("stub_upstream.py")),
                      "--port", str(stub_port)]), work / "stub.log"),
        ]  # fmt: skip
        for r in running:
            process.wait_ready(r)
        issuer = f"http://127.0.0.1:{kc_port}/realms/{realm.REALM}"
        opa_url = f"http://127.0.0.1:{opa_port}"
        upstreams = {"stub (20 ms)": f"http://127.0.0.1:{stub_port}",
                     "vLLM tiny model": f"http://127.0.0.1:{vllm_port}"}  # fmt: skip
        body = {"model": components.VLLM_MODEL_NAME, "max_tokens": 4,
                "messages": [{"role": "user", "content": "Summarise the shift log"}]}  # fmt: skip
        for upstream, upstream_url in upstreams.items():
            echo(f"{upstream}: starting the gateway variants ...")
            gateways = {
                name: _gateway(stack, paths, work / upstream.split()[0] / f"variant-{i}", name,
                               flags, issuer, opa_url, upstream_url)
                for i, (name, flags) in enumerate(VARIANTS.items())
            }  # fmt: skip
            for started in gateways.values():
                process.wait_ready(started.running)
            token = _token(issuer, next(c for c in clients if c.client_id == CLIENT))
            headers = {"Authorization": f"Bearer {token}", "X-Data-Classification": "internal"}
            targets = [Target("direct", f"{upstream_url}/v1/chat/completions")]
            targets += [
                Target(name, f"{g.url}/v1/chat/completions", headers=headers,
                       verify=ssl.create_default_context(cafile=str(g.ca_file)))
                for name, g in gateways.items()
            ]  # fmt: skip
            echo(f"{upstream}: measuring ...")
            asyncio.run(_measure(targets, body, args.rounds, plan[upstream], echo))
            rows += _table(upstream, targets)
    meta = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": "2 cores, loopback",
            "rounds": args.rounds, "counts": plan}  # fmt: skip
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
