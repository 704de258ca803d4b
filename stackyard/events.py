"""Events the core emits while it works; the CLI renders them.

The library never prints: long steps call a ``Reporter`` with these events so
that a terminal, Buildbot's log or a test can each show progress its own way.
Events are small and many (one per wheel of a wheelhouse): frozen, with slots.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


class Outcome(str, enum.Enum):
    FETCHED = "fetched"
    BUILT = "built"
    CACHED = "cached"
    FAILED = "failed"
    ALLOWED_FAILURE = "allowed-failure"

    @property
    def ok(self) -> bool:
        return self in (Outcome.FETCHED, Outcome.BUILT, Outcome.CACHED)


@dataclass(frozen=True, slots=True)
class StepStarted:
    step: str
    total: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ItemFinished:
    step: str
    name: str
    version: str
    outcome: Outcome
    seconds: float
    index: int
    total: int
    log: Path | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Note:
    step: str
    text: str


@dataclass(frozen=True, slots=True)
class StepFinished:
    step: str
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Unchanged:
    """An artifact's inputs match its last record and the artifact is intact: nothing is built (stackyard.stage)."""

    kind: str
    name: str
    detail: str


@dataclass(frozen=True, slots=True)
class Building:
    """An artifact is being built, and why (no record, inputs changed, --rebuild...)."""

    kind: str
    name: str
    reason: str


Event = StepStarted | ItemFinished | Note | StepFinished | Unchanged | Building
Reporter = Callable[[Event], None]


def discard(_event: Event) -> None:
    """A reporter that ignores everything (library use without a UI)."""
