"""The OpenAPI document in the repository describes the gateway the app really is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.routing import Route

from sovstack.gateway import errors
from sovstack.gateway.app import create_app
from sovstack.gateway.config import Settings

DOCUMENT = Path(__file__).resolve().parents[3] / "services/sovstack/gateway/openapi.yaml"
INFERENCE = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
# What a client can be told on an inference route: each a GatewayError, or a
# transport limit (408 slow request, 431 headers too large, 504 replica timeout).
ERROR_STATUSES = {"400", "401", "403", "404", "408", "413", "429", "431", "502", "503", "504"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text())
    return loaded


def _app_routes(tmp_path: Path) -> set[tuple[str, str]]:
    settings = Settings(
        oidc_issuer="http://127.0.0.1:1/realms/plant",
        opa_url="http://127.0.0.1:1",
        audit_dir=tmp_path / "audit",
        audit_signing_key=tmp_path / "audit.key",
        upstreams=[{"id": "r", "model": "m", "url": "http://127.0.0.1:1", "site": "a"}],
        allow_plain_http=True,
    )
    app = create_app(settings)  # routes only: the state opens in the lifespan, not here
    found = set()
    for route in app.routes:
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":  # Starlette answers HEAD for every GET by itself
                found.add((route.path, method))
    return found


def test_the_document_names_exactly_the_routes_of_the_app(
    document: dict[str, Any], tmp_path: Path
) -> None:
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    assert documented == _app_routes(tmp_path)


def test_inference_routes_take_a_bearer_token_and_the_classification_header(
    document: dict[str, Any],
) -> None:
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    header = document["components"]["parameters"]["DataClassification"]
    assert (header["name"], header["in"]) == ("X-Data-Classification", "header")
    for path in INFERENCE:
        operation = document["paths"][path]["post"]
        assert operation["security"] == [{"bearer": []}]
        assert operation["parameters"] == [{"$ref": "#/components/parameters/DataClassification"}]
        assert operation["requestBody"]["required"] is True
    assert document["paths"]["/v1/models"]["get"]["security"] == [{"bearer": []}]


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_every_error_an_inference_route_gives_is_documented_in_openai_shape(
    document: dict[str, Any],
) -> None:
    raised = {
        str(cls.status) for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.GatewayError)
        and cls is not errors.GatewayError
    }  # fmt: skip
    assert raised <= ERROR_STATUSES
    shape = document["components"]["schemas"]["ErrorResponse"]
    assert shape["properties"]["error"]["required"] == ["message", "type", "param", "code"]
    for path in INFERENCE:
        responses = document["paths"][path]["post"]["responses"]
        assert set(responses) == {"200"} | ERROR_STATUSES, path
        for status in ERROR_STATUSES:
            schema = _resolve(document, responses[status])["content"]["application/json"]
            assert schema["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}, status


def test_request_bodies_refuse_fields_they_do_not_name(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in ("ChatCompletionRequest", "CompletionRequest", "EmbeddingRequest"):
        assert schemas[name]["additionalProperties"] is False, name
    chat = schemas["ChatCompletionRequest"]
    assert set(chat["required"]) == {"model", "messages"}
    assert {"max_tokens", "stream", "stream_options", "temperature"} <= set(chat["properties"])
