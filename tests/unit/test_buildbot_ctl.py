"""builders.ctl (make buildbot-up|down): what runs when, through a fake runner; a pid file left by a crash."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest

from builders import ctl
from builders.settings import buildbot_config
from stackyard.config import Config
from stackyard.errors import ToolError
from stackyard.runner import Call
from tests.fakes import FakeRunner

WORKERS = """
[[buildbot.workers]]
name = "local"
[[buildbot.workers]]
name = "remote"
[[buildbot.users]]
name = "admin"
"""

DEAD_PID = int(Path("/proc/sys/kernel/pid_max").read_text())  # pids are below pid_max: never a live process


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return buildbot_config(make_config(extra=WORKERS))


def runner(config: Config) -> FakeRunner:
    basedir = config.buildbot.basedir

    def create_master(call: Call) -> None:
        basedir.mkdir(parents=True)
        (basedir / "buildbot.tac").write_text("# master\n")
        (basedir / "master.cfg.sample").write_text("sample")

    def create_worker(call: Call) -> None:
        wdir = Path(call.argv[-4])
        wdir.mkdir(parents=True)
        (wdir / "buildbot.tac").write_text(f"passwd = {call.argv[-1]!r}\n")

    fake = FakeRunner()
    fake.reply(str(ctl.BIN / "buildbot"), "create-master", effect=create_master)
    fake.reply(str(ctl.BIN / "buildbot-worker"), "create-worker", effect=create_worker)
    return fake


def steps(fake: FakeRunner) -> list[tuple[str, str]]:
    return [(Path(c.argv[0]).name, c.argv[1]) for c in fake.calls]


def pidfile(directory: Path, pid: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "twistd.pid").write_text(f"{pid}\n")
    return directory / "twistd.pid"


def test_up_creates_and_starts_the_master_and_only_the_local_worker(config: Config) -> None:
    fake = runner(config)
    said = ctl.up(config.file, runner=fake)
    basedir = config.buildbot.basedir
    assert steps(fake) == [("buildbot", "create-master"), ("buildbot", "upgrade-master"), ("buildbot", "start"),
                           ("buildbot-worker", "create-worker"), ("buildbot-worker", "start")]
    create = fake.calls[0]
    assert create.argv[-1] == str(basedir) and create.argv[create.argv.index("--config") + 1] == str(ctl.ROOT / "master.cfg")
    assert create.argv[create.argv.index("--db") + 1] == f"sqlite:///{basedir / 'state.sqlite'}"
    assert create.env["STACKYARD_CONFIG"] == str(config.file) and create.env["PATH"].startswith(str(ctl.BIN))
    assert not (basedir / "master.cfg.sample").exists()
    wdir = ctl.worker_dir(config.buildbot, "local")
    assert said == [f"master: http://127.0.0.1:8010/ (log: {basedir / 'twistd.log'})", f"worker local: {wdir}",
                    f"web user admin: password in {basedir / 'secrets' / 'user-admin'}"]
    password = (basedir / "secrets" / "worker-local").read_text().strip()
    assert (wdir / "buildbot.tac").read_text() == f"passwd = {password!r}\n"  # the real one, after create-worker
    assert not ctl.worker_dir(config.buildbot, "remote").exists()  # a remote worker is started where it runs


def test_up_again_upgrades_the_existing_master_and_leaves_a_running_worker(config: Config) -> None:
    ctl.up(config.file, runner=runner(config))
    pidfile(ctl.worker_dir(config.buildbot, "local"), os.getpid())  # a live process: the worker runs
    fake = runner(config)
    said = ctl.up(config.file, runner=fake)
    assert steps(fake) == [("buildbot", "upgrade-master"), ("buildbot", "start")]
    assert f"worker local: already running ({ctl.worker_dir(config.buildbot, 'local')})" in said


def test_a_pid_file_of_a_dead_process_is_removed_so_start_works(tmp_path: Path) -> None:
    stale = pidfile(tmp_path / "master", DEAD_PID)
    assert not ctl.running(tmp_path / "master") and not stale.exists()
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "twistd.pid").write_text("not a pid\n")
    assert not ctl.running(tmp_path / "garbled")
    assert not ctl.running(tmp_path / "never-started")
    pidfile(tmp_path / "alive", os.getpid())
    assert ctl.running(tmp_path / "alive")


def test_down_stops_what_runs_and_says_so(config: Config) -> None:
    fake = FakeRunner()
    assert ctl.down(config.file, runner=fake) == ["nothing was running"] and fake.calls == []
    pidfile(ctl.worker_dir(config.buildbot, "remote"), os.getpid())
    assert ctl.down(config.file, runner=fake) == ["worker remote: stopped"]
    assert fake.calls[0].argv == (str(ctl.BIN / "buildbot-worker"), "stop", str(ctl.worker_dir(config.buildbot, "remote")))


def test_a_failing_buildbot_command_is_a_tool_error_and_main_maps_errors_to_exit_codes(
        config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    fake = runner(config).reply(str(ctl.BIN / "buildbot"), "upgrade-master", returncode=1, stderr="database is locked\n")
    with pytest.raises(ToolError, match=r"buildbot upgrade-master: buildbot exited 1 .*\ndatabase is locked"):
        ctl.up(config.file, runner=fake)
    assert steps(fake)[-1] == ("buildbot", "upgrade-master")  # nothing started after it
    assert ctl.main(["down", "--config", str(config.file)]) == 0
    assert capsys.readouterr().out == "nothing was running\n"
    assert ctl.main(["up", "--config", str(config.file.parent / "missing.toml")]) == 2
    assert capsys.readouterr().err.startswith("buildbot up: error: ")
