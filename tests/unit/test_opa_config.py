"""The OPA configuration the project ships keeps every decision on site."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from sovstack.core.paths import Paths
from sovstack.policy.tree import PolicyTree

# Every key of OPA's configuration that makes it talk to another machine.
REMOTE_KEYS = {"services", "bundles", "discovery", "status", "keys", "distributed_tracing"}


@pytest.fixture
def config(project_paths: Paths) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        PolicyTree(project_paths.policies).opa_config.read_text()
    )
    return loaded


def test_the_opa_config_names_no_remote_service(config: dict[str, Any]) -> None:
    assert set(config) == {"decision_logs", "labels"}
    assert not REMOTE_KEYS & set(config)
    assert "service" not in config["decision_logs"]
    assert "plugin" not in config["decision_logs"]


def test_every_decision_is_logged_on_site(config: dict[str, Any]) -> None:
    assert config["decision_logs"]["console"] is True
    assert config["decision_logs"]["mask_decision"] == "/system/log/mask"


def test_the_mask_rule_the_config_names_exists(
    project_paths: Paths, config: dict[str, Any]
) -> None:
    package = config["decision_logs"]["mask_decision"].strip("/").rsplit("/", 1)[0]
    policy = project_paths.policies / package / "mask.rego"
    assert f"package {package.replace('/', '.')}\n" in policy.read_text()
    assert "\nmask contains " in policy.read_text()
