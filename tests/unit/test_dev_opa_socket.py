"""`make dev` serves OPA's API on a Unix socket in its state folder, where the path fits."""

from __future__ import annotations

import os
from pathlib import Path

from sovstack.core.paths import Paths
from sovstack.devstack import stack
from sovstack.gateway.config import Settings


def _settings(opa_url: str) -> Settings:
    return Settings(
        oidc_issuer="http://127.0.0.1:8180/realms/plant",
        opa_url=opa_url,
        audit_dir="/srv/audit",
        audit_signing_key="/srv/audit.key",
        upstreams=[{"id": "r", "model": "m", "url": "http://127.0.0.1:1", "site": "a"}],
        allow_plain_http=True,
    )


def test_the_socket_is_in_the_state_folder_and_the_gateway_takes_its_url(
    tmp_path: Path,
) -> None:
    said: list[str] = []
    socket = stack.opa_socket(Paths(tmp_path, tmp_path / ".sovstack"), said.append)
    assert socket == tmp_path.resolve() / ".sovstack" / "opa.sock"
    assert said == []
    assert _settings(f"unix://{socket}").opa.socket == str(socket)


def test_a_state_folder_too_deep_for_a_socket_falls_back_to_tcp_and_says_so(
    tmp_path: Path,
) -> None:
    deep = tmp_path / ("d" * (108 - len(os.fsencode(tmp_path))))
    said: list[str] = []
    assert stack.opa_socket(Paths(tmp_path, deep), said.append) is None
    assert len(said) == 1 and "127.0.0.1 instead" in said[0] and str(deep) in said[0]


def test_a_path_of_107_bytes_is_still_a_socket(tmp_path: Path) -> None:
    # sun_path holds 108 bytes with its NUL: 107 is the longest path that fits.
    state = tmp_path / ("d" * (107 - len(os.fsencode(tmp_path)) - len("//opa.sock")))
    socket = stack.opa_socket(Paths(tmp_path, state), lambda _: None)
    assert socket is not None and len(os.fsencode(socket)) == 107
