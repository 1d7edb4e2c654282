"""``sbom.cdx.json``: the bundle's software bill of materials, CycloneDX 1.6 JSON.

One component per wheel, Debian package, binary, distribution, collection,
model and policy bundle, with its package URL where one exists and its
SHA-256 where it is one file. The document is deterministic: no timestamp (the
signed manifest carries the build time) and a serial number derived from its
content, so two builds of the same content give the same SBOM.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from typing import Any

from sovstack import __version__
from sovstack.bundle.collectors.base import Package

__all__ = ["SBOM_NAME", "render"]

SBOM_NAME = "sbom.cdx.json"
SPEC_VERSION = "1.6"


def _component(package: Package, ref: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": package.kind,
        "bom-ref": ref,
        "name": package.name,
        "version": package.version,
    }
    if package.group:
        out["group"] = package.group
    if package.purl:
        out["purl"] = package.purl
    if package.sha256:
        out["hashes"] = [{"alg": "SHA-256", "content": package.sha256}]
    if package.description:
        out["description"] = package.description
    return out


def render(version: str, profile: str, packages: Sequence[Package]) -> bytes:
    """The SBOM document for a bundle of ``version`` and ``profile`` holding ``packages``."""
    components = []
    seen: dict[str, int] = {}
    for package in sorted(
        packages, key=lambda p: (p.purl or "", p.group or "", p.name, p.version, p.sha256 or "")
    ):
        ref = (
            package.purl or f"{package.kind}/{package.group or ''}/{package.name}@{package.version}"
        )
        seen[ref] = seen.get(ref, 0) + 1
        components.append(_component(package, ref if seen[ref] == 1 else f"{ref}#{seen[ref]}"))
    body = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "component": {
                "type": "application",
                "bom-ref": "sovstack-bundle",
                "name": "sovstack-bundle",
                "version": version,
                "description": f"sovstack offline bundle, {profile} profile",
            },
            "tools": {
                "components": [{"type": "application", "name": "sovstack", "version": __version__}]
            },
            "properties": [{"name": "sovstack:profile", "value": profile}],
        },
        "components": components,
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    body["serialNumber"] = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'sovstack-sbom:{digest}')}"
    return (json.dumps(body, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
