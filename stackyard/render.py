"""Terminal rendering of core events and results (the only module that prints)."""

from __future__ import annotations

import sys
from typing import TextIO

from stackyard.events import Building, Event, ItemFinished, Note, Outcome, StepFinished, StepStarted, Unchanged


class ConsoleReporter:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr  # this process's stderr when the reporter is made

    def __call__(self, event: Event) -> None:
        w = self.stream.write
        if isinstance(event, StepStarted):
            w(f"==> {event.step}: {event.total} items {event.detail}\n")
        elif isinstance(event, ItemFinished):
            width = len(str(event.total))
            mark = "!!" if event.outcome == Outcome.FAILED else "  "
            line = f"{mark}[{event.index:>{width}}/{event.total}] {event.outcome.value:<8} {event.name} {event.version}"
            if event.outcome.ok and event.detail:
                line += f": {event.detail}"
            line += f"  ({event.seconds:.1f}s)"
            if not event.outcome.ok:
                line += f"\n      {event.detail}\n      log: {event.log}"
            w(line + "\n")
        elif isinstance(event, Note):
            w(f"    {event.step}: {event.text}\n")
        elif isinstance(event, Unchanged):
            w(f"==> {event.kind} {event.name}: unchanged, {event.detail}\n")
        elif isinstance(event, Building):
            w(f"==> {event.kind} {event.name}: build, {event.reason}\n")
        elif isinstance(event, StepFinished):
            w(f"==> {event.step} done in {event.seconds:.1f}s\n")
        self.stream.flush()


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(line.rstrip() for line in lines)
