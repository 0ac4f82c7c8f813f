"""The one error family every layer raises for expected failures.

Each error carries the exit code the CLI must end with, so the CLI turns any of them into one
sentence on stderr in one place instead of each command catching a list of types by hand.
Exit codes everywhere: 0 done/verified, 1 rejected/not verified, 2 could not run.
"""

from __future__ import annotations

EXIT_OK, EXIT_REJECTED, EXIT_UNAVAILABLE = 0, 1, 2


class LeanSolveError(Exception):
    """An expected failure with a message meant for the user: one sentence saying what happened
    and, where there is one, what to do."""

    exit_code: int = EXIT_UNAVAILABLE


class InputError(LeanSolveError, ValueError):
    """The user's input (argument, file, config value) cannot be used; nothing was run."""


class UnavailableError(LeanSolveError, RuntimeError):
    """Something the command needs (a Lean backend, a model, a GPU, a writable path) is missing."""
