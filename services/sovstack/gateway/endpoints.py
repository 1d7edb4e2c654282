"""Where OPA is, from ``opa_url`` as given, and which hosts count as loopback.

``opa_url`` is honoured whole. ``unix:///abs/path.sock`` is OPA's API on a
Unix domain socket (the opa role's ``/run/opa/opa.sock``, which only the
gateway's user may open): plain HTTP, asked at ``/v1/data/...`` and
``/health``. Otherwise ``scheme://host[:port][/path]``: its scheme, host,
port and path (an OPA behind a path prefix is asked at ``<path>/v1/data/...``
and ``<path>/health``); a URL without a port means the scheme's own (80 or
443); nothing falls back to a default address. Plain HTTP to OPA is accepted
only on loopback or a Unix socket, as for the gateway itself; anywhere else
OPA is reached over HTTPS, verified against the system's trust store (a site
CA must be in that store, as the site_pki role puts it).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["SUN_PATH_MAX", "OpaEndpoint", "is_loopback", "parse_opa_url"]

_LOOPBACK_NAMES = frozenset({"localhost"})
# sockaddr_un.sun_path is 108 bytes on Linux, its terminating NUL included.
SUN_PATH_MAX = 107


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
    """OPA's address: ``tls`` (https), ``host`` (bracketed if IPv6), ``port``, ``path`` prefix;
    or ``socket``, the path of a Unix socket (then host is ``localhost`` and port 0)."""

    tls: bool
    host: str
    port: int
    path: str  # "" or "/prefix", no trailing slash
    socket: str | None = None

    @property
    def base_url(self) -> str:
        """The URL the API paths (``/v1/data/...``, ``/health``) are appended to."""
        if self.socket is not None:
            return "http://localhost"  # the connector dials the socket; Host says localhost
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}{self.path}"

    @property
    def health_url(self) -> str:
        return f"{self.base_url}/health"


def _unix(url: str, netloc: str, path: str) -> OpaEndpoint:
    if netloc or not path.startswith("/"):
        raise ValueError(f"opa_url {url!r}: give unix:///absolute/path/to/opa.sock")
    if len(os.fsencode(path)) > SUN_PATH_MAX:
        raise ValueError(
            f"opa_url {url!r}: a Unix socket path is at most {SUN_PATH_MAX} bytes; "
            "use a shorter path"
        )
    return OpaEndpoint(False, "localhost", 0, "", socket=path)


def parse_opa_url(url: str) -> OpaEndpoint:
    """The endpoint ``url`` names; ``ValueError`` saying what is wrong with it otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https", "unix"}:
        raise ValueError(f"opa_url {url!r}: the scheme must be http, https or unix")
    if parts.query or parts.fragment:
        raise ValueError(f"opa_url {url!r}: give scheme://host[:port][/path] only")
    if parts.scheme == "unix":
        return _unix(url, parts.netloc, parts.path)
    if not parts.hostname:
        raise ValueError(f"opa_url {url!r} names no host")
    if parts.username or parts.password:
        raise ValueError(f"opa_url {url!r}: give scheme://host[:port][/path] only")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ValueError(f"opa_url {url!r}: {exc}") from exc
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    tls = parts.scheme == "https"
    if not tls and not is_loopback(parts.hostname):
        raise ValueError(
            f"opa_url {url!r}: plain HTTP to OPA only on loopback or a Unix socket; "
            f"use https for {parts.hostname}"
        )
    return OpaEndpoint(tls, host, port, parts.path.rstrip("/"))
