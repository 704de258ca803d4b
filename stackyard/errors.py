"""One exception hierarchy, and its one mapping to exit codes (``exit_code``)."""

from __future__ import annotations


class StackyardError(Exception):
    """Base of every error stackyard reports to a user.

    The message names the input at fault and, where there is one, the fix.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  fix: {self.hint}"


class ConfigError(StackyardError):
    """stackyard.toml or a recipe is invalid (names file and key)."""


class InputError(StackyardError):
    """A command-line argument or an input file is wrong (unknown release, bad line)."""


class ResolutionError(StackyardError):
    """Requirements cannot be satisfied (conflict with upper-constraints, missing pin)."""


class FetchError(StackyardError):
    """The package index or the network failed after bounded retries."""


class IntegrityError(StackyardError):
    """A downloaded or cached artifact does not match its expected hash."""


class BuildError(StackyardError):
    """One or more artifacts failed to build; the summary lists them with logs."""


class ConflictError(StackyardError):
    """Another build changed what this one commits since its checkout: building again from the new tip is the fix."""


class ToolError(StackyardError):
    """An external tool is missing or failed (dpkg-buildpackage, apt-get, ...)."""


# README "Exit codes". 1 is left to StackyardError itself and to bugs; 75 is sysexits' EX_TEMPFAIL (try again).
EXIT_CODES: dict[type[StackyardError], int] = {
    ConfigError: 2, InputError: 2, ResolutionError: 3, FetchError: 4, IntegrityError: 4, BuildError: 5, ToolError: 6,
    ConflictError: 75,
}


def exit_code(exc: StackyardError) -> int:
    """The exit status of ``exc``: its nearest class in EXIT_CODES (a SmokeTestError is a BuildError's 5), else 1."""
    return next((EXIT_CODES[cls] for cls in type(exc).__mro__ if cls in EXIT_CODES), 1)
