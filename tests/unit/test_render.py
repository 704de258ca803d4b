"""Terminal rendering: progress lines per event (failures marked, with their log) and aligned tables."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from stackyard.events import ItemFinished, Note, Outcome, StepFinished, StepStarted
from stackyard.render import ConsoleReporter, table


def rendered(*events: object) -> str:
    stream = io.StringIO()
    reporter = ConsoleReporter(stream)
    for event in events:
        reporter(event)  # type: ignore[arg-type]
    return stream.getvalue()


def test_progress_lines_align_the_counter_and_mark_failures_with_their_log() -> None:
    out = rendered(
        StepStarted("wheels", 12, "2025.1 -> /wh"),
        ItemFinished("wheels", "six", "1.17.0", Outcome.FETCHED, 0.25, 3, 12),
        ItemFinished("wheels", "lxml", "5.3.0", Outcome.FAILED, 61.0, 11, 12, Path("/logs/lxml.log"), "gcc failed"),
        ItemFinished("wheels", "pyxattr", "0.8", Outcome.ALLOWED_FAILURE, 1.0, 12, 12, Path("/logs/x.log"), "no headers"),
        Note("wheels", "3 cached"),
        StepFinished("wheels", 75.04),
    )
    assert out.splitlines() == [
        "==> wheels: 12 items 2025.1 -> /wh",
        "  [ 3/12] fetched  six 1.17.0  (0.2s)",
        "!![11/12] failed   lxml 5.3.0  (61.0s)",
        "      gcc failed",
        "      log: /logs/lxml.log",
        "  [12/12] allowed-failure pyxattr 0.8  (1.0s)",
        "      no headers",
        "      log: /logs/x.log",
        "    wheels: 3 cached",
        "==> wheels done in 75.0s",
    ]


def test_a_table_pads_to_the_widest_cell_and_strips_trailing_space() -> None:
    assert table(["package", "n"], [["venv-keystone", "1"], ["x", "100"]]).splitlines() == [
        "package        n",
        "-------------  ---",
        "venv-keystone  1",
        "x              100",
    ]
    assert table(["outcome", "count"], []) == "outcome  count\n-------  -----"


def test_the_default_stream_is_stderr_when_the_reporter_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)  # as pytest's capture, or a caller redirecting stderr, does
    ConsoleReporter()(Note("lock", "keystone: resolving with uv ..."))
    assert stream.getvalue() == "    lock: keystone: resolving with uv ...\n"
