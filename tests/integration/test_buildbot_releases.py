"""Upstream releases drive the builds: the openstack/releases poller with a real master and worker on loopback.

A local openstack/releases repository (a few deliverable files copied from
../shared/openstack-releases plus ``tinyapp.yaml``) notifies the master's
/change_hook/poller on every push; tinyapp comes from a package index of the
module's own (a copy of the fixture index: versions 1.0, 1.1, 1.2, 1.5; 1.3 is
uploaded while a build waits for it; 1.4 never). Images are off
(``buildbot.images = true``): a version's deb lands in staging and its image in the registry.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from stackyard.config import load_config
from stackyard.images.build import read_record
from stackyard.images.registry import Registry
from stackyard.images.services import registry_password
from tests.conftest import ROOT, free_port, images_toml
from tests.fixtures import projects
from tests.fixtures.index_server import IndexServer, write_index
from tests.integration.buildbot_harness import (
    BIN,
    Api,
    Master,
    ReleasesRepo,
    buildbot_table,
    ctl,
    deliverable,
    make_releases_repo,
)
from tests.integration.conftest import make_workspace
from tests.integration.test_buildbot import rendered

pytestmark = pytest.mark.integration

BUILDER = "tinyapp-2025.1"
TINYAPP = "deliverables/epoxy/tinyapp.yaml"
KEYSTONE = "deliverables/epoxy/keystone.yaml"
ATTEMPTS = 6  # 'stackyard wait-for': waits of 1, 2, 4, 8, 10 s


@pytest.fixture(scope="module")
def own_index(tmp_path_factory: pytest.TempPathFactory, index: IndexServer) -> Iterator[IndexServer]:
    """The fixture index's files plus tinyapp 1.5, served from a directory of this module's (it changes)."""
    root = tmp_path_factory.mktemp("releases-index")
    shutil.copytree(index.root / "files", root / "files")
    projects.tinyapp(root / "files", "1.5")
    with IndexServer(root) as server:
        yield server


class Releases:
    """The master of this module, its openstack/releases repository and its index."""

    def __init__(self, master: Master, repo: ReleasesRepo, index: IndexServer) -> None:
        self.master, self.repo, self.index = master, repo, index
        self.tinyapp = ["1.0"]  # versions in deliverables/epoxy/tinyapp.yaml

    @property
    def api(self) -> Api:
        return self.master.api

    def add_tinyapp(self, *versions: str) -> str:
        self.tinyapp += versions
        self.repo.write(TINYAPP, deliverable("tinyapp", *self.tinyapp))
        return self.repo.commit(f"tinyapp {' '.join(versions)} for epoxy")

    def count(self, text: str) -> int:
        return self.master.log.read_text(errors="replace").count(text)

    def wait_count(self, text: str, more_than: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.count(text) <= more_than:
            assert time.monotonic() < deadline, f"{text!r} not logged again:\n{self.master.log.read_text()[-3000:]}"
            time.sleep(0.5)

    def poll(self) -> None:
        r = self.api.http.post(self.master.url + "change_hook/poller", params={"poller": "openstack-releases"}, timeout=30)
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory, own_index: IndexServer, shared_cache: Path,
             docker_engine: str) -> Iterator[Releases]:
    base = tmp_path_factory.mktemp("buildbot-releases")
    web, pb = free_port(), free_port()
    url = f"http://127.0.0.1:{web}/"
    repo = make_releases_repo(
        base / "upstream", f"{url}change_hook/poller?poller=openstack-releases",
        copy=(KEYSTONE, "deliverables/epoxy/placement.yaml", "deliverables/flamingo/keystone.yaml",
              "deliverables/gazpacho/keystone.yaml", "data/series_status.yaml"),
        files={TINYAPP: deliverable("tinyapp", "1.0"), "deliverables/epoxy/tinyghost.yaml": deliverable("tinyghost", "1.0")},
    )
    ws = make_workspace(base / "ws", own_index.url, shared_cache)  # tinyapp from the index: 2025.1 1.0, 2025.2 1.2
    recipes = ws.root / "recipes"
    # keystone: its deliverable is read (and broken below), its builder never runs; tinyghost: from git, so its tag
    # poller's (an unreachable repository), not the releases poller's
    (recipes / "keystone.yaml").write_text('name: keystone\nsource: {pypi: keystone}\nversions: {"2025.1": "27.0.2"}\n')
    (recipes / "tinyghost.yaml").write_text(
        f'name: tinyghost\nsource: {{git: "{(base / "gone" / "tinyghost.git").as_uri()}"}}\nversions: {{"2025.1": "1.0"}}\n')
    # project builders also build and push the image: the session's engine, a registry of the workspace's own
    shutil.copytree(ROOT / "images", ws.root / "images")
    ws.config.write_text(ws.config.read_text() + buildbot_table(web, pb, images=True, releases_repo=repo.url,
                                                                wait_attempts=ATTEMPTS) + images_toml(docker_engine))
    ws.run("services", "up")
    r = ctl(ws, "up")
    assert r.returncode == 0, r.stdout + r.stderr
    basedir = ws.root / "var" / "buildbot"
    m = Master(ws, None, Api(url), url, basedir / "twistd.log", (basedir / "secrets" / "user-admin").read_text().strip())
    try:
        m.wait_log("openstack-releases: first read of 3 deliverable files")  # history, not news
        deadline = time.monotonic() + 60
        while not any(w["connected_to"] for w in m.api.get("workers")["workers"]):
            assert time.monotonic() < deadline, "the worker did not connect"
            time.sleep(0.5)
        yield Releases(m, repo, own_index)
    finally:
        down = ctl(ws, "down")
        ws.run("services", "down")
        assert down.returncode == 0, down.stdout + down.stderr


def succeeded(r: Releases, number: int, version: str) -> dict:  # type: ignore[type-arg]
    api = r.api
    build = api.wait_build(BUILDER, number, timeout=1200 if number == 1 else 600)  # the first also makes the base image
    steps = api.steps(build)
    assert build["results"] == 0, (steps, [api.step_log(build, s)[-3000:] for s, how in steps.items() if how == "failure"])
    assert api.steps(build) == {"wait-for": "success", "pin": "success", "lock": "success", "wheels": "success",
                                "inputs unchanged?": "success", "deb build": "success", "lintian": "warnings",
                                "smoke test": "success", "publish": "success", "image": "success"}
    assert api.properties(build)["version"] == version
    assert f"venv-tinyapp {version}-2025.1.1" in r.master.staging()
    # ... and its image in the registry, built from that deb
    config = load_config(r.master.ws.config)
    record = read_record(config, config.release("2025.1"), "tinyapp")
    assert record is not None and record.version == f"{version}-2025.1.1"
    assert Registry(config.images, registry_password(config.images)).digest("tinyapp", "2025.1-debian_bookworm") == record.digest
    assert f'"2025.1": "{version}"' in (r.master.ws.root / "recipes" / "tinyapp.yaml").read_text()
    return build


def test_a_version_added_to_its_series_deliverable_builds_only_that_project_and_release(releases: Releases) -> None:
    api = releases.api
    releases.add_tinyapp("1.2")
    build = succeeded(releases, 1, "1.2")
    assert "attempt 1/6: tinyapp 1.2 is on" in api.step_log(build, "wait-for")
    assert [b["builderid"] for b in api.builds()] == [api.builder_id(BUILDER)]  # nothing else ran

    # re-polling the same commit starts nothing more
    before = releases.count(": nothing new")
    releases.poll()
    releases.wait_count(": nothing new", before)
    # a series with no configured release (gazpacho), a version at the pin (flamingo: 2025.2 is at 1.2),
    # an rc, and a git recipe's version (its tag poller builds it): nothing
    releases.repo.write("deliverables/gazpacho/tinyapp.yaml", deliverable("tinyapp", "2.0", "2.1"))
    releases.repo.write("deliverables/flamingo/tinyapp.yaml", deliverable("tinyapp", "1.2"))
    releases.repo.write("deliverables/epoxy/tinyghost.yaml", deliverable("tinyghost", "1.0", "1.1"))
    commit = releases.add_tinyapp("1.3.0rc1")
    releases.master.wait_log(f"at {commit[:12]}: nothing to build")
    time.sleep(2)
    assert len(api.builds()) == 1 and api.builds("tinyapp-2025.2") == [] and api.builds("tinyghost-2025.1") == []


def test_the_build_waits_for_a_version_that_reaches_the_index_after_its_commit(releases: Releases) -> None:
    api = releases.api
    releases.add_tinyapp("1.3")  # not on the index yet
    deadline = time.monotonic() + 120
    while True:
        running = [b for b in api.builds(BUILDER) if b["number"] == 2]
        if running and "wait-for" in api.steps(running[0]) and "is not on" in api.step_log(running[0], "wait-for", started=True):
            break
        assert time.monotonic() < deadline, api.builds(BUILDER)
        time.sleep(0.5)
    projects.tinyapp(releases.index.root / "files", "1.3")  # the release job uploads it
    write_index(releases.index.root)
    build = succeeded(releases, 2, "1.3")
    log = api.step_log(build, "wait-for")
    assert f"attempt 1/6: tinyapp 1.3 is not on {releases.index.url} yet" in log and "tinyapp 1.3 is on" in log, log


def test_a_version_that_never_reaches_the_index_fails_the_build_and_publishes_nothing(releases: Releases) -> None:
    api = releases.api
    before = releases.master.staging()
    releases.add_tinyapp("1.4")  # never uploaded
    build = api.wait_build(BUILDER, 3, timeout=180)
    assert build["results"] == 2, api.steps(build)  # failure
    assert api.steps(build) == {"wait-for": "failure"}  # halted: no pin, nothing built or published
    log = api.step_log(build, "wait-for")
    assert f"tinyapp 1.4: not on {releases.index.url} after {ATTEMPTS} attempts" in log, log
    assert releases.master.staging() == before
    assert '"2025.1": "1.3"' in (releases.master.ws.root / "recipes" / "tinyapp.yaml").read_text()


def test_a_malformed_deliverable_is_logged_with_file_and_line_and_other_projects_build(releases: Releases) -> None:
    lines = releases.repo.read(KEYSTONE).splitlines(keepends=True)
    (line,) = [i for i, text in enumerate(lines, 1) if text == "  - version: 27.0.2\n"]
    lines[line - 1] = "  - version: 27.0.3: [\n"
    releases.repo.write(KEYSTONE, "".join(lines))
    commit = releases.add_tinyapp("1.5")
    releases.master.wait_log(f"openstack-releases: skipped a malformed deliverable at {commit[:12]}: {KEYSTONE}:{line}: not YAML")
    succeeded(releases, 4, "1.5")
    assert releases.api.builds("keystone-2025.1") == []


def test_the_web_ui_shows_the_releases_poller_its_changes_and_schedulers(releases: Releases, tmp_path: Path) -> None:
    url = releases.master.url
    changes = rendered(f"{url}#/changes", tmp_path / "p1", tmp_path / "changes.png")
    assert "tinyapp 1.2 released (deliverables/epoxy/tinyapp.yaml" in changes, changes[:3000]
    schedulers = rendered(f"{url}#/schedulers", tmp_path / "p2", tmp_path / "schedulers.png")
    assert "release-tinyapp-2025.1" in schedulers and "tag-tinyghost-2025.1" in schedulers, schedulers[:3000]


def test_what_the_poller_saw_survives_a_master_restart(releases: Releases) -> None:
    master = releases.master
    nothing_new, first = releases.count(": nothing new"), releases.count("openstack-releases: first read")
    subprocess.run([str(BIN / "buildbot"), "restart", str(master.basedir)], env=master.env(), check=True, capture_output=True)
    releases.wait_count(": nothing new", nothing_new)  # the poll at launch: the same commit, already read
    assert releases.count("openstack-releases: first read") == first
    assert len(releases.api.builds()) == 4


def test_an_unreachable_releases_repository_is_logged_and_retried_and_the_master_keeps_running(releases: Releases) -> None:
    repo, api = releases.repo, releases.api
    cannot = f"openstack-releases: cannot fetch master of {repo.url}"
    moved = repo.bare.with_name("releases-moved.git")
    repo.bare.rename(moved)
    try:
        count = releases.count(cannot)
        releases.poll()
        releases.wait_count(cannot, count)
        releases.poll()  # the next poll tries again
        releases.wait_count(cannot, count + 1)
        # the other pollers and the web UI keep going
        ghost = releases.count("tags-tinyghost: cannot list the tags of")
        r = api.http.post(releases.master.url + "change_hook/poller", params={"poller": "tags-tinyghost"}, timeout=30)
        assert r.status_code == 200, r.text
        releases.wait_count("tags-tinyghost: cannot list the tags of", ghost)
        assert BUILDER in {b["name"] for b in api.get("builders")["builders"]}
        assert {s["name"] for s in api.get("changesources")["changesources"]} == {"openstack-releases", "tags-tinyghost"}
    finally:
        moved.rename(repo.bare)
    commit = releases.add_tinyapp("1.6.0rc1")  # reachable again: the push's poll reads it
    releases.master.wait_log(f"at {commit[:12]}: nothing to build")
    assert len(api.builds()) == 4
