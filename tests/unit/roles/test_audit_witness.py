"""The witness's runner, as the role renders it, run against gateways that are local folders.

Real Ansible renders the audit_witness role's vars and runner for an
inventory of two gateways (gw-1 writes one log, gw-2 one per worker process)
and a witness (this machine). The runner then runs with bash: real rsync pulls
each gateway's folder through a stand-in ``ssh`` that serves the folder named
after the gateway's address (as the gateway's ``rrsync -ro`` would); gw-1's
single log is witnessed by the real ``sovstack audit witness``. For gw-2 the
stand-in CLI prints what ``audit witness`` prints for a set (an ``accepted:``
line per member accepted, each refused member's evidence named after it, then
the set's failure), so the tests hold the runner's reading of it to the
metrics an operator is alerted on.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sovstack.audit import (
    AuditLog,
    VerificationError,
    generate_signing_key,
    load_public_key,
    load_signing_key,
)
from sovstack.audit.logset import member_key, member_origin, member_pubkey, worker_name
from sovstack.audit.segments import list_segments
from sovstack.audit.verify import verify_log
from tests.unit.audit.conftest import make_record

ROOT = Path(__file__).resolve().parents[3]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
GATEWAYS = {"gw-1": "10.0.0.11", "gw-2": "10.0.0.12"}
WORKERS = 2

_PLAY = """
- hosts: witnesses
  gather_facts: false
  vars_files:
    - {root}/roles/audit_witness/vars/main.yml
  tasks:
    - name: Check the inputs as the role does
      ansible.builtin.include_tasks: {root}/roles/audit_witness/tasks/assert.yml
    - name: Render the runner
      ansible.builtin.template:
        src: {root}/roles/audit_witness/templates/sovstack-witness-run.j2
        dest: "{out}/sovstack-witness-run"
        mode: "0755"
    - name: Keep the logs and where their public keys go
      ansible.builtin.copy:
        content: "{{{{ __audit_witness_logs | to_json }}}}"
        dest: "{out}/logs.json"
        mode: "0644"
"""

# ssh [-i KEY] [-o OPTION]... [-l USER] [USER@]HOST COMMAND...: COMMAND in $FAKE_GATEWAYS/HOST.
FAKE_SSH = """#!/bin/sh
while [ $# -gt 0 ]; do
    case $1 in -i|-o|-l|-p) shift 2 ;; -*) shift ;; *) break ;; esac
done
host=${1#*@}
shift
cd "$FAKE_GATEWAYS/$host" || exit 255
exec sh -c "$*"
"""

# sovstack audit witness COPY ...: $FAKE_CLI/<gateway>.out and .rc when there, else the real CLI.
FAKE_SOVSTACK = """#!/bin/sh
gateway=${{3##*/}}
if [ -f "$FAKE_CLI/$gateway.out" ]; then
    cat "$FAKE_CLI/$gateway.out"
    exit "$(cat "$FAKE_CLI/$gateway.rc")"
fi
exec {python} -m sovstack.cli "$@"
"""


@dataclass(frozen=True)
class Witness:
    """The rendered runner, the folders it works in, and the gateways it pulls from."""

    root: Path
    runner: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    def gateway(self, host: str) -> Path:
        return self.root / "gateways" / GATEWAYS[host]

    def key(self, host: str) -> Path:
        return self.root / "state" / "nodes" / host / "audit-signing.key"

    def pubkey(self, host: str) -> Path:
        """The public key of ``host``'s log on the controller (its members' are beside it)."""
        return self.root / "state" / "nodes" / host / "audit-signing.key.pub"

    def cli_says(self, host: str, rc: int, out: str) -> None:
        (self.root / "cli" / f"{host}.out").write_text(out.replace("COPY", str(self.copy(host))))
        (self.root / "cli" / f"{host}.rc").write_text(f"{rc}\n")

    def copy(self, host: str) -> Path:
        return self.home / "copies" / host

    def run(self) -> dict[tuple[str, str], float]:
        """Run the runner once; the metrics it wrote, by (name, log label)."""
        done = subprocess.run(
            ["bash", str(self.runner)], capture_output=True, text=True, timeout=120, check=False,
            env={"PATH": f"{self.root / 'bin'}:/usr/bin:/bin", "HOME": str(self.root),
                 "FAKE_GATEWAYS": str(self.root / "gateways"), "FAKE_CLI": str(self.root / "cli")},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        text = (self.root / "metrics" / "sovstack_witness.prom").read_text()
        return {
            (sample.name, sample.labels.get("log", "")): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


def _write(folder: Path, key: Path, origin: str, first: int, count: int) -> None:
    with AuditLog.open(folder, load_signing_key(key), origin, 3600) as log:
        for n in range(first, first + count):
            log.append_sync(make_record(n))
        log.publish()


def _render(root: Path) -> subprocess.CompletedProcess[str]:
    out = root / "out"
    out.mkdir()
    defaults = yaml.safe_load(
        (ROOT / "roles" / "audit_witness" / "defaults" / "main.yml").read_text()
    )
    witness = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
               "audit_witness_home": str(root / "home"),
               "audit_witness_metrics_dir": str(root / "metrics"),
               "audit_witness_gateway_venv": str(root / "venv")}  # fmt: skip
    inventory = {"all": {
        "vars": defaults | {"sovstack_state_dir": str(root / "state")},
        "children": {
            "gateways": {"hosts": {h: {"ansible_host": a} for h, a in GATEWAYS.items()}},
            "witnesses": {"hosts": {"audit-1": witness}},
        },
    }}  # fmt: skip
    (root / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (root / "play.yml").write_text(_PLAY.format(root=ROOT, out=out))
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(root / "inventory.yml"), str(root / "play.yml"),
         "-e", f"__audit_witness_config_dir={root / 'etc'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={"PATH": "/usr/bin:/bin", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
             "ANSIBLE_NOCOLOR": "1", "HOME": str(root)},
    )  # fmt: skip


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The controller's keys (gw-2 with a key per worker) and what Ansible renders from them."""
    root = tmp_path_factory.mktemp("witness")
    for host in GATEWAYS:
        key = root / "state" / "nodes" / host / "audit-signing.key"
        key.parent.mkdir(parents=True)
        generate_signing_key(key)  # the private keys too: the role must not pick them up
    for i in range(WORKERS):
        generate_signing_key(
            member_key(root / "state/nodes/gw-2/audit-signing.key", worker_name(i))
        )
    (root / "state" / "secrets").mkdir()
    (root / "state" / "secrets" / "audit-pull-ed25519").write_text("the pull key\n")
    done = _render(root)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


@pytest.fixture
def witness(rendered: Path) -> Witness:
    """A fresh witness home and two fresh gateways; the public keys installed as the role does.

    The runner names the folders Ansible rendered it with: each test starts them anew.
    """
    root = rendered
    for folder in ("etc", "home", "metrics", "bin", "venv", "cli", "gateways"):
        shutil.rmtree(root / folder, ignore_errors=True)
    for log in json.loads((root / "out" / "logs.json").read_text()):
        for pubkey in log["pubkeys"]:
            Path(pubkey["dest"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pubkey["src"], pubkey["dest"])
    for folder in ("home/state", "metrics", "bin", "venv/bin", "cli"):
        (root / folder).mkdir(parents=True)
    generate_signing_key(root / "home" / "witness.key")
    for name, text in (
        ("bin/ssh", FAKE_SSH),
        ("venv/bin/sovstack", FAKE_SOVSTACK.format(python=sys.executable)),
    ):
        (root / name).write_text(text)
        (root / name).chmod(0o755)
    site = Witness(root, root / "out" / "sovstack-witness-run")
    _write(site.gateway("gw-1"), site.key("gw-1"), "plant-a.example/gw-1", 0, 10)
    for i in range(WORKERS):
        name = worker_name(i)
        _write(site.gateway("gw-2") / name, member_key(site.key("gw-2"), name),
               member_origin("plant-a.example/gw-2", name), 0, 10 + i)  # fmt: skip
    return site


def _accepted(host: str, name: str, size: int) -> str:
    return (
        f"accepted: plant-a.example/{host}/{name} size {size} root {'ab' * 32}"
        " (previously nothing (first copy))\n"
        f"cosigned as sovstack-witness/audit-1: /state/plant-a.example_{host}_{name}.x.cosigned\n"
    )


def _refused(name: str) -> str:
    return (
        f"VERIFICATION FAILED: COPY/{name}: a checkpoint covers 11 entries but the log holds 0\n"
        f"VERIFICATION FAILED: 1 of 2 logs in COPY failed: {name}\n"
    )


def test_each_gateways_public_keys_go_where_audit_witness_looks_for_them(
    rendered: Path,
) -> None:
    logs = {log["name"]: log for log in json.loads((rendered / "out" / "logs.json").read_text())}
    assert sorted(logs) == ["gw-1", "gw-2"]
    for host, log in logs.items():
        names = [""] + ([worker_name(i) for i in range(WORKERS)] if host == "gw-2" else [])
        nodes = rendered / "state" / "nodes" / host
        assert [(Path(p["src"]), Path(p["dest"])) for p in log["pubkeys"]] == [
            (member_pubkey(nodes / "audit-signing.key.pub", n),
             member_pubkey(Path(log["pubkey"]), n)) for n in names
        ]  # fmt: skip
        assert log["pubkey"] == str(rendered / "etc" / "logs" / f"{host}.pub")


def test_a_single_log_and_each_worker_log_get_their_own_series(witness: Witness) -> None:
    witness.cli_says(
        "gw-2", 0, _accepted("gw-2", "worker-0", 10) + _accepted("gw-2", "worker-1", 11)
    )
    metrics = witness.run()
    assert {
        k: v for k, v in metrics.items() if k[0] != "sovstack_witness_last_run_timestamp_seconds"
    } == {
        ("sovstack_witness_log_consistent", "gw-1"): 1,
        ("sovstack_witness_log_consistent", "gw-2/worker-0"): 1,
        ("sovstack_witness_log_consistent", "gw-2/worker-1"): 1,
        ("sovstack_witness_check_ok", "gw-1"): 1,
        ("sovstack_witness_check_ok", "gw-2/worker-0"): 1,
        ("sovstack_witness_check_ok", "gw-2/worker-1"): 1,
        ("sovstack_witness_checkpoint_size", "gw-1"): 10,  # the real CLI's line, read
        ("sovstack_witness_checkpoint_size", "gw-2/worker-0"): 10,
        ("sovstack_witness_checkpoint_size", "gw-2/worker-1"): 11,
    }
    # Every worker's log was pulled whole: each verifies with its own key.
    for i in range(WORKERS):
        member = witness.copy("gw-2") / worker_name(i)
        public = load_public_key(member_pubkey(witness.pubkey("gw-2"), member.name))
        assert verify_log(member, public).entries == 10 + i


def test_a_refused_member_is_inconsistent_and_the_others_are_not(witness: Witness) -> None:
    witness.cli_says("gw-2", 1, _accepted("gw-2", "worker-0", 10) + _refused("worker-1"))
    metrics = witness.run()
    assert metrics[("sovstack_witness_log_consistent", "gw-2/worker-0")] == 1
    assert metrics[("sovstack_witness_log_consistent", "gw-2/worker-1")] == 0
    assert metrics[("sovstack_witness_check_ok", "gw-2/worker-1")] == 1
    assert ("sovstack_witness_checkpoint_size", "gw-2/worker-1") not in metrics


def test_a_member_without_its_accepted_line_is_not_taken_as_consistent(
    witness: Witness,
) -> None:
    witness.cli_says("gw-2", 0, _accepted("gw-2", "worker-0", 10))
    metrics = witness.run()
    assert metrics[("sovstack_witness_log_consistent", "gw-2/worker-0")] == 1
    assert metrics[("sovstack_witness_log_consistent", "gw-2/worker-1")] == 0
    assert metrics[("sovstack_witness_check_ok", "gw-2/worker-1")] == 1


def test_a_usage_or_io_error_is_a_check_that_did_not_run_for_every_member(
    witness: Witness,
) -> None:
    witness.cli_says("gw-2", 2, _accepted("gw-2", "worker-0", 10) + "Error: disk full\n")
    metrics = witness.run()
    assert [k for k in metrics if k[1].startswith("gw-2")] == [
        ("sovstack_witness_check_ok", "gw-2/worker-0"),
        ("sovstack_witness_check_ok", "gw-2/worker-1"),
    ]
    assert {metrics[k] for k in metrics if k[1].startswith("gw-2")} == {0}


def test_an_unreachable_gateway_is_a_check_that_did_not_run(witness: Witness) -> None:
    shutil.rmtree(witness.gateway("gw-1"))
    witness.cli_says(
        "gw-2", 0, _accepted("gw-2", "worker-0", 10) + _accepted("gw-2", "worker-1", 11)
    )
    metrics = witness.run()
    assert metrics[("sovstack_witness_check_ok", "gw-1")] == 0
    assert ("sovstack_witness_log_consistent", "gw-1") not in metrics
    assert metrics[("sovstack_witness_check_ok", "gw-2/worker-1")] == 1


def test_a_rewritten_single_log_is_inconsistent(witness: Witness) -> None:
    witness.cli_says(
        "gw-2", 0, _accepted("gw-2", "worker-0", 10) + _accepted("gw-2", "worker-1", 11)
    )
    assert witness.run()[("sovstack_witness_log_consistent", "gw-1")] == 1
    shutil.rmtree(witness.gateway("gw-1"))  # a new log under the same origin: a fork
    _write(witness.gateway("gw-1"), witness.key("gw-1"), "plant-a.example/gw-1", 500, 12)
    metrics = witness.run()
    assert metrics[("sovstack_witness_log_consistent", "gw-1")] == 0
    assert metrics[("sovstack_witness_check_ok", "gw-1")] == 1


def test_a_worker_log_deleted_on_the_gateway_keeps_its_checkpoints_in_the_copy(
    witness: Witness,
) -> None:
    witness.cli_says(
        "gw-2", 0, _accepted("gw-2", "worker-0", 10) + _accepted("gw-2", "worker-1", 11)
    )
    witness.run()
    shutil.rmtree(witness.gateway("gw-2") / "worker-1")
    witness.run()
    kept = witness.copy("gw-2") / "worker-1"
    assert (kept / "checkpoints").is_file() and not list_segments(kept)
    public = load_public_key(member_pubkey(witness.pubkey("gw-2"), "worker-1"))
    with pytest.raises(VerificationError, match=r"entries 0\.\.10 are missing"):
        verify_log(kept, public)
