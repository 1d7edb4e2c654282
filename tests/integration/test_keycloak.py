"""Real Keycloak issues client-credentials tokens that verify against the realm's JWKS."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakAuthenticationError

from sovstack.devstack import realm
from tests.integration.conftest import KeycloakServed


def _token(kc: KeycloakServed, client_id: str, secret: str | None = None) -> str:
    client = kc.client(client_id)
    oidc = KeycloakOpenID(
        server_url=f"{kc.url}/",
        realm_name=realm.REALM,
        client_id=client.client_id,
        client_secret_key=secret if secret is not None else client.client_secret,
    )
    token: str = oidc.token(grant_type="client_credentials")["access_token"]
    return token


def _verify(kc: KeycloakServed, token: str) -> dict[str, Any]:
    """Verify the way a relying party must: signature by a JWKS key, issuer, audience."""
    jwks = httpx.get(f"{kc.issuer}/protocol/openid-connect/certs", trust_env=False).json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid]
    claims: dict[str, Any] = jwt.decode(
        token,
        key=key,
        algorithms=["RS256"],
        issuer=kc.issuer,
        audience=realm.GATEWAY_AUDIENCE,
    )
    return claims


@pytest.mark.parametrize("client", realm.DEMO_CLIENTS, ids=lambda c: c.client_id)
def test_client_credentials_token_verifies_against_jwks(
    keycloak_server: KeycloakServed, client: realm.DemoClient
) -> None:
    claims = _verify(keycloak_server, _token(keycloak_server, client.client_id))
    assert claims["azp"] == client.client_id
    assert claims["typ"] == "Bearer"
    assert claims["site"] == client.site
    assert claims["clearance"] == client.clearance
    assert set(client.roles) <= set(claims["realm_access"]["roles"])


def test_demo_clients_span_two_sites_and_several_roles() -> None:
    assert len(realm.DEMO_CLIENTS) >= 3
    assert len({c.site for c in realm.DEMO_CLIENTS}) == 2
    assert len({c.roles for c in realm.DEMO_CLIENTS}) >= 3


def test_a_wrong_client_secret_gets_no_token(keycloak_server: KeycloakServed) -> None:
    with pytest.raises(KeycloakAuthenticationError):
        _token(keycloak_server, "line-monitor", secret="not-the-secret")


def test_a_token_with_a_changed_claim_fails_verification(keycloak_server: KeycloakServed) -> None:
    token = _token(keycloak_server, "line-monitor")
    header, _, signature = token.split(".")
    forged_claims = jwt.decode(token, options={"verify_signature": False}) | {"site": "plant-b"}
    forged_payload = jwt.utils.base64url_encode(
        jwt.api_jwt.json.dumps(forged_claims, separators=(",", ":")).encode()
    ).decode()
    with pytest.raises(jwt.InvalidSignatureError):
        _verify(keycloak_server, f"{header}.{forged_payload}.{signature}")
