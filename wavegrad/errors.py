"""Errors a user can fix.

Anything raised as :class:`UserInputError` is bad input (a file, a config, a tensor shape) whose message
already names the culprit and the fix. The CLI prints it on one line to stderr and exits with code 2;
library callers can catch it as a ``ValueError``.
"""


class UserInputError(ValueError):
    """Bad input with a message that names the file or value and says what to change."""
