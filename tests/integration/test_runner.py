"""stackyard.runner with real (tiny) processes, and a tool failing inside a stage as the user sees it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from stackyard.errors import ToolError, exit_code
from stackyard.runner import MASK, RUNNER
from tests.conftest import Workspace

pytestmark = pytest.mark.integration


def test_output_and_status_go_to_the_log_and_the_error(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    with pytest.raises(ToolError) as info:
        RUNNER.run(["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"], log=log, what="the step failed")
    assert exit_code(info.value) == 6
    assert str(info.value) == f"the step failed: sh exited 3 (log: {log})\nto-stdout\nto-stderr"
    assert log.read_text().splitlines()[:3] == ["$ sh -c 'echo to-stdout; echo to-stderr >&2; exit 3'", "to-stdout", "to-stderr"]
    streamed = tmp_path / "streamed.log"
    r = RUNNER.run(["sh", "-c", "echo one; echo two >&2"], log=streamed, stream=True)
    assert r.returncode == 0 and r.stdout == ""
    assert streamed.read_text().splitlines()[1:3] == ["one", "two"]


def test_the_environment_is_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "https://evil.example/simple")
    monkeypatch.setenv("TZ", "Europe/Berlin")
    r = RUNNER.run(["sh", "-c", 'echo "[$PIP_INDEX_URL|$PIP_CONFIG_FILE|$LC_ALL|$TZ|$EXTRA]"'], env={"EXTRA": "x"})
    assert r.stdout == f"[|{os.devnull}|C.UTF-8|UTC|x]\n"


def test_a_secret_reaches_the_tool_on_stdin_and_nowhere_else(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    r = RUNNER.run(["sh", "-c", 'read pw; test "$pw" = s3cret-pw && echo "got s3cret-pw"'], stdin="s3cret-pw\n", log=log,
                   secrets=["s3cret-pw"])
    assert r.stdout == "got s3cret-pw\n"  # the caller gets the real output
    assert "s3cret-pw" not in log.read_text() and f"got {MASK}" in log.read_text()


def test_a_timeout_kills_the_command_and_what_it_started(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    pidfile = tmp_path / "grandchild.pid"
    started = time.monotonic()
    with pytest.raises(ToolError) as info:
        RUNNER.run(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; echo waiting; wait"], log=log, timeout=1)
    assert time.monotonic() - started < 15
    assert str(info.value) == f"sh timed out after 1 s and was killed (log: {log})\nwaiting"
    pid = int(pidfile.read_text())
    for _ in range(50):  # killed with its group (a zombie until init reaps it)
        stat = Path(f"/proc/{pid}/stat")
        if not stat.exists() or stat.read_text().split(") ")[1].startswith("Z"):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the grandchild {pid} still runs")


def test_a_missing_program_is_a_tool_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="stackyard-no-such-tool is not installed"):
        RUNNER.run(["stackyard-no-such-tool", "--help"], log=tmp_path / "step.log")


def test_a_tool_failing_in_a_stage_is_one_error_line_exit_6_and_its_log(workspace: Workspace) -> None:
    ws = workspace
    ws.run("promote", "--release", "2025.1")  # makes the repository (nothing to promote yet)
    (ws.root / "var/repo/db/packages.db").write_bytes(b"not a berkeley db\n")
    r = ws.run("promote", "--release", "2025.1", check=False)
    log = ws.root / "var/logs/repo.log"
    assert r.returncode == 6, r.stderr
    assert "Traceback" not in r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith("stackyard: error: reprepro list bookworm-2025.1-staging failed: reprepro exited 255 ") and first.endswith(f"(log: {log})")
    assert "packages.db" in r.stderr  # the tail of reprepro's output
    assert f"reprepro --basedir {ws.root / 'var/repo'} --silent '--list-format=" in log.read_text()
    assert "' list bookworm-2025.1-staging\n" in log.read_text()


def test_the_registry_password_is_hashed_from_stdin(tmp_path: Path) -> None:
    from stackyard.images.services import htpasswd_line

    line = htpasswd_line("admin", "pw with spaces'and-quote")
    assert line.startswith("admin:$2y$")
    (tmp_path / "htpasswd").write_text(line + "\n")
    RUNNER.run(["htpasswd", "-v", "-i", str(tmp_path / "htpasswd"), "admin"], stdin="pw with spaces'and-quote\n")
    with pytest.raises(ToolError):
        RUNNER.run(["htpasswd", "-v", "-i", str(tmp_path / "htpasswd"), "admin"], stdin="wrong\n")
