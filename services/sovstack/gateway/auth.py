"""Authenticate a bearer token: a Keycloak-issued JWT, verified locally.

Keys come from the realm's JWKS through :class:`~sovstack.gateway.jwks.JwksCache`
(refreshed on a schedule and on an unknown ``kid``; see there).

A token is accepted only if all hold: the header's ``alg`` is in the
asymmetric allowlist, matches the key's type and, when the JWK names its own
``alg``, is that one; its ``kid`` names a JWKS key; the signature verifies;
``iss`` is exactly the issuer; ``aud`` contains the gateway's audience;
``exp``, ``nbf`` and ``iat`` hold within a small leeway; the payload ``typ``
is ``Bearer``. ``jku``, ``x5u``, ``jwk`` and ``x5c`` headers are never
followed: keys come from the configured JWKS only. Nothing read from an
unverified token is copied into a refusal's message (which the audit record
keeps) except through :func:`shown`, bounded and escaped.

A token that passed all of this is remembered (by its exact text, bounded)
until it expires, so that a client sending the same token again costs a dict
lookup rather than a signature check. A remembered token is still refused
once it has expired, or once its key is no longer in the realm's JWKS.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt

from sovstack.gateway.errors import Unauthenticated
from sovstack.gateway.jwks import JwksCache, RealmKey

__all__ = ["Subject", "TokenVerifier", "shown"]

_KTY_FOR_ALG = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}

# The most characters of a refusal's detail that reach a message or a record.
SHOWN_LIMIT = 120


def shown(text: str, limit: int = SHOWN_LIMIT) -> str:
    """``text`` as it may appear in a message: ASCII, escaped, at most ``limit`` characters.

    For anything an unverified token (or a library reading one) put into a
    string: a 6 MB header value must not become a 6 MB audit record.
    """
    escaped = text[:limit].encode("ascii", "backslashreplace").decode("ascii")
    escaped = "".join(c if c.isprintable() else "?" for c in escaped)
    cut = len(text) > limit or len(escaped) > limit
    return escaped[:limit] + "..." if cut else escaped


@dataclass(frozen=True)
class Subject:
    """Who is calling, as the policy sees them."""

    sub: str
    client_id: str
    roles: tuple[str, ...]
    site: str | None
    clearance: str | None
    groups: tuple[str, ...] = ()
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def as_input(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "client_id": self.client_id,
            "roles": list(self.roles),
            "site": self.site,
            "clearance": self.clearance,
            "groups": list(self.groups),
        }


@dataclass(frozen=True)
class _Verified:
    subject: Subject
    kid: str
    key: RealmKey  # the very key object: a refetch that changes or drops the key makes a new one
    expires: float


class TokenVerifier:
    # Enough for every client of a plant several times over; when full, the
    # oldest entry goes (a flood of new valid tokens only costs signature checks).
    MAX_REMEMBERED = 4096

    def __init__(
        self, jwks: JwksCache, issuer: str, audience: str, algorithms: list[str], leeway_s: int
    ) -> None:
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._algorithms = list(algorithms)
        self._leeway = leeway_s
        self._verified: dict[str, _Verified] = {}

    async def verify(self, authorization: str | None) -> Subject:
        token = _bearer(authorization)
        known = self._verified.get(token)
        if known is not None:
            fresh = time.time() < known.expires + self._leeway
            if fresh and self._jwks.current(known.kid) is known.key:
                return known.subject
            del self._verified[token]  # verified in full below, with the reason if refused
        verified = await self._verify(token)
        if len(self._verified) >= self.MAX_REMEMBERED:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = verified
        return verified.subject

    async def _verify(self, token: str) -> _Verified:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("the bearer token is malformed", code="invalid_token") from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            # The value itself is never echoed: it is the sender's, unbounded.
            raise Unauthenticated(
                f"the token's algorithm is not one of {', '.join(self._algorithms)}",
                code="invalid_token",
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the token names no signing key (kid)", code="invalid_token")
        key = await self._jwks.key(kid)
        if key is None:
            raise Unauthenticated(
                "the token's signing key is not the realm's", code="invalid_token"
            )
        if _KTY_FOR_ALG.get(alg[:2]) != key.jwk.key_type or key.alg not in (None, alg):
            raise Unauthenticated(
                "the token's algorithm does not fit its key", code="invalid_token"
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.jwk.key,
                algorithms=[alg],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"], "strict_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("the token has expired", code="token_expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthenticated("the token is not valid yet", code="invalid_token") from exc
        except jwt.PyJWTError as exc:
            # PyJWT's messages may carry header values (an unknown 'crit' extension).
            raise Unauthenticated(
                f"the token was refused: {shown(str(exc))}", code="invalid_token"
            ) from exc
        if claims.get("typ") != "Bearer":
            raise Unauthenticated("the token is not an access token", code="invalid_token")
        return _Verified(_subject(claims), kid, key, float(claims["exp"]))


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("a bearer token is required", code="missing_token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "the Authorization header must be 'Bearer <token>'", code="missing_token"
        )
    return token.strip()


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _subject(claims: dict[str, Any]) -> Subject:
    roles = list(_strings((claims.get("realm_access") or {}).get("roles")))
    for client, access in (claims.get("resource_access") or {}).items():
        roles += [f"{client}:{r}" for r in _strings((access or {}).get("roles"))]
    site, clearance = claims.get("site"), claims.get("clearance")
    return Subject(
        sub=str(claims["sub"]),
        client_id=str(claims.get("azp") or claims.get("client_id") or ""),
        roles=tuple(dict.fromkeys(roles)),
        site=site if isinstance(site, str) else None,
        clearance=clearance if isinstance(clearance, str) else None,
        groups=_strings(claims.get("groups")),
        claims=claims,
    )
