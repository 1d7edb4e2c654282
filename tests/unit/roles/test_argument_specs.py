"""Each role's argument spec passes the deploy's own preflight check.

playbooks/tasks/validate_role.yml runs ``validate_argument_spec`` with each
role's spec, and that module fills every option not given from the spec's
``default``, unrendered: a spec default such as ``"{{ x == 'cuda' }}"`` for an
option of type bool is a string there, and refuses every deploy on every node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"
# Types a template string does not convert to (a string converts to a one-item list).
_NOT_FROM_TEXT = {"bool", "int", "float", "dict"}


def _options() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for spec_file in sorted(ROLES.glob("*/meta/argument_specs.yml")):
        options = yaml.safe_load(spec_file.read_text())["argument_specs"]["main"]["options"]
        found += [(spec_file.parents[1].name, name, option) for name, option in options.items()]
    return found


@pytest.mark.parametrize(("role", "name", "option"), _options())
def test_a_spec_default_checks_as_the_preflight_sees_it(
    role: str, name: str, option: dict[str, Any]
) -> None:
    if "default" not in option:
        return
    default = option["default"]
    if option.get("type", "str") in _NOT_FROM_TEXT:
        assert not (isinstance(default, str) and "{{" in default), (
            f"roles/{role}: {name} is of type {option['type']} but its spec default is a"
            " template, which the preflight validates unrendered"
        )
    if "choices" in option:
        assert default in option["choices"], f"roles/{role}: {name}'s default is not a choice"


def test_the_specs_are_read() -> None:
    assert ("vllm", "vllm_energy_agent") in {(role, name) for role, name, _ in _options()}
