"""LiteLLM's proxy as the bench's peer: a master key, no database, nothing sent out.

Installed by ``make bench-litellm`` into ``.cache/bench-litellm`` (its own
virtualenv, hash-checked pins in bench/litellm-requirements.txt). It runs only
inside the bench's network namespace (bench/netns.py): even switched off, a
LiteLLM import tries to fetch its model cost map from the internet unless
``LITELLM_LOCAL_MODEL_COST_MAP`` is set, so the switches below are a second
line, not the guard. Its config has one model (the stub, by OpenAI's API),
a master key, no callbacks, no telemetry.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import yaml

from sovstack.core.services import Launch

__all__ = ["LITELLM_VENV", "QUIET_ENV", "available", "launch"]

LITELLM_VENV = Path(".cache") / "bench-litellm"
QUIET_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_MODE": "PRODUCTION",  # no .env loaded from wherever it starts
    "LITELLM_LOG": "ERROR",
    "DISABLE_ADMIN_UI": "True",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def available(root: Path) -> Path | None:
    """The ``litellm`` console script of the bench's virtualenv, if it is installed."""
    script = root / LITELLM_VENV / "bin" / "litellm"
    return script if script.is_file() else None


def launch(
    script: Path, work: Path, port: int, upstream_url: str, model: str
) -> tuple[Launch, str]:
    """The proxy in front of ``upstream_url`` (OpenAI API) as ``model``; and its master key."""
    master_key = f"sk-bench-{secrets.token_hex(16)}"
    work.mkdir(parents=True, exist_ok=True)
    config = {
        "model_list": [{
            "model_name": model,
            "litellm_params": {"model": f"openai/{model}", "api_base": f"{upstream_url}/v1",
                               "api_key": "stub"},
        }],
        "general_settings": {"master_key": master_key},
        "litellm_settings": {"callbacks": [], "success_callback": [], "failure_callback": [],
                             "telemetry": False, "turn_off_message_logging": True},
    }  # fmt: skip
    (work / "litellm.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return Launch(
        name="litellm", port=port, cwd=work, env=QUIET_ENV,
        ready_url=f"http://127.0.0.1:{port}/health/liveliness", ready_timeout=180.0,
        argv=[str(script), "--config", str(work / "litellm.yaml"), "--host", "127.0.0.1",
              "--port", str(port), "--num_workers", "1"],
    ), master_key  # fmt: skip
