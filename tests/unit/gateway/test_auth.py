"""Token verification against each attack class (the JWKS transport is faked; nothing else)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sovstack.gateway.auth import TokenVerifier, shown
from sovstack.gateway.errors import Unauthenticated
from sovstack.gateway.jwks import JwksCache

ISSUER = "https://idp.plant.test/realms/plant"
AUDIENCE = "sovstack-gateway"
JWKS_URL = f"{ISSUER}/protocol/openid-connect/certs"


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


REALM_KEY = _rsa()
FOREIGN_KEY = _rsa()


def _jwk(key: rsa.RSAPrivateKey, kid: str, alg: str | None = "RS256") -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return jwk | {"kid": kid, "use": "sig"} | ({"alg": alg} if alg else {})


class Idp:
    """The realm's JWKS endpoint, counting fetches, and able to go down."""

    def __init__(self) -> None:
        self.keys = [_jwk(REALM_KEY, "realm-1")]
        self.fetches = 0
        self.down = False
        self.other_urls: list[str] = []
        self.document: Any = None  # when set, served instead of {"keys": keys}

    def handler(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) != JWKS_URL:
            self.other_urls.append(str(request.url))
            return httpx.Response(404)
        if self.down:
            raise httpx.ConnectError("keycloak is down")
        self.fetches += 1
        document = {"keys": self.keys} if self.document is None else self.document
        return httpx.Response(200, json=document)


@pytest.fixture
def idp() -> Idp:
    return Idp()


@pytest.fixture
async def verifier(idp: Idp) -> AsyncIterator[TokenVerifier]:
    client = httpx.AsyncClient(transport=httpx.MockTransport(idp.handler))
    cache = JwksCache(client, JWKS_URL, refetch_floor_s=60.0, refresh_interval_s=3600.0)
    assert await cache.refresh()  # as the gateway does at start-up
    yield TokenVerifier(cache, ISSUER, AUDIENCE, ["RS256", "ES256"], leeway_s=5)
    await client.aclose()


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "svc-1",
        "azp": "line-monitor",
        "typ": "Bearer",
        "iat": now,
        "exp": now + 300,
        "realm_access": {"roles": ["operator"]},
        "resource_access": {"plant-app": {"roles": ["reader"]}},
        "site": "plant-a",
        "clearance": "internal",
    }
    return {k: v for k, v in (base | over).items() if v is not None}


def _token(
    claims: dict[str, Any] | None = None,
    key: Any = REALM_KEY,
    kid: str = "realm-1",
    alg: str = "RS256",
    headers: dict[str, Any] | None = None,
) -> str:
    return jwt.encode(
        claims or _claims(), key, algorithm=alg, headers={"kid": kid, **(headers or {})}
    )


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def _refused(verifier: TokenVerifier, token: str, code: str = "invalid_token") -> str:
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(f"Bearer {token}")
    assert caught.value.status == 401
    assert caught.value.code == code
    return caught.value.message


async def test_allow_a_valid_token_and_map_its_claims(verifier: TokenVerifier) -> None:
    subject = await verifier.verify(f"Bearer {_token()}")
    assert subject.sub == "svc-1"
    assert subject.client_id == "line-monitor"
    assert subject.roles == ("operator", "plant-app:reader")
    assert (subject.site, subject.clearance) == ("plant-a", "internal")


async def test_allow_an_audience_list_that_contains_the_gateway(verifier: TokenVerifier) -> None:
    token = _token(_claims(aud=["account", AUDIENCE]))
    assert (await verifier.verify(f"Bearer {token}")).client_id == "line-monitor"


async def test_deny_alg_none(verifier: TokenVerifier) -> None:
    header = _b64({"alg": "none", "typ": "JWT", "kid": "realm-1"})
    await _refused(verifier, f"{header}.{_b64(_claims())}.")


async def test_deny_hs256_signed_with_the_realms_public_key(verifier: TokenVerifier) -> None:
    public_pem = REALM_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hashlib
    import hmac

    header = _b64({"alg": "HS256", "typ": "JWT", "kid": "realm-1"})
    payload = _b64(_claims())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    await _refused(verifier, f"{header}.{payload}.{signature}")


async def test_deny_a_token_signed_by_a_foreign_key_with_the_realms_kid(
    verifier: TokenVerifier,
) -> None:
    message = await _refused(verifier, _token(key=FOREIGN_KEY))
    assert "Signature" in message or "signature" in message


async def test_deny_an_ec_token_claiming_an_rsa_kid(verifier: TokenVerifier) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    await _refused(verifier, _token(key=ec_key, alg="ES256"))


async def test_deny_an_expired_token(verifier: TokenVerifier) -> None:
    now = int(time.time())
    await _refused(verifier, _token(_claims(iat=now - 900, exp=now - 60)), code="token_expired")


async def test_allow_clock_skew_within_the_leeway(verifier: TokenVerifier) -> None:
    now = int(time.time())
    token = _token(_claims(iat=now - 300, exp=now - 2))
    assert (await verifier.verify(f"Bearer {token}")).sub == "svc-1"


async def test_deny_a_token_not_yet_valid(verifier: TokenVerifier) -> None:
    await _refused(verifier, _token(_claims(nbf=int(time.time()) + 600)))


async def test_deny_a_wrong_issuer(verifier: TokenVerifier) -> None:
    await _refused(verifier, _token(_claims(iss=ISSUER + "-evil")))


async def test_deny_a_wrong_or_missing_audience(verifier: TokenVerifier) -> None:
    await _refused(verifier, _token(_claims(aud="account")))
    await _refused(verifier, _token(_claims(aud=None)))


async def test_deny_a_refresh_or_id_token(verifier: TokenVerifier) -> None:
    await _refused(verifier, _token(_claims(typ="Refresh")))
    await _refused(verifier, _token(_claims(typ="ID")))


async def test_deny_an_unknown_kid_and_refetch_at_most_once_per_floor(
    verifier: TokenVerifier, idp: Idp
) -> None:
    await verifier.verify(f"Bearer {_token()}")
    assert idp.fetches == 1
    for _ in range(5):
        await _refused(verifier, _token(key=FOREIGN_KEY, kid="attacker-kid"))
    assert idp.fetches == 2  # one refetch for the unknown kid, then the floor holds


async def test_allow_a_rotated_key_after_one_refetch(verifier: TokenVerifier, idp: Idp) -> None:
    await verifier.verify(f"Bearer {_token()}")
    idp.keys.append(_jwk(FOREIGN_KEY, "realm-2"))
    subject = await verifier.verify(f"Bearer {_token(key=FOREIGN_KEY, kid='realm-2')}")
    assert subject.sub == "svc-1"
    assert idp.fetches == 2


async def test_allow_cached_keys_while_keycloak_is_down(verifier: TokenVerifier, idp: Idp) -> None:
    await verifier.verify(f"Bearer {_token()}")
    idp.down = True
    assert (await verifier.verify(f"Bearer {_token()}")).sub == "svc-1"


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk"])
async def test_deny_keys_offered_in_the_token_header(
    verifier: TokenVerifier, idp: Idp, header: str
) -> None:
    attacker = _jwk(FOREIGN_KEY, "attacker")
    value = attacker if header == "jwk" else "https://attacker.test/keys"
    await _refused(verifier, _token(key=FOREIGN_KEY, kid="attacker", headers={header: value}))
    assert idp.other_urls == []  # the offered URL was never fetched


@pytest.mark.parametrize("header", ["jku", "x5u"])
async def test_allow_a_realm_token_whose_url_headers_are_ignored(
    verifier: TokenVerifier, idp: Idp, header: str
) -> None:
    token = _token(headers={header: "https://attacker.test/keys"})
    assert (await verifier.verify(f"Bearer {token}")).sub == "svc-1"
    assert idp.other_urls == []


@pytest.mark.parametrize(
    "value", ["Bearer not-a-jwt", "Bearer a.b.c", "Bearer ", "Basic dXNlcjpwdw==", "token"]
)
async def test_deny_malformed_authorization(verifier: TokenVerifier, value: str) -> None:
    with pytest.raises(Unauthenticated):
        await verifier.verify(value)


async def test_deny_a_missing_token(verifier: TokenVerifier) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(None)
    assert caught.value.code == "missing_token"
    assert caught.value.headers()["WWW-Authenticate"].startswith("Bearer")


async def test_a_remembered_token_skips_the_signature_check(
    verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _token()
    first = await verifier.verify(f"Bearer {token}")
    calls = []
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(a) or {})
    assert await verifier.verify(f"Bearer {token}") == first
    assert calls == []  # the same bytes were verified before: no second check
    # A token never seen before is verified in full (and this fake decode refuses it).
    await _refused(verifier, _token(_claims(sub="svc-2")))
    assert len(calls) == 1


async def test_deny_a_remembered_token_once_it_expires(verifier: TokenVerifier) -> None:
    # Expired 3 s ago: still inside the 5 s leeway, for one to two more seconds.
    token = _token(_claims(exp=int(time.time()) - 3))
    await verifier.verify(f"Bearer {token}")
    await asyncio.sleep(2.5)
    assert "expired" in await _refused(verifier, token, code="token_expired")


async def test_deny_a_remembered_token_whose_key_left_the_jwks(
    verifier: TokenVerifier, idp: Idp
) -> None:
    token = _token()
    await verifier.verify(f"Bearer {token}")
    # The realm rotates realm-1 out; a refetch (here for another kid) drops it.
    idp.keys = [_jwk(FOREIGN_KEY, "realm-2")]
    await verifier.verify(f"Bearer {_token(key=FOREIGN_KEY, kid='realm-2')}")
    await _refused(verifier, token)


async def test_remembered_tokens_are_bounded(
    verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(TokenVerifier, "MAX_REMEMBERED", 3)
    tokens = [_token(_claims(sub=f"svc-{i}")) for i in range(5)]
    for token in tokens:
        await verifier.verify(f"Bearer {token}")
    assert len(verifier._verified) == 3
    assert tokens[0] not in verifier._verified and tokens[-1] in verifier._verified


@pytest.mark.parametrize("missing", ["exp", "iat", "sub"])
async def test_deny_a_token_without_a_required_claim(verifier: TokenVerifier, missing: str) -> None:
    message = await _refused(verifier, _token(_claims(**{missing: None})))
    assert missing in message


async def test_deny_a_token_with_an_empty_kid(verifier: TokenVerifier) -> None:
    assert "names no signing key" in await _refused(verifier, _token(kid=""))


async def test_deny_a_token_whose_header_is_not_json(verifier: TokenVerifier) -> None:
    assert "malformed" in await _refused(verifier, f"bm90IGpzb24.{_b64(_claims())}.c2ln")


async def test_claims_of_the_wrong_type_are_dropped_and_client_id_is_a_fallback(
    verifier: TokenVerifier,
) -> None:
    claims = _claims(azp=None, client_id="quality-lab", site=["plant-a"], clearance=3,
                     groups=["/plant-a/line-1", 5])  # fmt: skip
    subject = await verifier.verify(f"Bearer {_token(claims)}")
    assert subject.client_id == "quality-lab"
    assert (subject.site, subject.clearance) == (None, None)
    assert subject.groups == ("/plant-a/line-1",)


# --- the JWKS on a schedule, the JWK's own alg, the refetch floor, bounded messages


@pytest.fixture
async def jwks_client(idp: Idp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handler)) as client:
        yield client


async def _fetched(client: httpx.AsyncClient, interval_s: float = 3600.0) -> JwksCache:
    """A cache that has fetched the realm's keys once, as at start-up."""
    cache = JwksCache(client, JWKS_URL, refetch_floor_s=60.0, refresh_interval_s=interval_s)
    assert await cache.refresh()
    return cache


async def _until(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, "not within the deadline"
        await asyncio.sleep(0.01)


async def test_deny_a_key_removed_from_the_realm_within_one_scheduled_refresh(
    idp: Idp, jwks_client: httpx.AsyncClient
) -> None:
    cache = await _fetched(jwks_client, 0.2)
    verifier = TokenVerifier(cache, ISSUER, AUDIENCE, ["RS256"], leeway_s=5)
    token = _token()
    await verifier.verify(f"Bearer {token}")  # remembered from here on
    cache.start()
    try:
        idp.keys = [_jwk(FOREIGN_KEY, "realm-2")]  # the realm rotated realm-1 out
        removed_at = time.monotonic()

        async def refused() -> bool:
            try:
                await verifier.verify(f"Bearer {token}")
            except Unauthenticated:
                return True
            return False

        await _until(refused)
        assert time.monotonic() - removed_at < 0.2 + 1.0  # one interval, and some slack
        # No token named an unknown kid: the schedule alone dropped the key.
        assert (await verifier.verify(f"Bearer {_token(key=FOREIGN_KEY, kid='realm-2')}")).sub
    finally:
        await cache.stop()
    fetches = idp.fetches
    await asyncio.sleep(0.5)
    assert idp.fetches == fetches  # stopped: no more fetches


async def test_allow_remembered_tokens_across_a_refresh_that_changes_nothing(
    idp: Idp, jwks_client: httpx.AsyncClient
) -> None:
    cache = await _fetched(jwks_client)
    before = cache.current("realm-1")
    assert await cache.refresh()
    assert cache.current("realm-1") is before and idp.fetches == 2


async def test_allow_the_old_keys_when_a_scheduled_refresh_fails(
    idp: Idp, jwks_client: httpx.AsyncClient
) -> None:
    cache = await _fetched(jwks_client, 0.05)
    verifier = TokenVerifier(cache, ISSUER, AUDIENCE, ["RS256"], leeway_s=5)
    idp.down = True
    cache.start()
    try:
        await asyncio.sleep(0.3)  # several refreshes, each failing
        assert (await verifier.verify(f"Bearer {_token(_claims(sub='svc-9'))}")).sub == "svc-9"
    finally:
        await cache.stop()


@pytest.mark.parametrize(
    "document",
    [{"keys": []}, {"keys": "x"}, [], {"keys": [{"kid": "k", "kty": "nope"}, 7, {"kty": "RSA"}]}],
)
async def test_allow_the_old_keys_when_the_jwks_has_no_usable_key(
    idp: Idp, jwks_client: httpx.AsyncClient, document: Any
) -> None:
    cache = await _fetched(jwks_client)
    idp.document = document
    assert not await cache.refresh()
    assert cache.current("realm-1") is not None


async def test_deny_a_token_whose_alg_is_not_its_jwks_alg(
    idp: Idp, jwks_client: httpx.AsyncClient
) -> None:
    # RS256 and PS256 both fit an RSA key; the JWK names RS384, so neither may use it.
    idp.keys = [_jwk(REALM_KEY, "realm-1", alg="RS384")]
    cache = await _fetched(jwks_client)
    verifier = TokenVerifier(cache, ISSUER, AUDIENCE, ["RS256", "RS384", "PS256"], leeway_s=5)
    for alg in ("RS256", "PS256"):
        assert "does not fit its key" in await _refused(verifier, _token(alg=alg))
    assert (await verifier.verify(f"Bearer {_token(alg='RS384')}")).sub == "svc-1"


async def test_allow_any_fitting_alg_for_a_jwk_that_names_none(
    idp: Idp, jwks_client: httpx.AsyncClient
) -> None:
    idp.keys = [_jwk(REALM_KEY, "realm-1", alg=None)]
    cache = await _fetched(jwks_client)
    verifier = TokenVerifier(cache, ISSUER, AUDIENCE, ["RS256", "PS256"], leeway_s=5)
    for alg in ("RS256", "PS256"):
        token = _token(_claims(sub=alg), alg=alg)
        assert (await verifier.verify(f"Bearer {token}")).sub == alg


async def test_on_demand_fetches_share_one_floor(idp: Idp, jwks_client: httpx.AsyncClient) -> None:
    cache = JwksCache(jwks_client, JWKS_URL, refetch_floor_s=60.0, refresh_interval_s=3600.0)
    idp.down = True
    assert not await cache.refresh()  # start-up, with Keycloak down
    results = [await cache.refetch() for _ in range(20)]  # a /readyz flood
    assert results == [False] * 20
    idp.down = False
    assert await cache.key("unknown") is None  # within the floor: no fetch either
    assert not cache.has_keys and idp.fetches == 0


async def test_the_first_on_demand_fetch_is_not_delayed(
    idp: Idp, jwks_client: httpx.AsyncClient
) -> None:
    cache = JwksCache(jwks_client, JWKS_URL, refetch_floor_s=60.0, refresh_interval_s=3600.0)
    assert await cache.refetch() and idp.fetches == 1
    assert await cache.refetch() and idp.fetches == 1  # within the floor: what it holds


@pytest.mark.parametrize(
    "header",
    [{"alg": "A" * 6_000_000}, {"alg": "\u2028<script>\x00" * 1000}, {"alg": ["RS256"]},
     {"alg": {"x": 1}}, {"crit": ["e" * 100_000], "e" * 100_000: 1}],
    ids=["6MB", "control-characters", "list", "object", "crit"],
)  # fmt: skip
async def test_deny_odd_header_values_without_echoing_them(
    verifier: TokenVerifier, header: dict[str, Any]
) -> None:
    forged = (
        f"{_b64({'typ': 'JWT', 'kid': 'realm-1', 'alg': 'RS256'} | header)}.{_b64(_claims())}.c2ln"
    )
    message = await _refused(verifier, forged)
    assert len(message) < 200
    assert "AAAA" not in message and "<script>" not in message and "eeee" not in message


def test_shown_is_bounded_ascii_and_printable() -> None:
    assert shown("plain words") == "plain words"
    assert shown("x" * 500) == "x" * 120 + "..."
    assert shown("a\u2028b\x00c\n") == "a\\u2028b?c?"
    assert len(shown("\u00e9" * 500)) == 123 and shown("\u00e9" * 500).isascii()
