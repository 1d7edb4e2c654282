"""A minimal OpenAI-compatible upstream with a fixed delay, for the gateway benchmark.

It answers like a model that takes ``--delay-ms`` per request, so what the
gateway adds on top is visible. Loopback only; it is a benchmark tool, never a test double.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def make_app(delay_s: float, model: str) -> Starlette:
    async def health(_: Request) -> JSONResponse:
        return JSONResponse({})

    async def chat(request: Request) -> JSONResponse:
        await request.body()
        await asyncio.sleep(delay_s)
        return JSONResponse({
            "id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "finish_reason": "length",
                         "message": {"role": "assistant", "content": "Line 2 is running."}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        })  # fmt: skip

    return Starlette(routes=[
        Route("/health", health),
        Route("/v1/chat/completions", chat, methods=["POST"]),
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--model", default="tiny-llama")
    args = parser.parse_args()
    app = make_app(args.delay_ms / 1000, args.model)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
