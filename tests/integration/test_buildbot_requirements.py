"""upper-constraints polled: a real master and worker on loopback follow a local openstack/requirements.

The release's ``requirements_git`` is a local bare repository (branch
stable/2025.1) whose post-receive hook notifies the master's
/change_hook/poller, as a push notification would. Two projects of the fixture
index are built for 2025.1: tinyapp (which installs tinypure) and tinyext
(which does not). Moving tinypure's pin in upper-constraints rewrites both
locks' headers (their inputs digest) but moves only tinyapp's pins: the
wheelhouse is rebuilt and only tinyapp's deb.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from stackyard.wheels.upstream_requirements import FILES
from tests.conftest import free_port
from tests.fixtures.index_server import IndexServer
from tests.integration.buildbot_harness import Api, Master, buildbot_table, ctl, git, notifying_repo
from tests.integration.conftest import make_workspace

pytestmark = pytest.mark.integration

BRANCH = "stable/2025.1"
POLLER = "requirements-2025.1"


class Requirements:
    """The master of this module and its openstack/requirements working copy (pushes go to the bare repository)."""

    def __init__(self, master: Master, work: Path) -> None:
        self.master, self.work = master, work

    @property
    def api(self) -> Api:
        return self.master.api

    def commit(self, message: str, **files: str) -> str:
        for name, text in files.items():
            (self.work / name).write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", f"HEAD:refs/heads/{BRANCH}")  # the hook polls
        return git(self.work, "rev-parse", "HEAD").strip()

    def lock(self, project: str) -> str:
        return (self.master.ws.root / "requirements" / "2025.1" / "locks" / f"{project}.txt").read_text()

    def dist(self, distribution: str) -> str:
        return subprocess.run(["reprepro", "-b", str(self.master.ws.root / "var" / "repo"), "list", distribution],
                              capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def requirements(tmp_path_factory: pytest.TempPathFactory, index: IndexServer, shared_cache: Path) -> Iterator[Requirements]:
    base = tmp_path_factory.mktemp("buildbot-requirements")
    web, pb = free_port(), free_port()
    url = f"http://127.0.0.1:{web}/"
    work, bare = notifying_repo(base / "requirements-work", base / "requirements.git", f"{url}change_hook/poller?poller={POLLER}")
    ws = make_workspace(base / "ws", index.url, shared_cache)
    inputs = ws.root / "requirements" / "2025.1"
    for name in FILES:  # upstream starts where the workspace is
        (work / name).write_text((inputs / name).read_text())
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "the requirements of the test")
    git(work, "push", "-q", "origin", f"HEAD:refs/heads/{BRANCH}")
    (ws.root / "recipes" / "tinyext.yaml").write_text('name: tinyext\nsource: {pypi: tinyext}\nversions: {"2025.1": "1.0"}\n')
    text = ws.config.read_text()
    release = 'series = "epoxy"\n'
    assert text.count(release) == 1
    ws.config.write_text(text.replace(release, release + f'requirements_git = "{bare.as_uri()}"\n')
                         + buildbot_table(web, pb, images=False))
    ws.run("lock", "--release", "2025.1")  # the starting point: both projects locked from these inputs
    r = ctl(ws, "up")
    assert r.returncode == 0, r.stdout + r.stderr
    basedir = ws.root / "var" / "buildbot"
    m = Master(ws, None, Api(url), url, basedir / "twistd.log", (basedir / "secrets" / "user-admin").read_text().strip())
    try:
        m.wait_log(f"{POLLER}: first read of {bare.as_uri()} {BRANCH} at")  # history, not news
        deadline = time.monotonic() + 60
        while not any(w["connected_to"] for w in m.api.get("workers")["workers"]):
            assert time.monotonic() < deadline, "the worker did not connect"
            time.sleep(0.5)
        yield Requirements(m, work)
    finally:
        down = ctl(ws, "down")
        assert down.returncode == 0, down.stdout + down.stderr


def test_one_changed_pin_rebuilds_the_wheelhouse_and_only_the_project_whose_lock_changed(requirements: Requirements) -> None:
    api, master = requirements.api, requirements.master
    tinyext_before = requirements.lock("tinyext")
    assert "tinypure==1.0" in requirements.lock("tinyapp")
    started = time.monotonic()
    uc = (requirements.work / "upper-constraints.txt").read_text()
    assert "tinypure===1.0\n" in uc
    commit = requirements.commit("tinypure 1.1", **{"upper-constraints.txt": uc.replace("tinypure===1.0", "tinypure===1.1")})
    master.wait_log(f"at {commit[:12]}: upper-constraints.txt changed -> wheels-2025.1")

    wheels = api.wait_build("wheels-2025.1", 1, timeout=1200)
    steps = api.steps(wheels)
    failed = [s for s, how in steps.items() if how not in ("success", "skipped")]
    assert wheels["results"] == 0, (steps, [api.step_log(wheels, s)[-3000:] for s in failed])
    assert steps == {"requirements": "success", "lock": "success", "wheels": "success", "wheels-deb": "success",
                     "rebuild changed projects": "success", "promote": "success"}
    props = api.properties(wheels)
    assert props["requirements_commit"] == commit
    # the inputs came from that very commit of the branch
    assert f"(commit {commit}); changed: upper-constraints.txt" in api.step_log(wheels, "requirements")
    source = (master.ws.root / "requirements" / "2025.1" / "SOURCE").read_text()
    assert f"commit: {commit}\n" in source and BRANCH in source
    # every lock was re-locked; both files moved (their inputs digest), only tinyapp's pins did
    locks = {lock["project"]: lock for lock in props["locks"]}
    assert locks["tinyext"]["changed"] and not locks["tinyext"]["pins_changed"]
    assert locks["tinyapp"]["changed"] and locks["tinyapp"]["pins_changed"]
    assert requirements.lock("tinyext") != tinyext_before
    assert "tinypure==1.1" in requirements.lock("tinyapp")
    assert props["changed_projects"] == "tinyapp"
    # the wheelhouse has the new pin's wheel
    assert list(master.ws.wheelhouse().glob("tinypure-1.1-*.whl"))
    # only tinyapp was built (and promoted); tinyext's builder never ran
    assert api.builds("tinyext-2025.1") == []
    (app,) = api.builds("tinyapp-2025.1")
    app_steps = api.steps(app)
    assert app["results"] == 0, app_steps
    assert {k: app_steps[k] for k in ("deb build", "lintian", "smoke test", "publish")} == {
        "deb build": "success", "lintian": "warnings", "smoke test": "success", "publish": "success"}
    (promoted,) = api.builds("promote-2025.1")
    assert promoted["results"] == 0 and api.properties(promoted)["projects"] == "tinyapp"
    assert "venv-tinyapp 1.0-2025.1.1" in requirements.dist("bookworm-2025.1")
    assert "venv-tinyext" not in requirements.dist("bookworm-2025.1-staging")
    print(f"\nfrom the push to the promoted deb: {time.monotonic() - started:.0f}s")


def test_a_commit_that_moves_none_of_the_releases_files_builds_nothing(requirements: Requirements) -> None:
    api, master = requirements.api, requirements.master
    commit = requirements.commit("docs only", **{"README.rst": "openstack/requirements\n"})
    master.wait_log(f"at {commit[:12]}: nothing new")
    time.sleep(2)
    assert len(api.builds("wheels-2025.1")) == 1


def test_an_unreachable_requirements_repository_is_logged_and_retried(requirements: Requirements) -> None:
    master = requirements.master
    bare = requirements.work.parent / "requirements.git"
    cannot = f"{POLLER}: cannot fetch {BRANCH} of {bare.as_uri()}"
    moved = bare.with_name("requirements-moved.git")
    bare.rename(moved)
    try:
        count = master.log.read_text().count(cannot)
        r = master.api.http.post(master.url + "change_hook/poller", params={"poller": POLLER}, timeout=30)
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 60
        while master.log.read_text().count(cannot) == count:
            assert time.monotonic() < deadline, master.log.read_text()[-3000:]
            time.sleep(0.5)
        assert len(master.api.builds("wheels-2025.1")) == 1
    finally:
        moved.rename(bare)
