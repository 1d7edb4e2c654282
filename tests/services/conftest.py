"""The services tier (issue 13): the deployed stack used end to end from the controller.

Not part of ``make test`` yet: ``playbooks/services.yml`` is not in
``site.yml``. Once it is, these tests join tests/deploy (they share its
fixtures: the first deploy, the cluster record).
"""

from tests.deploy.conftest import cluster_info, first_deploy, pytest_configure

__all__ = ["cluster_info", "first_deploy", "pytest_configure"]
