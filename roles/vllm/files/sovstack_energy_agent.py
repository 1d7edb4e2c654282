"""The node's GPU energy counter over HTTP, for the gateway's energy sampler.

Installed by the vllm role on cuda nodes (``vllm_energy_agent``) and run with
the vLLM venv's Python, which has ``nvidia-ml-py`` (a vLLM dependency); it
listens on the node's cluster address, beside the replicas. The gateway reads
it in the background (gateway/sampler.py), never on a request's path.

``GET /energy`` answers ``{"energy_mj": N, "devices": K}``: the sum over the
node's GPUs (or those of ``?devices=0,2``, NVML indices, for a replica that
has only some of them) of NVML's total-energy counter
(``nvmlDeviceGetTotalEnergyConsumption``, millijoules since the driver
loaded). Where there is no such counter it answers
``{"energy_mj": null, "reason": "..."}``: NVML missing or failing, no GPU,
or a GPU too old to count energy. Any other path is 404.

It imports nothing but the standard library and, when first asked, pynvml.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Counter", "main", "serve"]


class Counter:
    """NVML, opened once (again after a failure), read under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nvml: Any = None

    def _open(self) -> Any:
        if self._nvml is None:
            import pynvml  # here, not at the top: the agent starts (and says why) without it

            pynvml.nvmlInit()
            self._nvml = pynvml
        return self._nvml

    def read(self, devices: Sequence[int] | None = None) -> dict[str, Any]:
        """The answer to ``GET /energy``, for all GPUs or the given NVML indices."""
        with self._lock:
            try:
                nvml = self._open()
            except ImportError:
                return {"energy_mj": None, "reason": "nvidia-ml-py is not installed"}
            except Exception as exc:  # pynvml's NVMLError family: any of them means no counter
                return {"energy_mj": None, "reason": f"NVML did not start: {exc}"}
            try:
                count = nvml.nvmlDeviceGetCount()
                chosen = list(range(count)) if devices is None else list(devices)
                if not chosen or any(not 0 <= i < count for i in chosen):
                    return {"energy_mj": None, "reason": f"no such GPU (the node has {count})"}
                total = sum(
                    int(nvml.nvmlDeviceGetTotalEnergyConsumption(
                        nvml.nvmlDeviceGetHandleByIndex(i)))
                    for i in chosen
                )  # fmt: skip
            except Exception as exc:  # e.g. NVMLError_NotSupported on a pre-Volta GPU
                self._nvml = None  # open again next time (a driver reload, a lost GPU)
                return {"energy_mj": None, "reason": f"NVML has no energy counter here: {exc}"}
            return {"energy_mj": total, "devices": len(chosen)}


def _devices(query: str) -> list[int] | None:
    values = parse_qs(query).get("devices")
    if not values:
        return None
    return [int(part) for part in values[0].split(",") if part.strip()]


def _handler(counter: Counter) -> type[BaseHTTPRequestHandler]:
    class Energy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/energy":
                self._answer(404, {"error": "not found"})
                return
            try:
                devices = _devices(url.query)
            except ValueError:
                self._answer(400, {"error": "devices takes NVML indices: ?devices=0,1"})
                return
            self._answer(200, counter.read(devices))

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return  # one line per poll would flood the journal

    return Energy


def serve(host: str, port: int, counter: Counter | None = None) -> ThreadingHTTPServer:
    """A server for ``GET /energy`` on ``host:port`` (not yet serving: call serve_forever)."""
    return ThreadingHTTPServer((host, port), _handler(counter or Counter()))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9410)
    args = parser.parse_args(argv)
    server = serve(args.host, args.port)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
