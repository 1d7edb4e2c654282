"""The gateway refuses to start on missing or unsafe settings, naming the setting."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from sovstack.cli import cli
from sovstack.gateway.config import Settings

UPSTREAM = [
    {"id": "gpu-1", "model": "tiny-llama", "url": "http://127.0.0.1:8100", "site": "plant-a"}
]


def _settings(**over: Any) -> Settings:
    base: dict[str, Any] = {
        "oidc_issuer": "http://127.0.0.1:8180/realms/plant",
        "opa_url": "http://127.0.0.1:8181",
        "audit_dir": "/srv/audit",
        "audit_signing_key": "/srv/audit.key",
        "upstreams": UPSTREAM,
        "allow_plain_http": True,
    }
    return Settings(**(base | over))


def test_defaults_are_safe() -> None:
    s = _settings()
    assert s.oidc_algorithms == ["RS256", "PS256", "ES256"]
    assert s.jwks_url == "http://127.0.0.1:8180/realms/plant/protocol/openid-connect/certs"
    assert s.jwks_refresh_interval_s == 300.0  # a removed realm key verifies 5 min at most


@pytest.mark.parametrize("interval", [0, -1])
def test_a_jwks_refresh_interval_that_never_comes_is_refused(interval: float) -> None:
    with pytest.raises(ValidationError, match="jwks_refresh_interval_s"):
        _settings(jwks_refresh_interval_s=interval)


def test_the_gateways_own_default_classification_is_gone() -> None:
    # The policy gives each client its default: a gateway-wide one would hide a missing header.
    with pytest.raises(ValidationError, match="default_data_classification"):
        _settings(default_data_classification="internal")


@pytest.mark.parametrize(
    "missing", ["oidc_issuer", "opa_url", "audit_dir", "audit_signing_key", "upstreams"]
)
def test_each_required_setting_is_named_when_missing(missing: str) -> None:
    values = {
        "oidc_issuer": "x",
        "opa_url": "x",
        "audit_dir": "/a",
        "audit_signing_key": "/k",
        "upstreams": UPSTREAM,
        "allow_plain_http": True,
    }
    del values[missing]
    with pytest.raises(ValidationError) as caught:
        Settings(**values)  # type: ignore[arg-type]
    assert missing in str(caught.value)


@pytest.mark.parametrize("algs", [["HS256"], ["none"], ["RS256", "HS512"], []])
def test_symmetric_or_none_algorithms_are_refused(algs: list[str]) -> None:
    with pytest.raises(ValidationError, match="only asymmetric"):
        _settings(oidc_algorithms=algs)


def test_plain_http_must_be_asked_for_and_stays_on_loopback() -> None:
    with pytest.raises(ValidationError, match="serves HTTPS"):
        _settings(allow_plain_http=False)
    with pytest.raises(ValidationError, match="loopback only"):
        _settings(host="0.0.0.0")  # noqa: S104 -- the value under test


def test_the_cli_names_missing_settings_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("SOVSTACK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SOVSTACK_CONFIG_FILE", "")  # the CLI sets it; restored after the test
    config = tmp_path / "gateway.yaml"
    config.write_text("opa_url: http://127.0.0.1:8181\nallow_plain_http: true\n")
    from sovstack.gateway.config import get_settings

    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["gateway", "--config", str(config)])
    get_settings.cache_clear()
    assert result.exit_code == 1
    assert "oidc_issuer (SOVSTACK_OIDC_ISSUER): missing" in result.output
    assert "audit_dir" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("url", "tls", "host", "port", "path"),
    [
        ("http://127.0.0.1:8181", False, "127.0.0.1", 8181, ""),
        ("https://opa.plant.example", True, "opa.plant.example", 443, ""),
        ("https://opa.plant.example:9443/opa/", True, "opa.plant.example", 9443, "/opa"),
        ("http://localhost/policy", False, "localhost", 80, "/policy"),
        ("http://[::1]:8181", False, "[::1]", 8181, ""),
    ],
)
def test_the_opa_url_is_honoured_as_given(
    url: str, tls: bool, host: str, port: int, path: str
) -> None:
    opa = _settings(opa_url=url).opa
    assert (opa.tls, opa.host, opa.port, opa.path) == (tls, host, port, path)


@pytest.mark.parametrize(
    "path", ["/run/opa/opa.sock", "/" + "s" * 101 + ".sock"], ids=["opa-role", "107-bytes"]
)
def test_a_unix_socket_opa_url_is_asked_over_plain_http_on_that_socket(path: str) -> None:
    opa = _settings(opa_url=f"unix://{path}").opa
    assert (opa.socket, opa.tls) == (path, False)
    assert opa.health_url == "http://localhost/health"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://10.0.0.5:8181", "plain HTTP to OPA only on loopback"),
        ("http://opa.plant.example:8181", "plain HTTP to OPA only on loopback"),
        ("127.0.0.1:8181", "the scheme must be http, https or unix"),
        ("ftp://127.0.0.1/opa", "the scheme must be http, https or unix"),
        ("unix://run/opa/opa.sock", "unix:///absolute/path"),
        ("unix://opa.sock", "unix:///absolute/path"),
        ("unix:///run/opa/opa.sock?x=1", r"scheme://host\[:port\]\[/path\] only"),
        ("unix:///" + "s" * 104 + ".sock", "at most 107 bytes"),
        ("https://", "names no host"),
        ("https://user:pw@opa.plant.example", r"scheme://host\[:port\]\[/path\] only"),
        ("http://127.0.0.1:99999", "out of range"),
    ],
)
def test_an_unsafe_or_unusable_opa_url_is_refused(url: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        _settings(opa_url=url)


def test_request_body_defaults_forward_no_vllm_field_and_cap_tokens() -> None:
    s = _settings()
    assert s.vllm_extensions == [] and s.unknown_fields == "refuse"
    assert 1 <= s.default_max_tokens <= s.max_tokens_limit


@pytest.mark.parametrize(
    ("over", "says"),
    [
        ({"vllm_extensions": ["ignore_eos", "no_such_field"]}, "unknown vLLM fields no_such_field"),
        ({"vllm_extensions": ["vllm_xargs"]}, "never forwarded: vllm_xargs"),
        ({"vllm_extensions": ["request_id"]}, "never forwarded: request_id"),
        ({"default_max_tokens": 5000}, "default_max_tokens (5000) is over max_tokens_limit"),
        ({"unknown_fields": "forward"}, "unknown_fields"),
    ],
)
def test_unsafe_request_body_settings_refuse_start(over: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(says)):
        _settings(**over)
