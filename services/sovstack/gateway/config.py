"""The one settings class of the gateway, and the one way to get it.

Settings come from the environment (prefix ``SOVSTACK_``; nested values as
JSON, e.g. ``SOVSTACK_UPSTREAMS='[...]'``) or from a YAML file named by
``SOVSTACK_CONFIG_FILE`` / ``sovstack gateway --config``; the environment wins.
Nothing else in the code reads the environment. Start-up is refused, with the
setting named, when the issuer, OPA, audit or upstream settings are missing,
or when an algorithm is not asymmetric. Key files are checked when loaded: a
placeholder or malformed key refuses start-up (sovstack.audit.keys).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from sovstack.gateway.endpoints import OpaEndpoint, is_loopback, parse_opa_url
from sovstack.gateway.protocol import NEVER_FORWARDED, VLLM_EXTENSIONS

__all__ = ["CONFIG_FILE_ENV", "Replica", "Settings", "get_settings"]

CONFIG_FILE_ENV = "SOVSTACK_CONFIG_FILE"
MAX_WORKERS = 64

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class Replica(BaseModel):
    """One vLLM replica serving one model, and where it runs."""

    id: str
    model: str
    url: str
    site: str
    jurisdiction: str = ""
    hosting: str = "on-prem"
    weights_digest: str | None = None
    # The replica's vLLM --api-key, in a file only the gateway may read (0600);
    # sent as 'Authorization: Bearer' on every request and health probe.
    api_key_file: Path | None = None
    # The energy agent beside the replica (``sovstack energy-agent``, installed by the
    # vllm role on GPU nodes), polled in the background; None: the node has no counter.
    energy_url: str | None = None
    # A replica larger than a node (vLLM across nodes): each of its nodes and that
    # node's site. It is still one replica here (one URL, its first node's API); the
    # policy refuses it unless every node's site may take the request.
    nodes: dict[str, str] | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOVSTACK_", extra="forbid", frozen=True)

    # --- where it listens
    host: str = "127.0.0.1"
    port: int = 8443
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Plain HTTP only when asked for, and then only on loopback.
    allow_plain_http: bool = False

    # --- authentication: tokens are verified locally against the realm's JWKS
    oidc_issuer: str
    oidc_audience: str = "sovstack-gateway"
    oidc_jwks_url: str | None = None
    oidc_algorithms: list[str] = ["RS256", "PS256", "ES256"]
    oidc_leeway_s: int = 30
    jwks_refetch_floor_s: float = 30.0
    # The CA that signed Keycloak's and the upstreams' certificates (None: system CAs).
    ca_file: Path | None = None

    # --- identity
    # Seconds between scheduled JWKS fetches: a key removed from the realm stops
    # verifying within this long (while Keycloak answers).
    jwks_refresh_interval_s: float = Field(default=300.0, gt=0.0)

    # --- authorization
    # scheme://host[:port][/path], honoured as given; plain http on loopback only.
    opa_url: str
    opa_decision_path: str = "sovstack/decision"
    opa_models_path: str = "sovstack/visible_models"
    opa_timeout_s: float = 0.5
    # Seconds a decision is reused for an identical input (0: ask OPA every time).
    # While on, a decision may outlive a policy change or OPA itself by this long.
    decision_cache_ttl_s: float = Field(default=0.0, ge=0.0, le=60.0)

    # --- audit
    audit_dir: Path
    audit_signing_key: Path
    audit_origin: str = "sovstack-gateway"
    # The site key file ('sovstack audit keygen --site-key'); needed only when a
    # policy asks to keep content, which is refused while it is missing.
    audit_site_key_file: Path | None = None

    # --- upstreams
    upstreams: Annotated[list[Replica], Field(min_length=1)]
    upstream_connect_timeout_s: float = 2.0
    upstream_read_timeout_s: float = 300.0
    health_interval_s: float = 5.0
    # How often each replica's energy agent is read (gateway/sampler.py).
    energy_sample_interval_s: float = Field(default=0.5, ge=0.05, le=60.0)

    # --- limits
    max_body_bytes: int = 1 << 20
    max_concurrent_requests: int = 256
    rate_limit_per_client: float = 50.0  # requests per second, sustained
    rate_limit_burst: int = 100
    max_tokens_limit: int = 4096
    max_n: int = 4

    # --- abuse limits (gateway/server.py, gateway/connections.py, gateway/refusals.py)
    # The request line and headers together, and how many headers: over either, 431.
    max_header_bytes: int = Field(default=32 << 10, ge=4 << 10, le=1 << 20)
    max_header_count: int = Field(default=100, ge=16, le=1000)
    # From a connection's start (or a request's first byte) to the end of its headers.
    header_read_timeout_s: float = Field(default=10.0, gt=0.0, le=300.0)
    # From the end of the headers to the end of the body: past it, 408 (slow body).
    body_read_timeout_s: float = Field(default=30.0, gt=0.0, le=600.0)
    # An idle keep-alive connection is closed after this long.
    keep_alive_timeout_s: int = Field(default=5, ge=1, le=300)
    # Requests in flight per client, beside max_concurrent_requests for all.
    max_in_flight_per_client: int = Field(default=64, ge=1)
    # Refusals of callers not authenticated: each source may leave this many
    # records of its own per interval; more are counted in one summary record
    # per source and interval (so a flood grows the log by a bounded amount).
    refusal_records_per_interval: int = Field(default=60, ge=1, le=10_000)
    refusal_interval_s: float = Field(default=60.0, ge=1.0, le=3600.0)
    # Serve /metrics on this address only (then the main port answers 404 for it).
    metrics_host: str | None = None
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # --- request body (gateway/protocol.py): what a body may hold and what is sent on
    # The token cap sent when neither the client nor the policy sets one.
    default_max_tokens: int = Field(default=512, ge=1)
    # vLLM's own request fields to forward, by name (protocol.VLLM_EXTENSIONS);
    # each is checked and, where it changes cost, shown to the policy. None by default.
    vllm_extensions: list[str] = []
    # A field no route knows: refused with 400 naming it, or dropped (never forwarded).
    unknown_fields: Literal["refuse", "drop"] = "refuse"

    # A Server-Timing header on successful responses: the stages done when it goes out.
    server_timing: bool = False

    # --- processes (gateway/workers.py): worker processes sharing the listeners, each
    # with its own audit log; each client's budgets are shared by all of them, the
    # in-flight limit divided; unset: one per core (at most 64 and
    # max_concurrent_requests). 1: one process, no supervisor.
    workers: int | None = Field(default=None, ge=1, le=MAX_WORKERS)

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            if not Path(config_file).is_file():
                raise FileNotFoundError(f"{CONFIG_FILE_ENV}={config_file}: no such file")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: list[str]) -> list[str]:
        bad = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if bad or not algorithms:
            accepted = ", ".join(sorted(ASYMMETRIC_ALGORITHMS))
            raise ValueError(
                f"only asymmetric algorithms are accepted ({accepted}); "
                f"refused: {bad or 'an empty list'}"
            )
        return algorithms

    @model_validator(mode="after")
    def _tls_or_loopback(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        if self.tls_cert is None:
            if not self.allow_plain_http:
                raise ValueError(
                    "no tls_cert/tls_key: the gateway serves HTTPS; "
                    "set allow_plain_http=true to serve plain HTTP on loopback"
                )
            if not is_loopback(self.host):
                raise ValueError(f"plain HTTP is served on loopback only, not on {self.host}")
        return self

    @model_validator(mode="after")
    def _abuse_limits(self) -> Settings:
        if self.max_in_flight_per_client > self.max_concurrent_requests:
            raise ValueError(
                f"max_in_flight_per_client ({self.max_in_flight_per_client}) cannot be more "
                f"than max_concurrent_requests ({self.max_concurrent_requests})"
            )
        if (self.metrics_host is None) != (self.metrics_port is None):
            raise ValueError("metrics_host and metrics_port go together: set both or neither")
        if self.metrics_port is not None:
            if self.metrics_port == self.port:
                # The listener is told apart by its port (gateway/server.py).
                raise ValueError(f"metrics_port must differ from port ({self.port})")
            if self.tls_cert is None and not is_loopback(str(self.metrics_host)):
                raise ValueError(
                    f"plain HTTP is served on loopback only, not on {self.metrics_host}"
                )
        return self

    @model_validator(mode="after")
    def _workers_share_the_limit(self) -> Settings:
        # The gateway's own in-flight limit is divided among the workers (rounding down).
        if self.workers is not None and self.workers > self.max_concurrent_requests:
            raise ValueError(
                f"max_concurrent_requests ({self.max_concurrent_requests}) is divided among "
                f"the workers and cannot be less than workers ({self.workers})"
            )
        return self

    def worker_count(self) -> int:
        """How many worker processes serve: ``workers``, or one per core this process may use."""
        if self.workers is not None:
            return self.workers
        cores = len(os.sched_getaffinity(0))
        return max(1, min(cores, MAX_WORKERS, self.max_concurrent_requests))

    @field_validator("vllm_extensions")
    @classmethod
    def _known_extensions(cls, names: list[str]) -> list[str]:
        never = sorted(set(names) & NEVER_FORWARDED)
        if never:
            raise ValueError(f"these vLLM fields are never forwarded: {', '.join(never)}")
        unknown = sorted(set(names) - set(VLLM_EXTENSIONS))
        if unknown:
            known = ", ".join(sorted(VLLM_EXTENSIONS))
            raise ValueError(f"unknown vLLM fields {', '.join(unknown)}; known: {known}")
        return names

    @model_validator(mode="after")
    def _default_cap_within_limit(self) -> Settings:
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError(
                f"default_max_tokens ({self.default_max_tokens}) is over "
                f"max_tokens_limit ({self.max_tokens_limit})"
            )
        return self

    @field_validator("opa_url")
    @classmethod
    def _opa_url(cls, url: str) -> str:
        parse_opa_url(url)  # its ValueError names what is wrong
        return url

    @property
    def opa(self) -> OpaEndpoint:
        """Where OPA is: ``opa_url`` parsed (it was checked when the settings were made)."""
        return parse_opa_url(self.opa_url)

    @property
    def jwks_url(self) -> str:
        return self.oidc_jwks_url or f"{self.oidc_issuer}/protocol/openid-connect/certs"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # required fields come from the environment
