"""The policy's cost per decision, and proof that a change to the Rego changes no decision.

    .venv/bin/python -m bench.policy_bench [--baseline-rev REV | --baseline DIR]
                                           [--rounds 5] [--check-only]

Both parts compare the Rego of this checkout's policies/ with a baseline: the
policies/ of a git revision (default HEAD, exported with ``git archive``), or a
folder holding a copy of policies/. Both read this checkout's policies/data/.

1. Equivalence (a gate: exit 1 on any difference). A thousand-odd inputs, the
   gateway's shape (``proxy.policy_input``) and malformed ones: every kind of
   request, model, classification, caller, set of offered replicas (spanning
   ones too) and quota state, at instants before, at and after each
   ``valid_until``, under variations of the policy data (defaults, uncapped
   roles, quotas, dates that do not parse or carry an offset). Each side
   evaluates all of them in one ``opa eval``; ``decision``, ``visible_models``
   and ``consistency.problems`` must be identical, field for field.
2. Cost (a report, never a gate). ``opa bench`` of ``data.sovstack.decision``
   for a few gateway inputs, baseline and current in alternating rounds so that
   both see the same machine: the median µs/op of each, and their ratio.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sovstack.core.paths import Paths, find_root
from sovstack.policy.tools import opa_bin, run
from sovstack.policy.tree import PolicyTree

ROOT = find_root(Path(__file__).parent)
SAMPLED = 1200  # inputs drawn from the product of the dimensions below
SEED = 16

# Instants around every valid_until in the shipped data (contractor, DSA-2026-014).
INSTANTS = {
    "2026-12-01": 1_796_112_000_000_000_000,
    "contract's last second": 1_806_537_598_000_000_000,
    "contract's end": 1_806_537_599_000_000_000,
    "2027-05-01": 1_809_129_600_000_000_000,
    "agreement's end": 1_814_486_399_000_000_000,
    "2027-08-01": 1_817_078_400_000_000_000,
}


def _subject(client: str, roles: list[str], site: str, clearance: str | None) -> dict[str, Any]:
    """A caller as the gateway describes it (auth.Subject.as_input)."""
    return {"sub": f"someone at {client}", "client_id": client, "roles": roles, "site": site,
            "clearance": clearance, "groups": []}  # fmt: skip


_SUBJECTS = {
    "operator": _subject("line-monitor", ["operator", "default-roles-plant", "offline_access"],
                         "plant-a", "internal"),
    "engineer": _subject("process-engineering", ["engineer"], "plant-a", "confidential"),
    "steward": _subject("quality-lab", ["engineer", "data-steward"], "plant-b", "restricted"),
    "auditor": _subject("audit-office", ["auditor"], "plant-a", "internal"),
    "contractor": _subject("vendor-tool", ["contractor"], "plant-b", None),
    "contractor+operator": _subject("line-monitor", ["contractor", "operator"], "plant-a",
                                    "internal"),
    "unlisted": _subject("skunkworks", ["plant-admin"], "plant-c", "export-controlled"),
    "bare": {"client_id": "quality-lab"},
}  # fmt: skip
_KINDS = ["chat", "completions", "embeddings", "models", "images", None]
_MODELS = ["tiny-llama", "tiny-llama-pp", "ops-llama-8b", "gpt-4", None]
_CLASSES = ["public", "internal", "confidential", "restricted", "export-controlled", "secret", None]
_USAGE: dict[str, Any] = {
    "fresh": {
        "day": {"period": "2026-12-07", "requests": 0, "tokens": 0, "joules": 0},
        "month": {"period": "2026-12", "requests": 0, "tokens": 0, "joules": 0},
    },
    "busy": {
        "day": {"period": "2026-12-07", "requests": 4999, "tokens": 1999999, "joules": 5.5},
        "month": {"period": "2026-12", "requests": 1999, "tokens": 499999, "joules": 1e6},
    },
    "spent": {
        "day": {"period": "2026-12-07", "requests": 5000, "tokens": 3, "joules": 0},
        "month": {"period": "2026-12", "requests": 2, "tokens": 500000, "joules": 36e6},
    },
    "day only": {"day": {"period": "2026-12-07", "requests": 1, "tokens": 2}},
    "none": None,
}


def _replica_sets(plant: dict[str, Any], model: Any) -> dict[str, list[Any]]:
    """Offered replicas, named: as the data declares them, and each way they can be wrong."""
    declared = [{"id": i, **r} for i, r in sorted(plant["replicas"].items())]
    mine = [r for r in declared if r["model"] == model] or declared[:1]
    first = mine[0]
    return {
        "declared": mine,
        "first": [first],
        "none": [],
        "all": declared,
        "moved": [{**first, "jurisdiction": "US"}, *mine[1:]],
        "undeclared": [{**first, "id": "gpu-9"}],
        "nodes null": [{**r, "nodes": None} for r in mine],
        "nodes swapped": [{**r, "nodes": {"gpu-3": "plant-b", "gpu-1": "plant-a"}} for r in mine],
        "no nodes": [{k: v for k, v in r.items() if k != "nodes"} for r in mine],
    }


def _plants(shipped: dict[str, Any]) -> dict[str, Any]:
    """The shipped policy data and variations that reach the rules' other branches."""
    defaults = copy.deepcopy(shipped)
    defaults.update(
        classification_when_missing="internal",
        clearance_when_missing=None,
        classification_floor=None,
    )
    defaults["roles"]["engineer"].pop("max_tokens")
    defaults["clients"]["quality-lab"] = {"description": "no default, no floor"}
    defaults["clients"]["skunkworks"] = {"min_classification": "confidential"}
    quotas = copy.deepcopy(shipped)
    quotas["quotas"]["clients"]["line-monitor"] = {"period": "day", "requests": 1, "joules": 10}
    quotas["quotas"]["roles"]["operator"] = {"period": "month", "tokens": 100, "joules": 2e6}
    quotas["quotas"]["roles"]["auditor"] = {"period": "week", "requests": 1}
    bad_dates = copy.deepcopy(shipped)
    bad_dates["roles"]["contractor"]["valid_until"] = "31.03.2027"
    bad_dates["roles"]["operator"]["valid_until"] = "2027-03-31"
    bad_dates["data_sharing_agreements"][0]["valid_until"] = "soon"
    offsets = copy.deepcopy(shipped)
    offsets["roles"]["contractor"]["valid_until"] = "2027-04-01T01:59:59.5+02:00"
    offsets["roles"]["engineer"]["valid_until"] = "2027-03-31t23:59:59z"
    offsets["data_sharing_agreements"][0]["valid_until"] = "2027-06-30T23:59:59.999999999Z"
    offsets["data_sharing_agreements"][1]["valid_until"] = "2027-05-01T00:00:00-00:30"
    return {
        "shipped": shipped,
        "defaults": defaults,
        "quotas": quotas,
        "bad dates": bad_dates,
        "offsets": offsets,
    }


def _input(subject: Any, kind: Any, model: Any, cls: Any, replicas: Any, usage: Any) -> Any:
    """One input in the gateway's shape (proxy.policy_input); None leaves a field out."""
    made: dict[str, Any] = {"subject": copy.deepcopy(subject)}
    if kind is not None:
        made["action"] = {"route": f"/v1/{kind}", "method": "POST", "kind": kind}
    made.update(model=model, data_classification=cls, replicas=replicas)
    made["request"] = {"max_tokens": 64, "stream": False}
    if usage is not None:
        made["usage"] = usage
    return made


def cases(plants: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every input to compare: a random sample of the product, then the fixed ones."""
    shipped = plants["shipped"]
    rng = random.Random(SEED)  # noqa: S311 -- a reproducible sample of inputs, not a secret
    for _ in range(SAMPLED):
        plant = rng.choice(sorted(plants))
        model = rng.choice(_MODELS)
        replicas = rng.choice(sorted(_replica_sets(plants[plant], model).items()))[1]
        subject = _SUBJECTS[rng.choice(sorted(_SUBJECTS))]
        made = _input(
            subject,
            rng.choice(_KINDS),
            model,
            rng.choice(_CLASSES),
            replicas,
            _USAGE[rng.choice(sorted(_USAGE))],
        )
        yield {"input": made, "plant": plant, "now": rng.choice(list(INSTANTS.values()))}
    # Requests that are mostly well-formed, so that many are allowed: each caller, model and kind.
    for plant in ("shipped", "defaults"):
        for name, subject in sorted(_SUBJECTS.items()):
            for model in _MODELS[:3]:
                replicas = _replica_sets(plants[plant], model)["declared"]
                for kind in _KINDS[:3]:
                    for cls in (None, "public", "internal", "confidential", "restricted"):
                        made = _input(subject, kind, model, cls, replicas, _USAGE["busy"])
                        now = INSTANTS["contract's last second" if len(name) % 2 else "2027-05-01"]
                        yield {"input": made, "plant": plant, "now": now}
    # Where data may go: every classification, caller site and replica (the matrix test's cells).
    matrix = {**_SUBJECTS["steward"], "clearance": "export-controlled"}
    for cls in _CLASSES[:5]:
        for site in ("plant-a", "plant-b", "plant-c"):
            for replica_id, replica in sorted(shipped["replicas"].items()):
                caller = {**matrix, "site": site}
                replicas = [{"id": replica_id, **replica}]
                made = _input(caller, "chat", replica["model"], cls, replicas, _USAGE["fresh"])
                for now in ("2026-12-01", "2027-08-01"):
                    yield {"input": made, "plant": "shipped", "now": INSTANTS[now]}
    # Malformed inputs: the decision is still an object.
    for odd in (
        {},
        {"subject": None},
        {"subject": {"roles": "operator"}, "model": 5},
        {"action": {"kind": 7}, "replicas": "gpu-1", "usage": []},
        {
            "subject": _SUBJECTS["operator"],
            "action": {"kind": "chat"},
            "model": "tiny-llama",
            "replicas": [{"id": None}, 3],
        },
    ):
        yield {"input": odd, "plant": "shipped", "now": INSTANTS["2026-12-01"]}


# Each with-value is bound to a variable first: OPA 1.22 evaluates `with input as c.input`
# inside a comprehension to the wrong document (undefined or a wrong decision).
_QUERY = """[r |
    some c in input.cases
    plant := input.plants[c.plant]
    made := c.input
    now := c.now
    d := data.sovstack.decision with input as made with time.now_ns as now with data.plant as plant
    v := data.sovstack.visible_models with input as made with time.now_ns as now
        with data.plant as plant
    r := {"decision": d, "visible_models": v}
]"""

# The data's own problems: consistency reads classification's defaults and validity.
_PROBLEMS = """{name: p |
    some name, plant in input.plants
    p := data.sovstack.consistency.problems with data.plant as plant
}"""


def _load(rego_root: Path, data_dir: Path) -> list[str]:
    load = ["--ignore", "*_test.rego"]
    for top in PolicyTree(rego_root).rego_dirs():
        load += ["-d", str(top)]
    return [*load, "-d", str(data_dir)]


def _evaluate(opa: Path, load: list[str], payload: str, query: str) -> Any:
    done = run(
        [opa, "eval", *load, "--stdin-input", "-f", "json", query], "opa eval", stdin=payload
    )
    return json.loads(done.stdout)["result"][0]["expressions"][0]["value"]


def equivalence(opa: Path, baseline: Path, current: Path, data_dir: Path) -> int:
    """Evaluate every case on both sides; print the first differences; the number of them."""
    plants = _plants(PolicyTree(current).data()["plant"])
    every = list(cases(plants))
    payload = json.dumps({"plants": plants, "cases": every})
    sides = [_load(baseline, data_dir), _load(current, data_dir)]
    # An array comprehension: one result per case, in order (a set would merge equal ones).
    old, new = (_evaluate(opa, load, payload, _QUERY) for load in sides)
    old_problems, new_problems = (_evaluate(opa, load, payload, _PROBLEMS) for load in sides)
    differ = [(c, a, b) for c, a, b in zip(every, old, new, strict=True) if a != b]
    differ += [
        (n, old_problems[n], new_problems[n]) for n in plants if old_problems[n] != new_problems[n]
    ]
    for what, a, b in differ[:5]:
        print(f"differs: {json.dumps(what)}\n  baseline {a}\n  current  {b}")
    allowed = sum(1 for r in old if r["decision"]["allow"])
    print(
        f"equivalence: {len(every)} inputs ({allowed} allowed) under {len(plants)} data sets, "
        f"and the data sets' problems: {len(differ)} differences"
    )
    return len(differ)


def _bench_inputs(plant: dict[str, Any]) -> dict[str, Any]:
    """The inputs timed: a gateway's everyday requests, allowed and denied."""

    def offered(*ids: str) -> list[dict[str, Any]]:
        return [{"id": i, **plant["replicas"][i]} for i in ids]

    operator, auditor, steward = (_SUBJECTS[n] for n in ("operator", "auditor", "steward"))
    return {
        "chat allowed": _input(operator, "chat", "tiny-llama", "internal",
                               offered("gpu-1", "gpu-b1"), _USAGE["busy"]),
        "chat denied (clearance)": _input(operator, "chat", "tiny-llama", "confidential",
                                          offered("gpu-1"), _USAGE["busy"]),
        "chat denied (role)": _input(auditor, "chat", "tiny-llama", "internal",
                                     offered("gpu-1"), _USAGE["fresh"]),
        "spanning, under agreement": _input(steward, "chat", "tiny-llama-pp", "internal",
                                            offered("tiny-pp-1"), _USAGE["busy"]),
        "list models": _input(operator, "models", None, None, [], _USAGE["fresh"]),
    }  # fmt: skip


def _bench_once(opa: Path, load: list[str], input_file: Path) -> float:
    """µs per decision of one ``opa bench`` run."""
    argv = [opa, "bench", *load, "-i", input_file, "-f", "json", "data.sovstack.decision"]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    return float(result["T"]) / result["N"] / 1000


def cost(opa: Path, baseline: Path, current: Path, data_dir: Path, rounds: int) -> None:
    """Print the median µs/op of each side for each input, alternating sides every round."""
    sides = {"baseline": _load(baseline, data_dir), "current": _load(current, data_dir)}
    print(f"{'input':28} {'baseline µs/op':>15} {'current µs/op':>14} {'ratio':>6}")
    inputs = _bench_inputs(PolicyTree(current).data()["plant"])
    with tempfile.TemporaryDirectory() as tmp:
        for name, made in inputs.items():
            input_file = Path(tmp) / "input.json"
            input_file.write_text(json.dumps(made))
            took: dict[str, list[float]] = {side: [] for side in sides}
            for _ in range(rounds):
                for side, load in sides.items():
                    took[side].append(_bench_once(opa, load, input_file))
            old, new = (statistics.median(took[side]) for side in sides)
            print(f"{name:28} {old:15.0f} {new:14.0f} {new / old:6.2f}")


def _export(rev: str, into: Path) -> Path:
    """policies/ of a git revision, as files under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "policies"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "policies"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-rev", default="HEAD", help="git revision (default HEAD)")
    parser.add_argument("--baseline", type=Path, help="a copy of policies/ instead of a revision")
    parser.add_argument("--rounds", type=int, default=5, help="opa bench runs per input and side")
    parser.add_argument("--check-only", action="store_true", help="equivalence only, no timings")
    args = parser.parse_args()
    opa = opa_bin(Paths(ROOT))
    current = ROOT / "policies"
    with tempfile.TemporaryDirectory() as tmp:
        baseline = args.baseline or _export(args.baseline_rev, Path(tmp))
        differences = equivalence(opa, baseline, current, current / "data")
        if not args.check_only:
            cost(opa, baseline, current, current / "data", args.rounds)
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
