"""Turn the errors a user can act on into one clear line and a non-zero exit.

Exit codes: 1 for a failed check (a log that does not verify: the evidence is
printed), 2 for a usage or I/O error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

import click

from sovstack.audit import AuditError, VerificationError

__all__ = ["UsageProblem", "friendly", "print_failure", "reader_may_leave", "verifying"]

P = ParamSpec("P")
R = TypeVar("R")


class UsageProblem(click.ClickException):
    """A usage or I/O error: exit code 2."""

    exit_code = 2


def friendly(
    *errors: type[Exception], exit_code: int = 1
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Report ``errors`` and ``OSError`` as one line and exit ``exit_code``, never a traceback."""
    problem = UsageProblem if exit_code == 2 else click.ClickException
    if exit_code not in (1, 2):
        raise ValueError(f"exit_code must be 1 or 2, not {exit_code}")

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except errors as exc:
                raise problem(str(exc)) from exc
            except OSError as exc:
                raise problem(f"{exc.strerror or exc}: {exc.filename or ''}") from exc

        return wrapper

    return decorate


@contextmanager
def reader_may_leave() -> Iterator[None]:
    """End with exit 0 and no message when the reader of stdout goes away (``| head``).

    Only for commands that print records and verify nothing (export, tail): a
    verifying command must keep its exit code whoever reads its output.
    Standard output is pointed at /dev/null first, so that the interpreter's
    own flush at exit does not fail on the closed pipe too.
    """
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise click.exceptions.Exit(0) from None


def print_failure(exc: VerificationError) -> None:
    """Say why a log does not verify: the message, the first bad index, the evidence."""
    click.echo(f"VERIFICATION FAILED: {exc}")
    if exc.first_bad_index is not None:
        click.echo(f"first bad index: {exc.first_bad_index}")
    for name, value in exc.evidence.items():
        if "\n" in value.rstrip("\n"):
            click.echo(f"{name}:")
            for line in value.rstrip("\n").split("\n"):
                click.echo(f"    {line}")
        else:
            click.echo(f"{name}: {value.rstrip()}")


def verifying(func: Callable[P, R]) -> Callable[P, R]:
    """Map verification failures to exit 1 with evidence, other audit errors to exit 2."""

    @friendly(AuditError, exit_code=2)
    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except VerificationError as exc:
            print_failure(exc)
            raise click.exceptions.Exit(1) from exc

    return wrapper
