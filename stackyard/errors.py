"""One exception hierarchy; the CLI maps it to exit codes in one place."""

from __future__ import annotations


class StackyardError(Exception):
    """Base of every error stackyard reports to a user.

    The message names the input at fault and, where there is one, the fix.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  fix: {self.hint}"


class ConfigError(StackyardError):
    """stackyard.toml or a recipe is invalid (names file and key)."""

    exit_code = 2


class InputError(StackyardError):
    """A command-line argument or an input file is wrong (unknown release, bad line)."""

    exit_code = 2


class ResolutionError(StackyardError):
    """Requirements cannot be satisfied (conflict with upper-constraints, missing pin)."""

    exit_code = 3


class FetchError(StackyardError):
    """The package index or the network failed after bounded retries."""

    exit_code = 4


class IntegrityError(StackyardError):
    """A downloaded or cached artifact does not match its expected hash."""

    exit_code = 4


class BuildError(StackyardError):
    """One or more artifacts failed to build; the summary lists them with logs."""

    exit_code = 5


class ToolError(StackyardError):
    """An external tool is missing or failed (dpkg-buildpackage, apt-get, ...)."""

    exit_code = 6
