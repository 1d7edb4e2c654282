"""The realm template renders to a realm Keycloak can import, with what the gateway needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sovstack.core.paths import Paths
from sovstack.devstack import realm


@pytest.fixture
def rendered(project_paths: Paths) -> tuple[dict, list[realm.DemoClient]]:  # type: ignore[type-arg]
    clients = realm.demo_clients()
    return json.loads(realm.render_realm(project_paths.realm_template, clients)), clients


def test_realm_is_named_plant_and_has_the_required_roles(rendered: tuple) -> None:  # type: ignore[type-arg]
    doc, _ = rendered
    assert doc["realm"] == "plant"
    names = {r["name"] for r in doc["roles"]["realm"]}
    assert {"operator", "engineer", "data-steward", "auditor"} <= names


def test_every_client_is_confidential_and_uses_client_credentials_only(rendered: tuple) -> None:  # type: ignore[type-arg]
    doc, clients = rendered
    by_id = {c["clientId"]: c for c in doc["clients"]}
    assert set(by_id) == {c.client_id for c in clients}
    for client in clients:
        rep = by_id[client.client_id]
        assert rep["publicClient"] is False
        assert rep["serviceAccountsEnabled"] is True
        assert rep["standardFlowEnabled"] is False
        assert rep["directAccessGrantsEnabled"] is False
        assert rep["secret"] == client.client_secret


def test_every_client_token_gets_the_gateway_audience_site_and_clearance(rendered: tuple) -> None:  # type: ignore[type-arg]
    doc, clients = rendered
    for rep, client in zip(doc["clients"], clients, strict=True):
        mappers = {
            m["protocolMapper"]: m["config"]
            for m in rep["protocolMappers"]
            if m["name"] == "gateway-audience"
        }
        assert mappers["oidc-audience-mapper"]["included.custom.audience"] == "sovstack-gateway"
        claims = {
            m["config"]["claim.name"]: m["config"]["claim.value"]
            for m in rep["protocolMappers"]
            if m["protocolMapper"] == "oidc-hardcoded-claim-mapper"
        }
        assert claims == {"site": client.site, "clearance": client.clearance}


def test_service_accounts_carry_each_clients_roles(rendered: tuple) -> None:  # type: ignore[type-arg]
    doc, clients = rendered
    users = {u["serviceAccountClientId"]: u["realmRoles"] for u in doc["users"]}
    assert users == {c.client_id: list(c.roles) for c in clients}
    defined = {r["name"] for r in doc["roles"]["realm"]}
    assert all(set(roles) <= defined for roles in users.values())


def test_demo_secrets_are_fresh_for_every_stack() -> None:
    first, second = realm.demo_clients(), realm.demo_clients()
    secrets = [c.client_secret for c in first + second]
    assert len(set(secrets)) == len(secrets)
    assert all(len(s) >= 32 for s in secrets)


def test_values_are_json_escaped(project_paths: Paths) -> None:
    tricky = realm.DemoClient('a"b', ("operator",), "site\n2", "internal", "</script>", "s\\x")
    doc = json.loads(realm.render_realm(project_paths.realm_template, [tricky]))
    assert doc["clients"][0]["clientId"] == 'a"b'
    assert doc["clients"][0]["secret"] == "s\\x"


def test_a_missing_template_variable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "realm.json.j2").write_text('{"realm": {{ keycloak_nope | tojson }}}')
    with pytest.raises(ValueError, match="did not render to JSON"):
        realm.render_realm(tmp_path / "realm.json.j2", [])
