"""The error base every package builds its own errors on.

A :class:`SovstackError` is a failure a person can act on: its message says
what went wrong and, where it can, the fix. The CLI prints it as one line and
exits non-zero, never with a traceback (``cli/_errors.py``, one place)::

    SovstackError               base: the message is for a person
    ├── CommandError            a program run by core.proc is missing, failed or timed out
    ├── ComponentError          a component could not be fetched, started or made ready
    ├── KeyFileError            a key file is unsafe to write or to load (core.keyfiles)
    ├── bundle.BundleError      (bundle/errors.py)
    ├── cluster.ClusterError    (cluster/commands.py)
    └── policy.PolicyError      (policy/tools.py)
"""

from __future__ import annotations

__all__ = ["CommandError", "ComponentError", "KeyFileError", "SovstackError"]


class SovstackError(RuntimeError):
    """A failure whose message is for a person: what went wrong and, where known, the fix."""


class CommandError(SovstackError):
    """A program could not be run, failed, or ran out of time; the message ends with its output."""


class ComponentError(SovstackError):
    """A component could not be fetched, started or made ready; the message says why."""


class KeyFileError(SovstackError):
    """A key file would be written unsafely, or is unsafe to load; the message names the file."""
