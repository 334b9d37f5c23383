"""Errors that the command line turns into one-line messages and exit codes."""

from __future__ import annotations


class EwasteError(Exception):
    """Base class for every error ewaste reports to a user."""

    exit_code = 1


class InputError(EwasteError):
    """Bad input: names the file and the field, exits with code 2."""

    exit_code = 2

    def __init__(self, source: str | None, field: str | None, message: str):
        self.source = source
        self.field = field
        self.message = message
        where = ": ".join(part for part in (source, field) if part)
        super().__init__(f"{where}: {message}" if where else message)


class BalanceError(EwasteError):
    """A mass balance that does not close: a model bug or unusable input, exits with code 3."""

    exit_code = 3
