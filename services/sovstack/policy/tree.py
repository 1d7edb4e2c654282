"""The layout of ``policies/``: which files are Rego, tests, data, controls.

``policies/<package path>/*.rego``  a package per directory (Regal checks it);
``*_test.rego``                     the tests beside each policy, never bundled;
``policies/data/*.json``            the plant's policy data, each file a part of
                                    one tree (deep-merged; a key set twice is an error);
``policies/controls/``              the compliance control catalogue;
``policies/opa-config.yaml``        the OPA server configuration the project ships.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sovstack.policy.tools import PolicyError

__all__ = ["PolicyTree", "merge_data"]

TEST_SUFFIX = "_test.rego"


def merge_data(parts: list[tuple[str, Any]]) -> dict[str, Any]:
    """Deep-merge the JSON objects of the data files; a value set twice is an error."""
    merged: dict[str, Any] = {}

    def into(target: dict[str, Any], value: dict[str, Any], where: str, src: str) -> None:
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if isinstance(item, dict) and isinstance(target.get(key), dict):
                into(target[key], item, path, src)
            elif key in target:
                raise PolicyError(f"policy data {path} is set twice: again in {src}")
            else:
                target[key] = item

    for src, value in parts:
        if not isinstance(value, dict):
            raise PolicyError(f"{src} must hold a JSON object")
        into(merged, value, "", src)
    return merged


@dataclass(frozen=True)
class PolicyTree:
    """The policies folder of a checkout."""

    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def controls_dir(self) -> Path:
        return self.root / "controls"

    @property
    def opa_config(self) -> Path:
        return self.root / "opa-config.yaml"

    def rego_files(self, tests: bool = True) -> list[Path]:
        """Every Rego file outside hidden folders, with or without the tests."""
        found = [
            p
            for p in sorted(self.root.rglob("*.rego"))
            if not any(part.startswith(".") for part in p.relative_to(self.root).parts)
        ]
        return [p for p in found if tests or not p.name.endswith(TEST_SUFFIX)]

    def rego_dirs(self) -> list[Path]:
        """The top-level folders holding Rego (one per root package, e.g. sovstack, system)."""
        tops = {p.relative_to(self.root).parts[0] for p in self.rego_files()}
        return [self.root / top for top in sorted(tops) if (self.root / top).is_dir()]

    def data_files(self) -> list[Path]:
        return sorted(self.data_dir.glob("*.json"))

    def data(self) -> dict[str, Any]:
        """The policy data, merged from every file in data/."""
        parts: list[tuple[str, Any]] = []
        for path in self.data_files():
            try:
                parts.append((path.name, json.loads(path.read_text())))
            except ValueError as exc:
                raise PolicyError(f"{path} is not valid JSON: {exc}") from exc
        if not parts:
            raise PolicyError(f"no policy data in {self.data_dir}")
        return merge_data(parts)

    def opa_load_paths(self) -> list[Path]:
        """What `opa test` and `opa check` load: the Rego folders and the data folder."""
        return [*self.rego_dirs(), self.data_dir]
