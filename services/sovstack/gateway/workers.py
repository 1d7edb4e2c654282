"""The gateway across cores: one supervisor, ``workers`` processes sharing its listeners.

With ``workers`` at 2 or more (unset: one per core), ``sovstack gateway``
binds its addresses once and forks that many worker processes; each serves
the listening sockets it inherited (the kernel spreads connections over
them) with an app of its own, so nothing is shared on the request path:

* **audit**: worker ``i`` writes its own log in ``audit_dir/worker-<i>``,
  origin ``<audit_origin>/worker-<i>``, signed with ``<key>.worker-<i>``
  (made with its ``.pub`` at start when missing and the folder is writable);
  ``sovstack audit`` takes the folder of worker logs (sovstack/audit/logset.py);
* **limits**: each client's budgets (its rate bucket and its requests in
  flight) are one table in shared memory that every worker updates under a
  lock of its own (gateway/budgets.py), so they hold for the whole gateway
  wherever the client's connections land, as with one process; the
  gateway's own in-flight limit (``max_concurrent_requests``) is divided
  among the workers, rounding down;
* **quotas**: each worker counts its own records and follows its siblings'
  logs (gateway/siblings.py), so a quota holds across workers up to the
  siblings' polling interval;
* **metrics**: counters and histograms of every worker are summed at
  ``/metrics`` (prometheus_client's multiprocess mode, in a folder of the
  supervisor's, removed when it stops).

The supervisor restarts a worker that dies (after 1 s, doubling to 30 s while
it keeps dying before it is ready); the new one closes the requests its
predecessor left open (``aborted``, ``gateway_restart``) before taking any.
A worker that fails before it is ready at the first start stops the gateway
(exit 1). SIGHUP re-reads the settings and rolls the workers one at a time:
each stops taking connections, finishes its requests in flight, and is
replaced by a worker with the new settings and keys before the next one is
rolled; the listening sockets stay open throughout, so a connection made
meanwhile waits in the backlog. Settings that fail validation are logged and
the workers keep running. ``workers``, ``host``, ``port`` and the metrics
listener take effect only at a restart. SIGTERM or SIGINT stops every worker
gracefully, then the supervisor.

With ``workers: 1`` the gateway serves in one process (gateway/server.py),
without a supervisor: SIGHUP is then logged and ignored, and the service
manager restarts the process if it dies.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sovstack.audit.keys import generate_signing_key
from sovstack.audit.logset import (
    WORKER_PREFIX,
    holds_log,
    member_key,
    member_origin,
    worker_name,
)
from sovstack.gateway.budgets import SharedBudgets
from sovstack.gateway.config import Settings

__all__ = ["MULTIPROC_ENV", "Supervisor", "check_layout", "ensure_worker_keys", "worker_settings"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SIGNALS = (signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
_PR_SET_PDEATHSIG = 1
_BACKOFF_S = (1.0, 30.0)
_log = logging.getLogger("sovstack.gateway.workers")

Loader = Callable[[], Settings]


def worker_settings(settings: Settings, index: int, count: int) -> Settings:
    """The settings of worker ``index`` of ``count``: its own log, key and share of each budget."""
    name = worker_name(index)
    return settings.model_copy(
        update={
            "workers": 1,
            "audit_dir": settings.audit_dir / name,
            "audit_signing_key": member_key(settings.audit_signing_key, name),
            "audit_origin": member_origin(settings.audit_origin, name),
            "max_concurrent_requests": settings.max_concurrent_requests // count,
        }
    )


def check_layout(settings: Settings, count: int) -> None:
    """Refuse an ``audit_dir`` written with another number of processes (a ValueError, said).

    One process writes its log in ``audit_dir`` itself, workers in its
    ``worker-<i>`` folders; a folder with both is not one site's log set
    (``sovstack audit`` refuses it), so a gateway switching between the two
    needs a new ``audit_dir`` (keep the old one for the auditors).
    """
    directory = settings.audit_dir
    if not directory.is_dir():
        return
    workers = [p.name for p in directory.glob(f"{WORKER_PREFIX}*") if p.is_dir()]
    if count > 1 and holds_log(directory):
        raise ValueError(
            f"{directory} holds the audit log of a one-process gateway; with workers: {count} "
            "give audit_dir a new folder (keep this one for the auditors) or set workers: 1"
        )
    if count == 1 and workers:
        raise ValueError(
            f"{directory} holds worker logs ({', '.join(sorted(workers))}); with one process "
            "give audit_dir a new folder (keep this one for the auditors) or set workers"
        )


def ensure_worker_keys(settings: Settings, count: int) -> list[Path]:
    """Make each worker's signing key (and its .pub) that is missing; the keys made.

    Raises OSError when a key is missing and cannot be written there (a
    deployment makes them beforehand: the gateway role does).
    """
    made = []
    for index in range(count):
        key = member_key(settings.audit_signing_key, worker_name(index))
        if not key.exists():
            generate_signing_key(key)
            made.append(key)
    return made


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this worker when the supervisor dies (a SIGKILL leaves none)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _worker_main(
    site: Settings, index: int, count: int, sockets: list[socket.socket], ready_fd: int,
    metrics_dir: Path, table: SharedBudgets,
) -> int:  # fmt: skip
    """A forked worker: serve ``sockets`` until SIGTERM; the exit status."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload is the supervisor's to do
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    _die_with_parent()
    # prometheus_client picks how it keeps values when first imported: in the
    # supervisor that may have been before MULTIPROC_ENV was set.
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]  # untyped upstream
    from sovstack.gateway.app import create_app
    from sovstack.gateway.server import serve_sockets
    from sovstack.gateway.state import GatewayState

    def announce() -> None:
        os.write(ready_fd, b"r")
        os.close(ready_fd)

    siblings = [site.audit_dir / worker_name(j) for j in range(count) if j != index]
    app = create_app(
        worker_settings(site, index, count),
        functools.partial(GatewayState.open, siblings=siblings, budgets=table.attach(index)),
        on_ready=announce,
        metrics_dir=metrics_dir,
    )
    return 0 if serve_sockets(site, app, sockets) else 3


@dataclass
class _Worker:
    index: int
    pid: int
    ready_fd: int  # the read end: one byte when the worker's app has started
    ready: bool = False
    failures: int = 0  # deaths before ready in a row (the restart backoff)
    restart_at: float | None = None
    stopping: bool = False


class Supervisor:
    """Binds the listeners, runs the workers, restarts them and rolls them on SIGHUP."""

    def __init__(self, settings: Settings, load: Loader, sockets: list[socket.socket]) -> None:
        self.settings = settings
        self.count = settings.worker_count()
        self.load = load
        self.sockets = sockets
        self.workers: dict[int, _Worker] = {}
        self.metrics_dir = Path(tempfile.mkdtemp(prefix="sovstack-gateway-metrics-"))
        os.environ[MULTIPROC_ENV] = str(self.metrics_dir)
        self.budgets = SharedBudgets(self.metrics_dir)  # before any fork: the workers share it

    # --- the loop

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; the exit status (1: a worker failed at the first start)."""
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for index in range(self.count):
                self._start(index, self.settings)
            if not self._await_ready(set(range(self.count)), first=True):
                self._stop_all()
                return 1
            _log.info("%d workers serving", self.count)
            while True:
                info = signal.sigtimedwait(_SIGNALS, 0.5)
                if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                    self._stop_all()
                    return 0
                for worker in self.workers.values():
                    if worker.pid and not worker.ready:  # a restarted one: is it up yet?
                        self._poll_ready(worker)
                self._reap()
                if info is not None and info.si_signo == signal.SIGHUP:
                    self._roll()
                self._restart_due()
        finally:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _start(self, index: int, settings: Settings) -> None:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read_fd)
            status = 1
            try:
                status = _worker_main(
                    settings, index, self.count, self.sockets, write_fd, self.metrics_dir,
                    self.budgets,
                )  # fmt: skip
            except BaseException:  # a worker reports what ended it and exits, never returns
                logging.getLogger("uvicorn.error").exception("worker %d failed", index)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        previous = self.workers.get(index)
        self.workers[index] = _Worker(
            index, pid, read_fd, failures=previous.failures if previous else 0
        )
        _log.info("worker %d started (pid %d)", index, pid)

    def _await_ready(self, indexes: set[int], *, first: bool = False) -> bool:
        """Wait until each of ``indexes`` is ready; False if one died before (it is reaped)."""
        waiting = set(indexes)
        while waiting:
            for index in list(waiting):
                worker = self.workers[index]
                if self._poll_ready(worker):
                    waiting.discard(index)
            dead = self._reap()
            if dead & waiting:
                if first:
                    names = ", ".join(str(i) for i in sorted(dead & waiting))
                    _log.error("worker %s failed to start (its error is logged above)", names)
                return False
            if waiting:
                signal.sigtimedwait((signal.SIGCHLD,), 0.05)
        return True

    @staticmethod
    def _poll_ready(worker: _Worker) -> bool:
        if worker.ready:
            return True
        try:
            said = os.read(worker.ready_fd, 1)
        except BlockingIOError:
            return False
        if said:
            worker.ready, worker.failures = True, 0
            os.close(worker.ready_fd)
        return worker.ready

    def _reap(self) -> set[int]:
        """Collect dead workers; schedule a restart for those not being stopped."""
        from prometheus_client import multiprocess

        dead = set()
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            multiprocess.mark_process_dead(pid, str(self.metrics_dir))  # type: ignore[no-untyped-call]  # untyped upstream
            for worker in self.workers.values():
                if worker.pid != pid:
                    continue
                dead.add(worker.index)
                if not worker.ready:
                    os.close(worker.ready_fd)
                    worker.failures += 1
                worker.pid = 0
                if not worker.stopping:
                    delay = min(_BACKOFF_S[0] * 2 ** max(worker.failures - 1, 0), _BACKOFF_S[1])
                    worker.restart_at = time.monotonic() + delay
                    _log.error(
                        "worker %d (pid %d) died (%s); restarting in %.0f s",
                        worker.index, pid, _describe(status), delay,
                    )  # fmt: skip
        return dead

    def _restart_due(self) -> None:
        now = time.monotonic()
        for worker in list(self.workers.values()):
            if worker.pid == 0 and worker.restart_at is not None and worker.restart_at <= now:
                self._start(worker.index, self.settings)

    # --- SIGHUP

    def _roll(self) -> None:
        try:
            settings = self.load()
        except Exception as exc:  # any refusal of the new settings keeps the old ones
            _log.error("SIGHUP: the new settings are refused, the workers keep running: %s", exc)
            return
        kept = ("host", "port", "metrics_host", "metrics_port", "workers")
        changed = [n for n in kept if getattr(settings, n) != getattr(self.settings, n)]
        if changed:
            _log.warning("SIGHUP: %s take effect at a restart only", ", ".join(changed))
        try:
            ensure_worker_keys(settings, self.count)
        except OSError as exc:
            _log.error("SIGHUP: cannot make the workers' keys, the workers keep running: %s", exc)
            return
        self.settings = settings
        _log.info("SIGHUP: rolling %d workers onto the new settings", self.count)
        for index in range(self.count):
            worker = self.workers[index]
            if worker.pid:
                worker.stopping = True
                os.kill(worker.pid, signal.SIGTERM)
                while worker.pid:  # it finishes its requests in flight first
                    signal.sigtimedwait((signal.SIGCHLD,), 0.2)
                    self._reap()
            worker.failures = 0
            self._start(index, settings)
            if not self._await_ready({index}):
                _log.error("SIGHUP: worker %d failed on the new settings; retrying", index)
        _log.info("SIGHUP: every worker runs the new settings")

    def _stop_all(self) -> None:
        for worker in self.workers.values():
            worker.stopping = True
            if worker.pid:
                os.kill(worker.pid, signal.SIGTERM)
        while any(w.pid for w in self.workers.values()):
            signal.sigtimedwait((signal.SIGCHLD,), 0.2)
            self._reap()


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
