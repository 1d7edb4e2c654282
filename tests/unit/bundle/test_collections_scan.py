"""Which collections the playbooks use, read from the YAML the roles and playbooks hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovstack.bundle.collectors.ansible import check_used, used_collections
from sovstack.bundle.errors import BundleError

TASKS = """\
- name: Load the module
  community.general.modprobe:
    name: nvidia
- name: Keep a file
  ansible.builtin.copy:
    src: a
    dest: b
- name: Read a secret
  ansible.builtin.set_fact:
    token: "{{ lookup('community.crypto.openssl_privatekey_info', 'k') }}"
- name: Filter
  ansible.builtin.debug:
    msg: "{{ addr | ansible.utils.ipaddr('address') }}"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    tasks = tmp_path / "roles" / "nvidia_gpu" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(TASKS)
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "site.yml").write_text(
        "- hosts: all\n  collections:\n    - community.postgresql\n  roles: [keycloak]\n"
    )
    return tmp_path


def test_modules_lookups_filters_and_collection_lists_are_found(project: Path) -> None:
    assert used_collections(project) == {
        "ansible.utils": "roles/nvidia_gpu/tasks/main.yml",
        "community.crypto": "roles/nvidia_gpu/tasks/main.yml",
        "community.general": "roles/nvidia_gpu/tasks/main.yml",
        "community.postgresql": "playbooks/site.yml",
    }


def test_a_used_collection_the_bundle_lacks_is_refused_naming_the_file(project: Path) -> None:
    carried = ("community.crypto", "community.general", "community.postgresql")
    with pytest.raises(BundleError) as refused:
        check_used(project, carried)
    assert "ansible.utils (used in roles/nvidia_gpu/tasks/main.yml)" in str(refused.value)
    check_used(project, (*carried, "ansible.utils"))


def test_this_projects_playbooks_use_only_carried_collections() -> None:
    from sovstack.bundle.profiles import COLLECTIONS

    root = Path(__file__).resolve().parents[3]
    check_used(root, COLLECTIONS)
