"""The demo plant realm: its roles, its plant-app clients, and rendering it.

The realm template lives with the keycloak role
(``roles/keycloak/templates/realm.json.j2``) so that a deploy and the
development stack import the same realm. Demo client secrets are made fresh
for every stack and written only to the stack's own state.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jinja2

__all__ = [
    "DEMO_CLIENTS",
    "GATEWAY_AUDIENCE",
    "REALM",
    "REALM_ROLES",
    "DemoClient",
    "demo_clients",
    "render_realm",
]

REALM = "plant"
GATEWAY_AUDIENCE = "sovstack-gateway"

REALM_ROLES = (
    ("operator", "Runs a production line; reads shift logs and asks for summaries."),
    ("engineer", "Process and maintenance engineering; works with internal and confidential data."),
    ("data-steward", "Owns data classifications; may handle restricted data."),
    ("auditor", "Reads the audit trail and compliance reports; sends no production data."),
)


@dataclass(frozen=True)
class DemoClient:
    client_id: str
    roles: tuple[str, ...]
    site: str
    clearance: str
    description: str
    client_secret: str = ""


# Two sites and different roles, so that policies can show both allow and deny.
DEMO_CLIENTS = (
    DemoClient("line-monitor", ("operator",), "plant-a", "internal",
               "Line monitoring dashboard, plant A"),
    DemoClient("process-engineering", ("engineer",), "plant-a", "confidential",
               "Process engineering assistant, plant A"),
    DemoClient("quality-lab", ("engineer", "data-steward"), "plant-b", "restricted",
               "Quality lab assistant, plant B"),
    DemoClient("audit-office", ("auditor",), "plant-a", "internal",
               "Compliance office, plant A"),
)  # fmt: skip


def demo_clients() -> list[DemoClient]:
    """The demo clients, each with a freshly generated secret."""
    return [
        DemoClient(**{**asdict(c), "client_secret": secrets.token_urlsafe(32)})
        for c in DEMO_CLIENTS
    ]


def render_realm(template: Path, clients: list[DemoClient], ssl_required: str = "external") -> str:
    """Render the realm template the way the keycloak role does, and check it is JSON."""
    env = jinja2.Environment(  # noqa: S701 -- renders JSON, not HTML; values go through tojson
        loader=jinja2.FileSystemLoader(template.parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    variables: dict[str, Any] = {
        "keycloak_realm": REALM,
        "keycloak_ssl_required": ssl_required,
        "keycloak_access_token_lifespan": 300,
        "keycloak_gateway_audience": GATEWAY_AUDIENCE,
        "keycloak_realm_roles": [{"name": n, "description": d} for n, d in REALM_ROLES],
        "keycloak_clients": [asdict(c) for c in clients],
    }
    # A template error must fail here, in words, not inside Keycloak.
    try:
        text = env.get_template(template.name).render(**variables)
        json.loads(text)
    except (jinja2.TemplateError, TypeError, ValueError) as exc:
        raise ValueError(f"the realm template {template} did not render to JSON: {exc}") from exc
    return text
