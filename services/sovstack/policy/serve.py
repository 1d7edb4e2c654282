"""How OPA serves the policies: a signed bundle, verified, with the shipped configuration.

This is how the gateway's OPA runs everywhere: ``make dev`` builds a bundle
signed with a development key kept in the stack's state folder, and starts
OPA on loopback (its API on a Unix socket where one is given, as the opa role
serves it) verifying it against the public key, with
``policies/opa-config.yaml`` (local decision logs, masked fields, nothing
remote) and no version check.
"""

from __future__ import annotations

from pathlib import Path

from sovstack.components import launches
from sovstack.core.errors import ComponentError
from sovstack.core.paths import Paths
from sovstack.core.progress import Echo
from sovstack.core.services import Launch
from sovstack.policy import bundle, keys
from sovstack.policy.tools import PolicyError, opa_bin
from sovstack.policy.tree import PolicyTree

__all__ = ["dev_opa", "opa_launch"]


def opa_launch(
    paths: Paths, port: int, signed_bundle: Path, public_key: Path, socket: Path | None = None
) -> Launch:
    """OPA on loopback serving ``signed_bundle`` only if it verifies against ``public_key``.

    With ``socket``, the API is on that Unix socket and ``port`` has /health and /metrics only.
    """
    # OPA reads a --verification-key that is not a file as an HMAC secret: never let it.
    if not public_key.is_file():
        raise PolicyError(f"no public key at {public_key}: the bundle cannot be verified")
    opa_bin(paths)  # a missing binary is a PolicyError that says 'make deps'
    config = PolicyTree(paths.policies).opa_config
    options = [
        "--config-file", str(config),
        "--bundle",
        "--verification-key", str(public_key),
        "--signing-alg", keys.ALGORITHM,
    ]  # fmt: skip
    return launches.opa(paths, port, [signed_bundle], options, socket=socket)


def dev_opa(paths: Paths, port: int, echo: Echo, socket: Path | None = None) -> Launch:
    """Build and sign the policies with the stack's own development key, and serve them.

    The key lives in the stack's state folder (``.sovstack/policy/``), made on
    first use; it is a development key and signs nothing that leaves the machine.
    """
    key_dir = paths.state / "policy"
    pair = keys.key_pair(key_dir)
    try:
        opa_bin(paths)  # first: a missing OPA says 'make deps', not something about keys
        if not pair.private.is_file():
            keys.generate(key_dir)
            echo(f"made a development signing key in {key_dir}")
        built = bundle.build(paths, pair.private, key_dir / "bundle.tar.gz")
        launch = opa_launch(paths, port, built.path, pair.public, socket)
    except PolicyError as exc:
        raise ComponentError(f"opa: {exc}") from exc
    echo(f"built the policy bundle {built.path}, revision {built.revision}")
    return launch
