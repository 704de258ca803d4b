"""``make demo``'s driver (python -m builders.ctl demo) against a real master and worker on loopback.

It forces the release's wheels builder with the committed pins (the upper-constraints refresh off, the
named projects rebuilt), follows it and the builds it triggers with a line per build and step, and
ends with the builds green; the master's REST API (what the web UI shows) has the same builds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import ROOT, Workspace, free_port
from tests.fixtures.index_server import IndexServer
from tests.integration.buildbot_harness import Api, Master, buildbot_table, ctl
from tests.integration.conftest import make_workspace

pytestmark = pytest.mark.integration


def demo(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"STACKYARD_CONFIG": str(ws.config)}
    return subprocess.run([sys.executable, "-m", "builders.ctl", "demo", "--config", str(ws.config), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=1800)


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory, index: IndexServer, shared_cache: Path) -> Iterator[Master]:
    base = tmp_path_factory.mktemp("demo")
    web, pb = free_port(), free_port()
    ws = make_workspace(base / "ws", index.url, shared_cache)
    # requirements_update = true: the wheels builder has the refresh step, which the demo turns off
    table = buildbot_table(web, pb).replace("requirements_update = false", "requirements_update = true")
    ws.config.write_text(ws.config.read_text() + table)
    up = ctl(ws, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    basedir = ws.root / "var" / "buildbot"
    url = f"http://127.0.0.1:{web}/"
    m = Master(ws, None, Api(url), url, basedir / "twistd.log", (basedir / "secrets" / "user-admin").read_text().strip())
    try:
        m.wait_log("BuildMaster is running")
        yield m
    finally:
        down = ctl(ws, "down")
        assert down.returncode == 0, down.stdout + down.stderr


def promoted(ws: Workspace) -> str:
    return subprocess.run(["reprepro", "-b", str(ws.root / "var" / "repo"), "list", "bookworm-2025.1"],
                          capture_output=True, text=True, check=True).stdout


def test_demo_forces_the_wheels_builder_and_follows_its_chain_to_green(master: Master) -> None:
    uc = master.ws.uc().read_text()
    r = demo(master.ws, "--release", "2025.1", "tinyapp")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    # a line per build started, per step finished, per build finished, in the order they happened
    assert "locks_acquire" not in out and "worker_preparation" not in out  # Buildbot's own steps are not news
    for line in ("wheels-2025.1 #1: started", "  wheels-2025.1 #1 requirements: skipped", "  wheels-2025.1 #1 wheels-deb: success",
                 "tinyapp-2025.1 #1: started", "  tinyapp-2025.1 #1 smoke test: success", "  tinyapp-2025.1 #1 publish: success",
                 "promote-2025.1 #1: started", "  promote-2025.1 #1 promote: success"):
        assert line in out, out
    assert re.search(r"^tinyapp-2025\.1 #1: success in \d+ s$", out, re.M), out
    assert out.index("tinyapp-2025.1 #1: success") < out.index("promote-2025.1 #1: started") < out.index("wheels-2025.1 #1: success")
    assert "3 builds green: wheels-2025.1 #1, tinyapp-2025.1 #1, promote-2025.1 #1" in out
    assert master.ws.uc().read_text() == uc  # the committed pins: upstream was not asked
    # the web UI's data: the same three builds, green
    builds = master.api.builds()
    assert sorted((b["results"], b["complete"]) for b in builds) == [(0, True)] * 3
    assert re.search(r"bookworm-2025\.1\|main\|amd64: venv-tinyapp 1\.0-2025\.1\.1", promoted(master.ws)), promoted(master.ws)


def test_a_second_demo_rebuilds_the_named_projects_although_their_pins_did_not_move(master: Master) -> None:
    r = demo(master.ws, "--release", "2025.1", "tinyapp")
    assert r.returncode == 0, r.stdout + r.stderr
    # the lock is unchanged, yet the project's builder ran (and said its deb's inputs did not change)
    assert "tinyapp-2025.1 #2: started" in r.stdout
    assert re.search(r"  tinyapp-2025\.1 #2 inputs unchanged\?: success \(\d+ s\) unchanged: venv-tinyapp 1\.0-2025\.1\.1", r.stdout), r.stdout
    assert "3 builds green: wheels-2025.1 #2, tinyapp-2025.1 #2, promote-2025.1 #2" in r.stdout


def test_bad_input_is_one_clear_error(master: Master) -> None:
    r = demo(master.ws, "--release", "2025.1", "nosuch")
    assert r.returncode == 2 and r.stderr.startswith("buildbot demo: error: no builder for nosuch in 2025.1\n"), r.stderr
    assert "Traceback" not in r.stderr
    r = demo(master.ws, "--release", "1999.1")
    assert r.returncode == 2 and "1999.1" in r.stderr and "Traceback" not in r.stderr, r.stderr
    # a master that does not answer: the URL and how to start it
    moved = master.ws.root / "moved.toml"
    moved.write_text(re.sub(r"web_port = \d+", f"web_port = {free_port()}", master.ws.config.read_text()))
    r = subprocess.run([sys.executable, "-m", "builders.ctl", "demo", "--config", str(moved), "--release", "2025.1"],
                       cwd=ROOT, capture_output=True, text=True, check=False)
    assert r.returncode == 4 and "does not answer" in r.stderr and "'make up' starts it" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert len(master.api.builds()) == 6  # nothing was forced by any of these


def test_a_failing_step_fails_the_demo_naming_the_build_the_step_and_its_url(master: Master) -> None:
    recipe = master.ws.root / "recipes" / "tinyapp.yaml"
    recipe.write_text(recipe.read_text().replace("  - tinyapp --version\n", "  - tinyapp --version\n  - sh -c 'echo kaboom; exit 3'\n"))
    before = promoted(master.ws)
    r = demo(master.ws, "--release", "2025.1", "tinyapp")
    assert r.returncode == 5, r.stdout + r.stderr
    assert re.search(r"^buildbot demo: error: tinyapp-2025\.1 #3 failure, step 'smoke test': .*\n"
                     rf"  fix: its logs: {re.escape(master.url)}#/builders/\d+/builds/3$", r.stderr, re.M), r.stderr
    assert "Traceback" not in r.stderr
    assert "promote-2025.1 #3" not in r.stdout and promoted(master.ws) == before  # nothing more was promoted
