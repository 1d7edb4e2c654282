"""``ansible-playbook playbooks/site.yml``, its progress shown by play, its whole output in a log.

The deploy's variables go in one extra-vars file (0600): where the verified
bundle and its public key are, the controller's state folder, the sovstack CLI.
Ansible runs from the project root with its ``ansible.cfg``. What the user
sees: each play as it starts, each failed or unreachable host with its task,
and the recap; everything else is in the log, whose path every failure names.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sovstack.deploy.errors import DeployError

__all__ = ["Progress", "Recap", "Run", "require_success", "run_playbook", "tool"]

Echo = Callable[[str], None]

_RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)"
)
_FAILED = re.compile(r"^(fatal|failed): \[(?P<host>[^\]]+)\]|^\[ERROR\]|^ERROR!")


@dataclass(frozen=True)
class Recap:
    host: str
    ok: int
    changed: int
    unreachable: int
    failed: int


@dataclass
class Run:
    """What one playbook run did: its exit status, recap per host, failures, and its log."""

    returncode: int
    log: Path
    recap: list[Recap] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return sum(r.changed for r in self.recap)


class Progress:
    """Reads ansible-playbook's default output line by line: shows plays, roles and failures.

    Fills ``run.recap`` from the PLAY RECAP and ``run.failures`` with one line
    per failed or unreachable host: its task, and the ``msg`` that follows.
    """

    def __init__(self, run: Run, echo: Echo) -> None:
        self.run = run
        self.echo = echo
        self.task = ""
        self.role = ""
        self.pending = ""  # a failure, until the lines after it have been read
        self.in_recap = False

    def _flush(self) -> None:
        if self.pending:
            self.echo(f"    FAILED {self.pending[:2000]}")
            self.run.failures.append(self.pending)
            self.pending = ""

    def close(self) -> None:
        self._flush()

    def feed(self, text: str) -> None:
        if self.pending:
            if text.startswith(" "):
                if text.lstrip().startswith("msg:"):
                    self.pending += " " + text.strip()
                return
            self._flush()
        if text.startswith("PLAY RECAP"):
            self.in_recap = True
        elif self.in_recap:
            match = _RECAP.match(text.strip())
            if match:
                counts = [int(match[k]) for k in ("ok", "changed", "unreachable", "failed")]
                self.run.recap.append(Recap(match["host"], *counts))
        elif text.startswith("PLAY ["):
            self.echo(f"==> play: {text[6:].split(']', 1)[0]}")
        elif text.startswith("TASK ["):
            self.task = text[6:].rsplit("]", 1)[0]
            role = self.task.split(" : ", 1)[0] if " : " in self.task else ""
            if role and role != self.role:
                self.echo(f"    role: {role}")
            self.role = role
        elif _FAILED.match(text) or "UNREACHABLE!" in text:
            self.pending = f"{self.task}: {text}" if self.task else text


def tool(name: str) -> str:
    """An Ansible command from the same virtualenv as this sovstack."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def run_playbook(
    root: Path,
    inventory: Path,
    extra_vars: dict[str, object],
    log_dir: Path,
    echo: Echo,
    ansible_args: Sequence[str] = (),
    playbook: str = "playbooks/site.yml",
) -> Run:
    """Run ``playbook`` against ``inventory``; return what it did (it does not raise on failure)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = log_dir / f"deploy-{stamp}.log"
    extra = log_dir / "extra-vars.json"
    fd = os.open(extra, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(extra_vars, out, indent=1, sort_keys=True)
    argv = [
        tool("ansible-playbook"),
        str(root / playbook),
        "-i",
        str(inventory),
        "-e",
        f"@{extra}",
        *ansible_args,
    ]
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PYTHONUNBUFFERED": "1",
    }
    result = Run(returncode=0, log=log)
    reader = Progress(result, echo)
    started = time.monotonic()
    with log.open("w") as out:
        out.write(" ".join(argv) + "\n")
        proc = subprocess.Popen(
            argv,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None  # noqa: S101  # stdout=PIPE above
        for line in proc.stdout:
            out.write(line)
            out.flush()
            reader.feed(line.rstrip("\n"))
        reader.close()
        result.returncode = proc.wait()
    result.seconds = time.monotonic() - started
    return result


def require_success(run: Run) -> None:
    """Raise a DeployError naming each failed host and task, and the log, if ``run`` failed."""
    if run.returncode == 0:
        return
    bad = [r.host for r in run.recap if r.failed or r.unreachable]
    where = f" on {', '.join(bad)}" if bad else ""
    first = run.failures[0][:600] if run.failures else "see the log"
    raise DeployError(
        f"the deploy failed{where} (ansible-playbook exited {run.returncode}): {first}\n"
        f"the whole output is in {run.log}"
    )
