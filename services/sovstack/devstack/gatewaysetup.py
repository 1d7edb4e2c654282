"""Prepare what the gateway needs on this machine: a site CA, its certificate,
the audit keys, and its settings file.

Made once per state folder and kept: a restarted dev stack keeps its CA (so
clients keep trusting it), the gateway's certificate (until it is within 30
days of expiry, its names change or the CA is replaced) and its audit keys (so
its log stays verifiable).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sovstack.audit import generate_signing_key, generate_site_key
from sovstack.audit.keys import public_key_path
from sovstack.core import keyfiles
from sovstack.devstack.realm import GATEWAY_AUDIENCE
from sovstack.pki import init_ca, issue_unless_current

__all__ = ["GATEWAY_NAMES", "GatewayFiles", "prepare_gateway"]

GATEWAY_NAMES = ["127.0.0.1", "localhost"]  # the names the dev gateway's certificate holds


@dataclass(frozen=True)
class GatewayFiles:
    config: Path
    ca_file: Path
    audit_dir: Path
    audit_public_key: Path


def prepare_gateway(
    state: Path, port: int, issuer: str, opa_url: str, upstreams: list[dict[str, Any]]
) -> GatewayFiles:
    pki = state / "pki"
    if not (pki / "ca.pem").is_file():
        init_ca(pki, "sovstack dev site CA")
    # Kept across restarts; issued again only near expiry, for other names or another CA.
    issue_unless_current(pki, "gateway", GATEWAY_NAMES)
    keys = state / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    signing, site = keys / "audit-signing.key", keys / "site.key"
    if not signing.is_file():
        generate_signing_key(signing)
    if not site.is_file():
        generate_site_key(site)
    audit_dir = state / "audit"
    settings = {
        "host": "127.0.0.1",
        "port": port,
        "tls_cert": str(pki / "gateway.pem"),
        "tls_key": str(pki / "gateway.key"),
        "ca_file": str(pki / "ca.pem"),
        "oidc_issuer": issuer,
        "oidc_audience": GATEWAY_AUDIENCE,
        "opa_url": opa_url,
        "audit_dir": str(audit_dir),
        "audit_signing_key": str(signing),
        "audit_site_key_file": str(site),
        "audit_origin": "sovstack-dev-gateway",
        "upstreams": upstreams,
        "health_interval_s": 2.0,
    }
    config = state / "gateway.yaml"
    # A gateway configuration may hold secrets: like dev.json, 0600 from its creation.
    keyfiles.write_private(
        config, yaml.safe_dump(settings, sort_keys=False).encode(), overwrite=True
    )
    return GatewayFiles(config, pki / "ca.pem", audit_dir, public_key_path(signing))
