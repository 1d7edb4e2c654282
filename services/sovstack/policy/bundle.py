"""``sovstack policy bundle``: the signed OPA bundle built from ``policies/``.

The bundle holds the policies (never their tests) and the policy data merged
into one ``data.json``, with a ``.manifest`` naming its roots. Its revision is
the project version plus a hash of exactly that content
(``0.1.0+3f9a…``), so the same policies always give the same revision and any
change gives a new one; OPA reports it with every decision (provenance and
decision logs). ``opa build`` signs it with the project's ES256 key: an OPA
started with the public key refuses a bundle that was changed, signed by
another key, or not signed at all.

The data is checked first: a bundle is not built while
``data.sovstack.consistency.problems`` lists anything.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sovstack import __version__
from sovstack.core.paths import Paths
from sovstack.policy.keys import ALGORITHM
from sovstack.policy.tools import PolicyError, opa_bin, run
from sovstack.policy.tree import PolicyTree

__all__ = ["CONSISTENCY_RULE", "BuiltBundle", "build", "content_hash", "stage"]

CONSISTENCY_RULE = "data.sovstack.consistency.problems"


@dataclass(frozen=True)
class BuiltBundle:
    path: Path
    revision: str
    roots: tuple[str, ...]


def content_hash(directory: Path) -> str:
    """SHA-256 over every file below ``directory``: its relative path, size and bytes, in order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        body = path.read_bytes()
        digest.update(f"{path.relative_to(directory).as_posix()}\0{len(body)}\0".encode())
        digest.update(body)
    return digest.hexdigest()


def _rego_roots(relative_dirs: set[str]) -> set[str]:
    """The package folders no other one contains: sovstack, system/log, ..."""
    return {d for d in relative_dirs if not any(d.startswith(f"{o}/") for o in relative_dirs)}


def stage(tree: PolicyTree, into: Path) -> tuple[str, ...]:
    """Lay out the bundle's content in ``into`` (no manifest yet); return its roots."""
    package_dirs = set()
    for source in tree.rego_files(tests=False):
        relative = source.relative_to(tree.root)
        (into / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, into / relative)
        package_dirs.add(relative.parent.as_posix())
    data = tree.data()
    (into / "data.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return tuple(sorted(_rego_roots(package_dirs) | set(data)))


def _check_consistency(paths: Paths, staged: Path) -> None:
    done = run(
        [opa_bin(paths), "eval", "--format", "json", "--bundle", staged, CONSISTENCY_RULE],
        "checking the policy data",
    )
    problems = json.loads(done.stdout)["result"][0]["expressions"][0]["value"]
    if problems:
        raise PolicyError(
            "the policy data is inconsistent; fix policies/data/ first:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def build(
    paths: Paths, signing_key: Path, out: Path, tree: PolicyTree | None = None
) -> BuiltBundle:
    """Stage, check, build and sign the bundle into ``out``; return what was built."""
    tree = tree or PolicyTree(paths.policies)
    if not signing_key.is_file():
        raise PolicyError(
            f"no signing key at {signing_key}: make one with 'sovstack policy keygen'"
        )
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sovstack-bundle-") as tmp:
        staged = Path(tmp) / "bundle"
        staged.mkdir()
        roots = stage(tree, staged)
        revision = f"{__version__}+{content_hash(staged)[:16]}"
        _check_consistency(paths, staged)
        manifest = {"roots": list(roots), "metadata": {"built_by": f"sovstack {__version__}"}}
        (staged / ".manifest").write_text(json.dumps(manifest, indent=1) + "\n")
        run(
            [opa_bin(paths), "build", "--bundle", ".", "--revision", revision,
             "--signing-key", signing_key.resolve(), "--signing-alg", ALGORITHM,
             "--output", out],
            "opa build",
            cwd=staged,
        )  # fmt: skip
    return BuiltBundle(out, revision, roots)
