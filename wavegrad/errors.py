"""Errors a user can fix, and the one place where they become a line on stderr and exit code 2.

Anything raised as :class:`UserInputError` is bad input (a file, a config, a tensor shape) whose message
already names the culprit and the fix. :func:`run_main` -- used by the ``wavegrad`` command, every recipe
and every data-preparation script -- prints it on one line to stderr and returns exit code 2; library
callers can catch it as a ``ValueError``. This module is a leaf: it imports nothing of the package.
"""
from __future__ import annotations

import sys
from typing import Callable

# Errors that name a file the user gave (missing, a folder, unreadable): one line, exit 2, like UserInputError.
_USER_ERRORS = (FileNotFoundError, IsADirectoryError, PermissionError, NotADirectoryError)


class UserInputError(ValueError):
    """Bad input with a message that names the file or value and says what to change."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_main(prog: str, fn: Callable[[], int | None]) -> int:
    """Run a command's body: its exit code, or 2 with ``prog: error: <one line>`` for a user error,
    or 130 on Ctrl-C. Bugs (any other exception) keep their traceback."""
    try:
        return int(fn() or 0)
    except (UserInputError, *_USER_ERRORS) as e:
        print(f"{prog}: error: {first_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
