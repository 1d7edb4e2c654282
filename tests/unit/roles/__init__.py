"""The role tests' helper: a role's own Jinja, rendered as Ansible 2.19 renders it.

No node here runs Ansible, so :class:`RoleVars` stands in for it: native types,
role vars over inventory over role defaults, each variable rendered when first
read, and templates written as the template module writes them (trim_blocks on,
lstrip_blocks off).
"""

from __future__ import annotations

import importlib.util
from collections import ChainMap
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, cast

import jinja2
import yaml
from jinja2.nativetypes import NativeEnvironment, native_concat

ROLES = Path(__file__).resolve().parents[3] / "roles"


def load_role_file(role: str, name: str) -> Any:
    """roles/<role>/files/<name>.py imported as a module (what a node runs, as it runs it)."""
    spec = importlib.util.spec_from_file_location(name, ROLES / role / "files" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_NATIVE = NativeEnvironment(undefined=jinja2.StrictUndefined)


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@cache
def _templates(directory: Path) -> jinja2.Environment:
    """The template module's settings: trim_blocks on, lstrip_blocks off."""
    return jinja2.Environment(  # noqa: S701 (systemd units, not HTML)
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
    )


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class RoleVars(Mapping[str, Any]):
    """A role's variables on one host, each rendered when first read.

    ``layers`` are the host's variables, the first over the rest (e.g. the facts
    Ansible sets, then the inventory's); the role's vars/main.yml is over them
    all and its defaults/main.yml under them all. The layers are kept, not copied:
    ``_layers.maps`` are vars/main.yml, ``layers`` in order, then defaults/main.yml.
    """

    def __init__(self, role: str, *layers: Mapping[str, Any]) -> None:
        self.role = ROLES / role
        self._cache: dict[str, Any] = {}
        self._layers: ChainMap[str, Any] = ChainMap(
            read_yaml(self.role / "vars" / "main.yml"),
            *cast("tuple[dict[str, Any], ...]", layers),  # as given: a test may change one
            read_yaml(self.role / "defaults" / "main.yml"),
        )

    def __getitem__(self, key: str) -> Any:
        if key not in self._cache:
            raw = self._layers[key]
            self._cache[key] = self.render(raw) if _is_template(raw) else raw
        return self._cache[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def render(self, source: str) -> Any:
        """``source`` rendered to a native value, as Ansible renders a variable or a condition."""
        return native_concat(self._run(_NATIVE.from_string(source), _NATIVE))

    def template(self, name: str) -> str:
        """templates/<name> for this host, as the template module writes it."""
        env = _templates(self.role / "templates")
        return "".join(self._run(env.get_template(name), env))

    def _run(self, template: jinja2.Template, env: jinja2.Environment) -> Iterator[str]:
        # shared=True: the template reads this mapping itself, so each variable is rendered
        # only when the template asks for it (a copy would render them all, up front).
        names: Any = ChainMap(cast(Any, self), env.globals)
        return template.root_render_func(template.new_context(names, shared=True))
