"""The realm's signing keys: its JWKS, fetched, parsed and kept fresh.

Fetched at start-up, again on a schedule (``jwks_refresh_interval_s``, by a
task :meth:`JwksCache.start` starts and :meth:`JwksCache.stop` ends: a key
removed from the realm stops verifying within one interval), and on demand
when a token names an unknown ``kid`` or ``/readyz`` finds no keys. On-demand
fetches, together, happen at most once per floor interval
(``jwks_refetch_floor_s``), so a flood of forged kids or readiness probes
cannot hammer Keycloak; the first is never delayed. A fetch that fails keeps
the keys fetched before, so tokens still verify while Keycloak is down (and a
key removed meanwhile verifies until Keycloak answers again).

Only signing keys are kept (``use`` other than ``enc``), each with the ``alg``
its JWK names, which a token's header must then match.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

__all__ = ["JwksCache", "RealmKey"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class RealmKey:
    """One signing key of the realm, and the ``alg`` its JWK names (None: it names none)."""

    jwk: jwt.PyJWK
    alg: str | None
    document: dict[str, Any] = field(repr=False)


def _signing_keys(document: Any, before: dict[str, RealmKey]) -> dict[str, RealmKey]:
    """The usable signing keys of a JWKS document, by kid.

    A key whose JWK is unchanged keeps its object, so that a scheduled refresh
    does not make remembered tokens verify again. No usable key at all is an
    error (the keys fetched before stay in use).
    """
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise ValueError("the JWKS has no 'keys' list")
    found: dict[str, RealmKey] = {}
    for item in keys:
        if not isinstance(item, dict) or item.get("use") == "enc":
            continue
        kid, alg = item.get("kid"), item.get("alg")
        if not isinstance(kid, str) or not kid:
            continue
        old = before.get(kid)
        if old is not None and old.document == item:
            found[kid] = old
            continue
        try:
            jwk = jwt.PyJWK(item)
        except jwt.PyJWTError:
            continue  # a key type or algorithm this gateway cannot use
        found[kid] = RealmKey(jwk, alg if isinstance(alg, str) else None, item)
    if not found:
        raise ValueError("the JWKS has no usable signing key")
    return found


class JwksCache:
    """The realm's signing keys by kid, fetched from its JWKS URL."""

    def __init__(
        self, client: httpx.AsyncClient, url: str, *, refetch_floor_s: float,
        refresh_interval_s: float,
    ) -> None:  # fmt: skip
        self._client = client
        self._url = url
        self._floor = refetch_floor_s
        self._interval = refresh_interval_s
        self._keys: dict[str, RealmKey] = {}
        # On-demand fetches are spaced by the floor; the first is never delayed.
        self._refetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def has_keys(self) -> bool:
        return bool(self._keys)

    async def refresh(self) -> bool:
        """Fetch the JWKS now; keep the old keys if Keycloak cannot be reached."""
        async with self._lock:
            return await self._fetch()

    async def refetch(self) -> bool:
        """Fetch on demand, unless an on-demand fetch was made less than the floor ago.

        True when the keys are there afterwards.
        """
        async with self._lock:
            if time.monotonic() - self._refetched_at >= self._floor:
                self._refetched_at = time.monotonic()
                await self._fetch()
            return self.has_keys

    async def _fetch(self) -> bool:
        try:
            response = await self._client.get(self._url)
            response.raise_for_status()
            self._keys = _signing_keys(response.json(), self._keys)
        except (httpx.HTTPError, ValueError) as exc:
            _log.warning(
                "the realm's JWKS was not fetched (%s); the keys held stay in use",
                type(exc).__name__,
            )
            return False
        return True

    def current(self, kid: str) -> RealmKey | None:
        """The key ``kid`` names in the JWKS as last fetched (no fetch)."""
        return self._keys.get(kid)

    async def key(self, kid: str) -> RealmKey | None:
        found = self._keys.get(kid)
        if found is not None:
            return found
        async with self._lock:
            # Another request may have refetched while this one waited.
            if kid not in self._keys and time.monotonic() - self._refetched_at >= self._floor:
                self._refetched_at = time.monotonic()
                await self._fetch()
            return self._keys.get(kid)

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.refresh()

    def start(self) -> None:
        """Refresh the keys every interval from now on, until :meth:`stop`."""
        self._task = asyncio.create_task(self._every_interval(), name="jwks-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
