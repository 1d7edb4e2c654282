"""``policy/``: the signed OPA policy bundle of ``policies/`` and the key OPA checks it with.

Built by ``sovstack policy bundle`` (:func:`sovstack.policy.bundle.build`).
Its ES256 signature is randomised, so a fresh build differs byte for byte
from the last one; the built bundle is therefore kept in
``.cache/bundle/policy/`` under its revision (a hash of the policies' content)
and the signing key's fingerprint, and reused while neither changes. That is
what keeps two builds of the same policies identical.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from sovstack import __version__
from sovstack.bundle.collectors.base import Collected, Context, Package
from sovstack.bundle.errors import BundleError, BundleKeyError
from sovstack.policy import PolicyError
from sovstack.policy import bundle as policy_bundle
from sovstack.policy.tree import PolicyTree

__all__ = ["collect", "public_key_pem"]


def public_key_pem(signing_key: Path) -> bytes:
    """The PEM public key of the policy signing key (what OPA on the nodes is given)."""
    try:
        key = serialization.load_pem_private_key(signing_key.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise BundleKeyError(
            f"policy signing key {signing_key} does not exist: make one with "
            "'sovstack policy keygen'"
        ) from exc
    except (ValueError, TypeError) as exc:
        raise BundleKeyError(f"{signing_key} is not an unencrypted PEM private key") from exc
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _revision(tree: PolicyTree) -> str:
    with tempfile.TemporaryDirectory(prefix="sovstack-policy-") as tmp:
        staged = Path(tmp)
        policy_bundle.stage(tree, staged)
        return f"{__version__}+{policy_bundle.content_hash(staged)[:16]}"


def collect(ctx: Context, signing_key: Path) -> Collected:
    got = Collected()
    public = public_key_pem(signing_key)
    fingerprint = hashlib.sha256(public).hexdigest()[:16]
    try:
        tree = PolicyTree(ctx.paths.policies)
        revision = _revision(tree)
        cached = ctx.cache / "policy" / f"policy-{revision}-{fingerprint}.tar.gz"
        if cached.is_file():
            got.reused = 1
        else:
            ctx.echo(f"    opa build of policies/ (revision {revision}), signed with {signing_key}")
            partial = cached.with_name(f".{cached.name}.{os.getpid()}.partial")
            built = policy_bundle.build(ctx.paths, signing_key, partial, tree)
            if built.revision != revision:
                raise BundleError(f"policy revision changed while building ({revision})")
            partial.replace(cached)
            got.fetched = 1
    except PolicyError as exc:
        raise BundleError(f"the policy bundle: {exc}") from exc
    origin = f"sovstack policy bundle of policies/, ES256 key {fingerprint}"
    entry = got.place(ctx, cached, "policy/policy-bundle.tar.gz", "policy", revision, origin)
    (ctx.staging / "policy" / "policy-signing.pub").write_bytes(public)
    got.add_written(ctx, "policy/policy-signing.pub", "policy", fingerprint, origin)
    got.packages.append(
        Package("data", "sovstack-policies", revision, sha256=entry.sha256, description=origin)
    )
    return got
