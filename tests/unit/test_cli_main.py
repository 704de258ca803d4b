"""stackyard.cli.main: StackyardError -> its exit code; anything else -> one line and exit 1 (--debug: the traceback)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from stackyard import cli
from stackyard.debs.smoke import SmokeTestError
from stackyard.errors import ConfigError, ConflictError, StackyardError, ToolError, exit_code
from stackyard.http import NotFound


def fail_with(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def command(args: argparse.Namespace) -> int:
        raise exc

    monkeypatch.setattr(cli, "cmd_check", command)


def test_an_unexpected_exception_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    monkeypatch.delenv("STACKYARD_DEBUG", raising=False)
    fail_with(monkeypatch, RuntimeError("first line\n  second line"))
    assert cli.main(["--config", str(tmp_path / "stackyard.toml"), "check"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "stackyard: internal error: RuntimeError: first line second line (run with --debug for the traceback)\n"


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STACKYARD_DEBUG", raising=False)
    fail_with(monkeypatch, ZeroDivisionError("division by zero"))
    with pytest.raises(ZeroDivisionError):
        cli.main(["--debug", "--config", str(tmp_path / "stackyard.toml"), "check"])
    monkeypatch.setenv("STACKYARD_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        cli.main(["--config", str(tmp_path / "stackyard.toml"), "check"])


def test_a_stackyard_error_keeps_its_exit_code_and_debug_adds_the_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.delenv("STACKYARD_DEBUG", raising=False)
    fail_with(monkeypatch, ToolError("reprepro export failed: reprepro exited 254 (log: /x/repo.log)"))
    assert cli.main(["--config", str(tmp_path / "stackyard.toml"), "check"]) == 6
    assert capsys.readouterr().err == "stackyard: error: reprepro export failed: reprepro exited 254 (log: /x/repo.log)\n"
    assert cli.main(["--debug", "--config", str(tmp_path / "stackyard.toml"), "check"]) == 6
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and err.endswith(
        "stackyard: error: reprepro export failed: reprepro exited 254 (log: /x/repo.log)\n")


def test_a_missing_config_is_still_a_configuration_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["--config", str(tmp_path / "nope.toml"), "check"]) == 2
    assert capsys.readouterr().err.startswith("stackyard: error: ")


@pytest.mark.parametrize(("error", "code"), [
    (ConfigError("x"), 2), (ToolError("x"), 6), (StackyardError("x"), 1), (ConflictError("x"), 75),
    (SmokeTestError("x"), 5), (NotFound("x"), 4),  # a subclass: its nearest listed class decides
])
def test_every_error_maps_to_the_exit_code_the_readme_lists(error: StackyardError, code: int) -> None:
    assert exit_code(error) == code
