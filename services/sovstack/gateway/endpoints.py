"""Where OPA is, from ``opa_url`` as given, and which hosts count as loopback.

``opa_url`` is honoured whole: its scheme, host, port and path (an OPA behind
a path prefix is asked at ``<path>/v1/data/...`` and ``<path>/health``). A URL
without a port means the scheme's own (80 or 443); nothing falls back to a
default address. Plain HTTP to OPA is accepted only on loopback, as for the
gateway itself; anywhere else OPA is reached over HTTPS, verified against the
system's trust store (opa-python-client takes no CA file: a site CA must be in
that store, as the site_pki role puts it). A Unix socket is not offered by
opa-python-client and is refused with the rest.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["OpaEndpoint", "is_loopback", "parse_opa_url"]

_LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (not for a name that merely resolves there)."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class OpaEndpoint:
    """OPA's address: ``tls`` (https), ``host`` (bracketed if IPv6), ``port``, ``path`` prefix."""

    tls: bool
    host: str
    port: int
    path: str  # "" or "/prefix", no trailing slash

    @property
    def api_root(self) -> str:
        """The part after ``host:port/`` that opa-python-client's ``version`` gives its API root."""
        return f"{self.path.lstrip('/')}/v1" if self.path else "v1"

    @property
    def health_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}{self.path}/health"


def parse_opa_url(url: str) -> OpaEndpoint:
    """The endpoint ``url`` names; ``ValueError`` saying what is wrong with it otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise ValueError(f"opa_url {url!r}: the scheme must be http or https")
    if not parts.hostname:
        raise ValueError(f"opa_url {url!r} names no host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"opa_url {url!r}: give scheme://host[:port][/path] only")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ValueError(f"opa_url {url!r}: {exc}") from exc
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    tls = parts.scheme == "https"
    if not tls and not is_loopback(parts.hostname):
        raise ValueError(
            f"opa_url {url!r}: plain HTTP to OPA only on loopback; use https for {parts.hostname}"
        )
    return OpaEndpoint(tls, host, port, parts.path.rstrip("/"))
