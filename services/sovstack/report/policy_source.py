"""Which policy files ``opa test`` ran over: are they the verified bundle's?

The Rego checks run ``opa test`` over the policy folder (the tests live
there, never in a bundle). When a bundle was given and verified, its OPA
policy bundle (``policy/policy-bundle.tar.gz``) must hold exactly the
policy folder's policies and data, staged as ``sovstack policy bundle``
stages them; otherwise the tests proved other files than the site runs, and
every Rego check fails saying which files differ.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tarfile
import tempfile
from pathlib import Path
from typing import Final

from sovstack.policy.bundle import stage
from sovstack.policy.tree import PolicyTree
from sovstack.report.context import Context

__all__ = ["POLICY_BUNDLE", "SOURCE_EVIDENCE", "compare_with_bundle"]

POLICY_BUNDLE: Final = "policy/policy-bundle.tar.gz"
SOURCE_EVIDENCE: Final = "evidence/policy-files.txt"
_OPA_OWN: Final = frozenset({".manifest", ".signatures.json"})


def _bundle_files(bundle: Path) -> dict[str, str] | None:
    """``path -> sha256`` of the policies and data in the bundle's OPA bundle, or None.

    The caller MUST have verified the bundle: its manifest's SHA-256 covers this file.
    """
    raw = _read(bundle)
    if raw is None:
        return None
    files = {}
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = member.name.lstrip("/").removeprefix("./")
            if member.isfile() and name not in _OPA_OWN:
                extracted = tar.extractfile(member)
                if extracted is not None:
                    files[name] = _digest(name, extracted.read())
    return files


def _digest(name: str, data: bytes) -> str:
    """SHA-256 of a policy file; of a JSON file's canonical form (``opa build`` re-encodes data)."""
    if name.endswith(".json"):
        with contextlib.suppress(ValueError):  # not JSON after all: its bytes then
            data = json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()


def _read(bundle: Path) -> bytes | None:
    if bundle.is_dir():
        path = bundle / POLICY_BUNDLE
        return path.read_bytes() if path.is_file() else None
    with tarfile.open(bundle) as tar:
        try:
            member = tar.getmember(POLICY_BUNDLE)
        except KeyError:
            return None
        extracted = tar.extractfile(member)
        return extracted.read() if extracted is not None else None


def _folder_files(policies: Path) -> dict[str, str]:
    with tempfile.TemporaryDirectory(prefix="sovstack-report-") as tmp:
        staged = Path(tmp)
        stage(PolicyTree(policies), staged)
        return {
            p.relative_to(staged).as_posix(): _digest(p.name, p.read_bytes())
            for p in sorted(staged.rglob("*"))
            if p.is_file()
        }


def compare_with_bundle(ctx: Context, bundle_verified: bool) -> str | None:
    """``None`` when the tested policy files may stand for the site's; else why not.

    Writes what was compared to :data:`SOURCE_EVIDENCE`.
    """
    policies, bundle = ctx.inputs.policies, ctx.inputs.bundle
    if bundle is None or not bundle_verified:
        ctx.write(SOURCE_EVIDENCE, f"policy folder {policies}; no verified bundle to compare\n")
        return None
    shipped = _bundle_files(bundle)
    if shipped is None:
        why = f"the verified bundle has no {POLICY_BUNDLE}: the tested policies are not the site's"
        ctx.write(SOURCE_EVIDENCE, why + "\n")
        return why
    tested = _folder_files(policies)
    differ = sorted(n for n in set(shipped) | set(tested) if shipped.get(n) != tested.get(n))
    lines = [f"{digest}  {name}\n" for name, digest in sorted(tested.items())]
    verdict = "the same files" if not differ else f"DIFFERENT: {', '.join(differ)}"
    header = f"policy folder {policies} against {bundle}/{POLICY_BUNDLE}: {verdict}\n"
    ctx.write(SOURCE_EVIDENCE, header + "".join(lines))
    if differ:
        return f"the policy files tested differ from the verified bundle's: {', '.join(differ)}"
    return None
