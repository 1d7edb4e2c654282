"""``make mutation``: mutmut over the code that keeps a request from reaching a model.

The modules are the gateway's authentication, authorisation, auditing, limits,
proxy, forwarding, intake and protocol, and the audit log's verifier; the tests
are the unit tests that exercise them. mutmut imports mutated code from ``mutants/src`` (it knows
``./``, ``src/`` and ``source/``, not ``services/``), so the run happens in a
scratch copy, ``.sovstack/mutation/``, with ``services/`` copied as ``src/``.
The run is bounded (``--minutes``); mutants not reached by then are counted
as "not checked", never as killed, and ``--resume`` goes on from there.
Prints each module's score: killed / (killed + survived), timeouts counted
as killed, as mutmut does.

Not part of ``make test``: it takes minutes, and a score is a report, not a gate.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = (
    "gateway/auth.py",
    "gateway/authz.py",
    "gateway/auditing.py",
    "gateway/limits.py",
    "gateway/proxy.py",
    "gateway/forwarding.py",
    "gateway/intake.py",
    "gateway/protocol.py",
    "audit/verify.py",
)
TESTS = ("tests/unit/gateway", "tests/unit/audit")
KILLED = frozenset({"killed", "timeout", "caught by type check"})


def _config() -> str:
    only = ", ".join(f'"src/sovstack/{m}"' for m in MODULES)
    tests = ", ".join(f'"{t}"' for t in TESTS)
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = [{only}]\n"
        f"pytest_add_cli_args_test_selection = [{tests}]\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]\n'
    )


def prepare(work: Path) -> None:
    """A fresh scratch copy: src/ (services/), tests/, pyproject.toml with the mutmut section."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "services", work / "src", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    (work / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + _config())


def scores(results: str) -> dict[str, collections.Counter[str]]:
    """Counts of each status per module, from ``mutmut results --all``."""
    by_module: dict[str, collections.Counter[str]] = {}
    for line in results.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if not sep or "__mutmut_" not in name:
            continue
        module = name.rsplit(".", 1)[0]
        by_module.setdefault(module, collections.Counter())[status] += 1
    return by_module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=25.0, help="stop the run after this")
    parser.add_argument("--children", type=int, default=1, help="mutants tested at once")
    parser.add_argument("--work", type=Path, default=ROOT / ".sovstack" / "mutation")
    parser.add_argument(
        "--resume", action="store_true", help="go on from the last run's results (same code)"
    )
    args = parser.parse_args()
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    if not (args.resume and (args.work / "mutants").is_dir()):
        prepare(args.work)
    run = subprocess.Popen([mutmut, "run", "--max-children", str(args.children)], cwd=args.work)
    try:
        run.wait(timeout=args.minutes * 60)
    except subprocess.TimeoutExpired:
        run.send_signal(signal.SIGINT)  # mutmut keeps the results it has on an interrupt
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()
        print(f"\nstopped after {args.minutes} minutes; the rest counts as not checked")
    out = subprocess.run(
        [mutmut, "results", "--all", "true"], cwd=args.work, capture_output=True, text=True
    ).stdout
    print(f"\n{'module':34} {'score':>6} {'killed':>7} {'survived':>9} {'other':>6}")
    for module, counts in sorted(scores(out).items()):
        killed = sum(counts[s] for s in KILLED)
        survived = counts["survived"]
        other = sum(counts.values()) - killed - survived
        tested = killed + survived
        score = f"{100 * killed / tested:.0f}%" if tested else "-"
        print(f"{module:34} {score:>6} {killed:>7} {survived:>9} {other:>6}")
    print(f"\nsurvivors: cd {args.work} && {mutmut} results; {mutmut} show NAME")
    return 0


if __name__ == "__main__":
    sys.exit(main())
