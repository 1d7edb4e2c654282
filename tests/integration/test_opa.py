"""The real OPA server answers queries on the policy it was given."""

from __future__ import annotations

import httpx

from tests.integration.conftest import Served


def _query(opa: Served, role: str) -> dict[str, object]:
    response = httpx.post(
        f"{opa.url}/v1/data/fixture/gate/allow", json={"input": {"role": role}}, trust_env=False
    )
    response.raise_for_status()
    body: dict[str, object] = response.json()
    return body


def test_opa_allows_a_role_the_data_lists(opa_server: Served) -> None:
    assert _query(opa_server, "engineer")["result"] is True


def test_opa_denies_a_role_the_data_does_not_list(opa_server: Served) -> None:
    assert _query(opa_server, "operator")["result"] is False


def test_opa_answers_an_undefined_rule_without_a_result(opa_server: Served) -> None:
    # Callers must treat this as deny: there is no `result` key at all.
    response = httpx.post(
        f"{opa_server.url}/v1/data/fixture/gate/no_such_rule", json={"input": {}}, trust_env=False
    )
    assert response.status_code == 200
    assert "result" not in response.json()


def test_opa_health_reports_ok(opa_server: Served) -> None:
    assert httpx.get(f"{opa_server.url}/health", trust_env=False).status_code == 200
