"""builders.master's own steps, run by Buildbot's step harness (buildbot.test.steps): the commands the worker
is asked to run, their exit status and output, and the step's result and properties."""

from __future__ import annotations

import json
import types
from typing import Iterator

import pytest
from buildbot.process.results import FAILURE, RETRY, SUCCESS
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.steps import ExpectShell, TestBuildStepMixin
from twisted.trial import unittest

from builders import master
from stackyard.errors import EXIT_CODES, ConflictError, FetchError
from tests.conftest import restore_handlers, stopping_handlers

COMMAND = ["stackyard", "pin-commit", "--release", "2025.1", "tinyapp", "--since", "c0ffee", "--json"]
REFUSED = ("stackyard: error: stackyard/pins of origin changed requirements/2025.1/locks/tinyapp.txt after c0ffee "
           "(this build's checkout), otherwise than this build did; nothing was committed\n")


@pytest.fixture(autouse=True)
def _reactor_signal_handlers_undone() -> Iterator[None]:
    """trial runs the global reactor, which takes SIGINT and SIGTERM for itself and keeps them once stopped."""
    saved = stopping_handlers()
    yield
    restore_handlers(saved)


class CommitStepTest(TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    def setUp(self):  # type: ignore[no-untyped-def]
        self.setup_test_reactor()
        master.CONFLICTS.clear()
        return self.setup_test_build_step()

    def commit(self, request: int, exit_status: int, stdout: str = "", stderr: str = "") -> None:
        self.setup_step(master.CommitStep(command=COMMAND))
        self.build.requests = [types.SimpleNamespace(id=request)]  # the harness's build has no request of its own
        self.expect_commands(ExpectShell(workdir="wkdir", command=COMMAND).stdout(stdout).stderr(stderr).exit(exit_status))

    def test_a_commit_sets_its_properties(self):  # type: ignore[no-untyped-def]
        self.commit(300, 0, json.dumps({"commit": "beef", "branch": "stackyard/pins", "files": ["a", "b"]}, indent=1))
        self.expect_outcome(result=SUCCESS)
        self.expect_property("pin_commit", "beef")
        self.expect_property("pin_files", "a b")
        return self.run_step()

    def test_a_conflict_builds_again_from_a_new_checkout(self):  # type: ignore[no-untyped-def]
        self.commit(300, EXIT_CODES[ConflictError], stderr=REFUSED)
        self.expect_outcome(result=RETRY)
        return self.run_step()

    def test_a_request_built_again_for_each_of_its_conflicts_fails_the_last_time(self):  # type: ignore[no-untyped-def]
        master.CONFLICTS[300] = master.CONFLICT_RETRIES
        self.commit(300, EXIT_CODES[ConflictError], stderr=REFUSED)
        self.expect_outcome(result=FAILURE)
        return self.run_step()

    def test_any_other_failure_fails_at_once(self):  # type: ignore[no-untyped-def]
        self.commit(300, EXIT_CODES[FetchError], stderr="stackyard: error: cannot push to stackyard/pins of origin\n")
        self.expect_outcome(result=FAILURE)
        return self.run_step()
