"""The deploy's one error: a message that says what failed, where, and what to do.

::

    DeployError           exit 1: the deploy did not complete (the message names the
                          host, role and step, and the log with the whole output)
    └── DeployUsageError  exit 2: bad input (a missing inventory, bundle or key)
"""

from __future__ import annotations

__all__ = ["DeployError", "DeployUsageError"]


class DeployError(Exception):
    """The deploy did not complete."""

    exit_code = 1


class DeployUsageError(DeployError):
    """The deploy was given something it cannot use."""

    exit_code = 2
