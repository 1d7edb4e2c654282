"""Benchmark: the gateway's variants, N workers, a git ref and LiteLLM, side by side.

Run from the repository root: ``python -m bench.gateway_bench`` (make
bench-gateway). It first re-runs itself in a network namespace of its own
with only loopback (bench/netns.py), and refuses to go on otherwise. There it
starts Keycloak, OPA (the signed bundle) and a stub upstream that answers
after 20 ms, and in front of that one stub: the gateway with everything on,
with the decision cache, with every token's signature checked, with
authentication, policy or audit off, all off (bench/gateway_variant.py); the
shipped gateway with ``workers: N`` (skipped, saying so, where the settings
refuse the key); the gateway as it was at ``--baseline REF``; and LiteLLM's
proxy (bench/litellm_peer.py). Direct calls to the stub are the reference.

Each phase is one target at 1 or 64 connections (wrk) for ``--seconds``;
after it, the bench flushes the disk writeback it left (``sync``) and waits
until every target's processes and OPA have been quiet for a second, and the
order rotates each round (bench/schedule.py). Per phase it reads the
target's process-tree CPU from /proc (and OPA's where the target asks OPA)
before it and after that quiet, and the gateway's stage histograms and
refusals from /metrics. Results: a table and the issue's targets (met / not met,
never asserted), in bench/results/gateway-<time>.md and .json.
Times are this machine's, not a promise: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sovstack.components import launches
from sovstack.core import services
from sovstack.core.paths import Paths, find_root

from . import components, litellm_peer, netns, proctree, schedule, stages, wrkload
from .benchreport import DIRECT, LITELLM, Phase, Result, markdown, rows, workers_name

# name -> (gateway_variant.py flags, settings over the bench's)
VARIANTS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "gateway (all on)": ([], {}),
    # The same, with the optional decision cache (keyed on the whole input) on for 1 s.
    "gateway (all on, decision cache 1 s)": ([], {"decision_cache_ttl_s": 1.0}),
    # The shipped verifier remembers a verified token until it expires: here it forgets.
    "gateway, every token verified": (["--verify-every-token"], {}),
    "gateway, auth off": (["--no-auth"], {}),
    "gateway, policy off": (["--no-policy"], {}),
    "gateway, audit off": (["--no-audit"], {}),
    "gateway (all off)": (["--no-auth", "--no-policy", "--no-audit"], {}),
}
BODY = {
    "model": launches.VLLM_MODEL_NAME,
    "max_tokens": 4,
    "messages": [{"role": "user", "content": "Summarise the shift log"}],
}
TOKEN_REFRESH_S = 120.0  # the demo realm's tokens live 300 s
WARM_UP_S = 2


@dataclass
class Target:
    result: Result
    url: str
    roots: tuple[int, ...]  # the process trees whose CPU is the target's
    uses_opa: bool = False
    bearer: str | None = None  # a fixed bearer (LiteLLM's key); None: the realm's token
    needs_token: bool = False
    metrics_url: str | None = None  # the gateway's /metrics, for the stages
    ca_file: Path | None = None
    script: Path = field(default_factory=Path)


class Tokens:
    """The realm's token for the bench's client, fetched again before it can expire."""

    def __init__(self, core: components.Core) -> None:
        self.core = core
        self.value = ""
        self.at = float("-inf")

    def fresh(self) -> str:
        if time.monotonic() - self.at > TOKEN_REFRESH_S:
            self.value, self.at = components.token(self.core), time.monotonic()
        return self.value


def _headers(target: Target, tokens: Tokens) -> dict[str, str]:
    if target.needs_token:
        return {"Authorization": f"Bearer {tokens.fresh()}", "X-Data-Classification": "internal"}
    return {"Authorization": f"Bearer {target.bearer}"} if target.bearer else {}


def _metrics(client: httpx.Client, target: Target) -> str:
    if target.metrics_url is None:
        return ""
    response = client.get(target.metrics_url)
    return response.text if response.status_code == 200 else ""


def _spent(roots: tuple[int, ...], before: dict[int, Any], after: dict[int, Any]) -> float:
    return proctree.cpu_seconds(roots, stats=after) - proctree.cpu_seconds(roots, stats=before)


def _measure(
    targets: dict[str, Target], steps: list[schedule.Step], seconds: int, settle: bool,
    opa_pid: int, tokens: Tokens,
) -> None:  # fmt: skip
    """Each step, in order: quiet, /metrics and /proc read, wrk, quiet, read again."""
    groups = [t.roots for t in targets.values()] + [(opa_pid,)]
    previous = ""
    for i, (round_, connections, name) in enumerate(steps):
        t = targets[name]
        waited = proctree.wait_quiet(groups)[0] if settle else 0.0
        headers = _headers(t, tokens)
        verify = str(t.ca_file) if t.ca_file else True
        with httpx.Client(verify=verify, trust_env=False, timeout=10.0) as client:
            text_before = _metrics(client, t)
            before = proctree.read_stats()
            load = wrkload.run(t.url, headers, BODY, connections, seconds, t.script)
            # The work a phase leaves behind is its own, and must not land in the next
            # phase: the disk writeback (audit segments, OPA's decision log), then the CPU.
            synced = time.monotonic()
            if settle:
                os.sync()
            synced = time.monotonic() - synced
            settled = proctree.wait_quiet(groups)[0] if settle else 0.0
            after = proctree.read_stats()
            text_after = _metrics(client, t)
        observed = stages.diff(stages.histograms(text_before), stages.histograms(text_after))
        opa_s = _spent((opa_pid,), before, after) if t.uses_opa else 0.0
        phase = Phase(
            round_, connections, load, _spent(t.roots, before, after), opa_s, observed,
            waited, settled, previous, synced, stages.refusals(text_before, text_after),
        )  # fmt: skip
        t.result.phases.append(phase)
        previous = name
        print(
            f"  [{i + 1}/{len(steps)}] round {round_ + 1}, {connections:>2} in flight, {name}: "
            f"{load.rps:.0f}/s, p50 {1000 * load.p50_s:.2f} ms, {load.errors} errors; "
            f"sync {synced:.2f} s, quiet again after {settled:.1f} s"
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--rounds", type=int, default=3)
    add("--seconds", type=int, default=5, help="length of each phase (wrk)")
    add("--out", type=Path, default=Path(__file__).with_name("results"))
    add(
        "--variant", action="append", choices=sorted(VARIANTS), dest="variants",
        help="measure only these gateway variants (repeatable; default: all)",
    )  # fmt: skip
    add(
        "--workers", type=int, default=os.cpu_count() or 1, metavar="N",
        help="the row 'all on, N workers' (default: the cores; 0: leave it out)",
    )  # fmt: skip
    add("--baseline", metavar="REF", help="also measure the gateway (all on) at this git ref")
    add("--no-litellm", action="store_true", help="leave LiteLLM's proxy out")
    add(
        "--old-schedule", action="store_true",
        help="the order used before issue 16 (each target at 1 then 64, no waiting for quiet)",
    )  # fmt: skip
    return parser


def _gateways(
    stack: ExitStack, args: argparse.Namespace, root: Path, work: Path, core: components.Core,
    stub_url: str,
) -> tuple[dict[str, tuple[components.Gateway, bool]], list[Result], list[str]]:  # fmt: skip
    """The gateway targets started (name -> gateway, asks OPA); rows skipped; notes."""
    gateways: dict[str, tuple[components.Gateway, bool]] = {}
    skipped: list[Result] = []
    notes: list[str] = []
    chosen = {n: v for n, v in VARIANTS.items() if not args.variants or n in args.variants}
    for i, (name, (flags, overrides)) in enumerate(chosen.items()):
        gw = components.gateway(
            stack, work / f"variant-{i}", name, core, stub_url, overrides=overrides,
            variant_flags=flags,
        )  # fmt: skip
        gateways[name] = (gw, "--no-policy" not in flags)
    if args.workers:
        name = workers_name(args.workers)
        # The settings forbid unknown keys: a gateway without the setting would refuse to start.
        if "workers" in components.known_settings():
            overrides = {"workers": args.workers}
            gw = components.gateway(
                stack, work / "workers", name, core, stub_url, overrides=overrides
            )
            gateways[name] = (gw, True)
        else:
            skipped.append(Result(name, skipped="workers: not supported by this gateway"))
    if args.baseline:
        tree = components.baseline_tree(stack, root, args.baseline, work / "baseline-tree")
        name = f"gateway (all on) @{args.baseline}"
        gw = components.gateway(stack, work / "baseline", name, core, stub_url, tree=tree)
        gateways[name] = (gw, True)
    for gw, _ in gateways.values():
        services.wait_ready(gw.running)
    return gateways, skipped, notes


def _meta(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    cores = os.cpu_count() or 1
    return {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": shlex.join(["python", "-m", "bench.gateway_bench", *sys.argv[1:]]),
        "commit": commit,
        "cores": cores,
        "machine": f"{cores} cores, loopback only (a network namespace of its own)",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "rounds": args.rounds,
        "seconds": args.seconds,
        "schedule": (
            "the old order, no waiting for quiet"
            if args.old_schedule
            else "order rotating each round, each phase after a quiet second"
        ),
        "upstream": "the 20 ms stub",
        "load": " ".join((wrk.stdout or wrk.stderr).split()[:2]),
    }


def _run(
    args: argparse.Namespace, root: Path, work: Path, litellm: Path | None
) -> tuple[list[Result], list[str]]:
    """Start everything, measure every phase, stop everything: each target's result, notes."""
    with ExitStack() as stack:
        paths = Paths(root, work)
        print("starting Keycloak, OPA (signed bundle), the stub and LiteLLM ...")
        core = components.start_core(stack, paths, work, print)
        stub, stub_url = components.stub(stack, work)
        started = [core.keycloak, core.opa, stub]
        if litellm is not None:
            port = services.free_port()
            launch, master_key = litellm_peer.launch(
                litellm, work / "litellm", port, stub_url, launches.VLLM_MODEL_NAME
            )
            peer = components.start(stack, launch, work / "litellm.log")
            started.append(peer)
        for running in started:
            services.wait_ready(running)
        print("starting the gateways ...")
        results = [Result(DIRECT)]
        targets = {DIRECT: Target(results[0], f"{stub_url}/v1/chat/completions", (stub.pid,))}
        gateways, skipped, notes = _gateways(stack, args, root, work, core, stub_url)
        results += skipped
        for name, (gw, uses_opa) in gateways.items():
            results.append(Result(name))
            targets[name] = Target(
                results[-1], f"{gw.url}/v1/chat/completions", (gw.running.pid,),
                uses_opa=uses_opa, needs_token=True, ca_file=gw.ca_file,
                metrics_url=f"{gw.url}/metrics",  # with workers, every worker's summed
            )  # fmt: skip
        if litellm is not None:
            results.append(Result(LITELLM))
            targets[LITELLM] = Target(
                results[-1], f"http://127.0.0.1:{port}/v1/chat/completions", (peer.pid,),
                bearer=master_key,
            )  # fmt: skip
        tokens = Tokens(core)
        for i, (name, t) in enumerate(targets.items()):
            t.script = work / f"wrk-{i}.lua"
            # Not recorded: first requests pay for imports, connection pools, JWKS.
            warm = wrkload.run(t.url, _headers(t, tokens), BODY, 4, WARM_UP_S, t.script)
            print(f"  warmed up {name}: {warm.requests} requests, {warm.errors} errors")
        order = schedule.per_target if args.old_schedule else schedule.rotating
        steps = order(list(targets), args.rounds)
        print(f"measuring {len(targets)} targets, {len(steps)} phases ...")
        _measure(targets, steps, args.seconds, not args.old_schedule, core.opa.pid, tokens)
    return results, notes


def main() -> None:
    args = _parser().parse_args()
    netns.enter(["-m", "bench.gateway_bench", *sys.argv[1:]])
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk (make bench-gateway installs it)")
    root = find_root(Path(__file__).parent)
    litellm = None if args.no_litellm else litellm_peer.available(root)
    if not args.no_litellm and litellm is None:
        sys.exit("LiteLLM is not installed: make bench-litellm (or --no-litellm)")
    # SIGTERM unwinds like Ctrl-C, so every process started here is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    meta = _meta(args, root)
    work = Path(tempfile.mkdtemp(prefix="sovstack-bench-"))
    try:
        results, meta["notes"] = _run(args, root, work, litellm)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = rows(results)
    text = markdown(table, meta)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"gateway-{stamp}.md").write_text(text)
    phases = {r.name: [_phase_json(p) for p in r.phases] for r in results}
    (args.out / f"gateway-{stamp}.json").write_text(
        json.dumps({"meta": meta, "rows": table, "phases": phases}, indent=2) + "\n"
    )


def _phase_json(p: Phase) -> dict[str, Any]:
    return {
        "round": p.round, "connections": p.connections, **asdict(p.load), "errors": p.load.errors,
        "cpu_s": p.cpu_s, "opa_cpu_s": p.opa_cpu_s, "waited_s": p.waited_s,
        "settle_s": p.settle_s, "sync_s": p.sync_s, "after": p.after, "refusals": p.refusals,
        "stages": {s: vars(f) for s, f in stages.figures(p.stages).items()},
    }  # fmt: skip


if __name__ == "__main__":
    main()
