"""The Buildbot stage with a real master and worker on loopback, in a temporary directory.

Upstream is a local git repository holding the tiny fixture project; its
post-receive hook notifies the master's /change_hook/poller, as an upstream
notification would. Everything a build does is a stackyard command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from stackyard.config import load_config
from stackyard.images.build import read_record
from stackyard.images.registry import Registry
from stackyard.images.services import registry_password
from tests.conftest import ROOT, free_port, images_toml
from tests.fixtures.index_server import IndexServer
from tests.integration.buildbot_harness import (
    BIN,
    Api,
    Master,
    buildbot_table,
    configuration_repository,
    ctl,
    git,
    kill_tree,
    make_upstream,
)
from tests.integration.conftest import make_workspace

pytestmark = pytest.mark.integration

BUILDER = "tinyapp-2025.1"
PINS = "stackyard/pins"


def checkconfig(config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"STACKYARD_CONFIG": str(config)}
    buildbot = Path(sys.executable).parent / "buildbot"
    return subprocess.run([str(buildbot), "checkconfig", str(ROOT / "master.cfg")], env=env, capture_output=True, text=True, check=False)


def test_checkconfig_passes_on_the_repository_master_cfg() -> None:
    r = checkconfig(ROOT / "stackyard.toml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Config file is good!" in r.stdout


def test_checkconfig_fails_naming_file_and_key_of_a_broken_recipe(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", "http://127.0.0.1:9/simple", tmp_path / "cache")
    recipe = ws.root / "recipes" / "tinyapp.yaml"
    recipe.write_text(recipe.read_text().replace('"2025.1": "1.0"', '"2025.1": 1.0'))
    r = checkconfig(ws.config)
    assert r.returncode != 0
    assert f"{recipe}: versions.2025.1: quote the version so YAML keeps it a string" in r.stdout + r.stderr


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory, index: IndexServer, shared_cache: Path,
           docker_engine: str) -> Iterator[Master]:
    base = tmp_path_factory.mktemp("buildbot")
    web, pb = free_port(), free_port()
    url = f"http://127.0.0.1:{web}/"
    upstream = make_upstream(base / "upstream", f"{url}change_hook/poller?poller=tags-tinyapp")
    ws = make_workspace(base / "ws", index.url, shared_cache)
    recipes = ws.root / "recipes"
    (recipes / "tinyapp.yaml").write_text(textwrap.dedent(f"""\
        name: tinyapp
        description: a tiny fixture project
        source:
          git: {upstream.url}
        versions:
          "2025.1": "1.0"
        console_scripts: [tinyapp]
        smoke:
          - tinyapp --version
        """))
    # two more projects (of the other release) whose builders must not run: one from the index, one
    # whose upstream is unreachable
    (recipes / "tinypure.yaml").write_text('name: tinypure\nsource: {pypi: tinypure}\nversions: {"2025.2": "1.0"}\n')
    (recipes / "tinyghost.yaml").write_text(
        f'name: tinyghost\nsource: {{git: "{(base / "gone" / "tinyghost.git").as_uri()}"}}\nversions: {{"2025.2": "1.0"}}\n')
    # project builders also build and push the image: the session's engine, a registry of the workspace's own
    shutil.copytree(ROOT / "images", ws.root / "images")
    ws.config.write_text(ws.config.read_text() + buildbot_table(web, pb, images=True, pins_branch=PINS)
                         + images_toml(docker_engine))
    configuration_repository(ws.root, base / "configuration.git")  # a tag build's pin becomes a commit on PINS there
    ws.run("services", "up")
    r = ctl(ws, "up")
    assert r.returncode == 0, r.stdout + r.stderr
    basedir = ws.root / "var" / "buildbot"
    m = Master(ws, upstream, Api(url), url, basedir / "twistd.log", (basedir / "secrets" / "user-admin").read_text().strip(),
               base / "configuration.git")
    try:
        m.wait_log("tags-tinyapp: 1 existing tags")  # the first poll: history, not news
        deadline = time.monotonic() + 60
        while not any(w["connected_to"] for w in m.api.get("workers")["workers"]):
            assert time.monotonic() < deadline, "the worker did not connect"
            time.sleep(0.5)
        yield m
    finally:
        down = ctl(ws, "down")
        ws.run("services", "down")
        assert down.returncode == 0, down.stdout + down.stderr


def test_a_pushed_tag_builds_tests_and_publishes_that_project_only(master: Master) -> None:
    api = master.api
    # an rc, then the final release on the same commit: the rc is seen but not built ...
    master.upstream.release("1.1", "1.1.0rc1")
    master.wait_log("tags-tinyapp: new tags in")
    assert api.builds(BUILDER) == []
    # ... and the final tag on that already-seen commit is built
    master.upstream.tag("1.1")
    build = api.wait_build(BUILDER, 1, timeout=1200)  # the first build also makes the base image (vfs: minutes on a busy host)
    assert build["results"] == 0, (api.steps(build), master.log.read_text()[-3000:])
    assert api.steps(build) == {"pin": "success", "lock": "success", "pin commit": "success", "wheels": "success",
                                "inputs unchanged?": "success",
                                "deb build": "success", "lintian": "warnings", "smoke test": "success",
                                "publish": "success", "image": "success"}
    assert api.properties(build)["version"] == "1.1"
    assert_deb_steps_readable(api, build, "1.1-2025.1.1")
    # the new pin and its lock are a commit on the configuration repository's PINS branch, named in the build's properties
    commit = api.properties(build)["pin_commit"]
    configuration = master.configuration
    assert configuration is not None
    assert git(configuration, "rev-parse", f"refs/heads/{PINS}").strip() == commit
    assert '"2025.1": "1.1"' in git(configuration, "show", f"{commit}:recipes/tinyapp.yaml")
    assert git(configuration, "show", f"{commit}:requirements/2025.1/locks/tinyapp.txt") == \
        (master.ws.root / "requirements" / "2025.1" / "locks" / "tinyapp.txt").read_text()
    assert git(configuration, "log", "-1", "--format=%s", commit).strip() == "tinyapp 1.1 for 2025.1: pin and lock"
    assert re.search(r"bookworm-2025\.1-staging\|main\|amd64: venv-tinyapp 1\.1-2025\.1\.1", master.staging()), master.staging()
    # ... and its image in the registry, built from that deb
    config = load_config(master.ws.config)
    images = config.images
    record = read_record(config, config.release("2025.1"), "tinyapp")
    assert record is not None and record.version == "1.1-2025.1.1"
    assert Registry(images, registry_password(images)).digest("tinyapp", "2025.1-debian_bookworm") == record.digest
    assert '"2025.1": "1.1"' in (master.ws.root / "recipes" / "tinyapp.yaml").read_text()
    # nothing else ran: no other project, no wheels or promote builder
    builder_id = api.builder_id(BUILDER)
    assert [b["builderid"] for b in api.builds()] == [builder_id]


def assert_deb_steps_readable(api: Api, build: dict, version: str) -> None:  # type: ignore[type-arg]
    """The deb as a packager reads it: a check saying what is left, then build, lintian and smoke test, each
    with its own log; lintian's warnings are the step's (WARNINGS, its summary, a log of them), the build stays green."""
    assert api.step(build, "inputs unchanged?")["state_string"].startswith("to do: build lintian smoke (New upstream release")
    props = api.properties(build)
    assert props["deb_version"] == version and props["deb_build"]
    build_logs = api.step_logs(build, "deb build")
    assert "dpkg-buildpackage" in build_logs["dpkg-buildpackage"] and f"venv-tinyapp_{version}" in build_logs["stdio"]
    lintian = api.step(build, "lintian")
    lintian_logs = api.step_logs(build, "lintian")
    warnings = [line for line in lintian_logs["stdio"].splitlines() if line.startswith("W: ")]
    assert warnings and lintian["results"] == 1 and props["lintian_warnings"] == len(warnings)
    assert lintian_logs[f"{len(warnings)} Warnings"].splitlines() == warnings
    assert re.fullmatch(rf"lintian: {len(warnings)} warnings \(.*no-manual-page.*\)", lintian["state_string"]), lintian
    smoke_logs = api.step_logs(build, "smoke test")
    assert "ok: purge leaves nothing behind" in smoke_logs["stdio"] and "apt-get install" in smoke_logs["smoke"]
    assert build["results"] == 0  # lintian's warnings do not turn the build orange (warnOnWarnings off)


def test_an_upper_constraints_change_rebuilds_the_wheelhouse_then_the_changed_projects_then_promotes(master: Master) -> None:
    api = master.api
    master.ws.uc().write_text("tinyext===1.0\ntinypure===1.1\n")
    api.login("admin", master.admin_password)
    r = api.force("force-wheels-2025_1", "wheels-2025.1", release="2025.1")
    assert r.status_code == 200 and "error" not in r.json(), r.text
    wheels = api.wait_build("wheels-2025.1", 1)
    assert wheels["results"] == 0, api.steps(wheels)
    assert api.steps(wheels) == {"lock": "success", "requirements commit": "success", "wheels": "success", "wheels-deb": "success",
                                 "rebuild changed projects": "success", "promote": "success"}
    assert api.properties(wheels)["changed_projects"] == "tinyapp"
    # the moved upper-constraints and the locks made from it are a commit on the pins branch, on top of the tag's
    commit = api.properties(wheels)["pin_commit"]
    assert master.configuration is not None
    assert git(master.configuration, "rev-parse", f"refs/heads/{PINS}").strip() == commit
    assert "tinypure===1.1" in git(master.configuration, "show", f"{commit}:requirements/2025.1/upper-constraints.txt")
    assert "tinypure==1.1" in git(master.configuration, "show", f"{commit}:requirements/2025.1/locks/tinyapp.txt")
    assert git(master.configuration, "log", "-1", "--format=%s", f"{commit}^").strip() == "tinyapp 1.1 for 2025.1: pin and lock"
    (rebuilt,) = [b for b in api.builds(BUILDER) if b["number"] == 2]
    assert rebuilt["results"] == 0 and api.steps(rebuilt)["pin"] == "skipped", api.steps(rebuilt)
    (promoted,) = api.builds("promote-2025.1")
    assert promoted["results"] == 0 and api.properties(promoted)["projects"] == "tinyapp"
    final = subprocess.run(["reprepro", "-b", str(master.ws.root / "var" / "repo"), "list", "bookworm-2025.1"],
                           capture_output=True, text=True, check=True).stdout
    assert "venv-tinyapp 1.1-2025.1.2" in final, final  # the lock changed: a new revision, promoted
    # forcing it again changes nothing: no lock changed, nothing is rebuilt or promoted
    r = api.force("force-wheels-2025_1", "wheels-2025.1", release="2025.1")
    again = api.wait_build("wheels-2025.1", 2)
    assert again["results"] == 0 and api.steps(again)["rebuild changed projects"] == "skipped", api.steps(again)
    assert len(api.builds(BUILDER)) == 2 and len(api.builds("promote-2025.1")) == 1


def test_a_build_request_queued_without_a_worker_survives_a_master_restart(master: Master) -> None:
    api, env = master.api, master.env()
    worker = master.ws.root / "var" / "buildbot-workers" / "local"
    subprocess.run([str(BIN / "buildbot-worker"), "stop", str(worker)], env=env, check=True, capture_output=True)
    api.login("admin", master.admin_password)
    r = api.force("force-promote-2025_1", "promote-2025.1", release="2025.1", projects="tinyapp")
    assert r.status_code == 200 and "error" not in r.json(), r.text
    number = len(api.builds("promote-2025.1")) + 1
    subprocess.run([str(BIN / "buildbot"), "restart", str(master.basedir)], env=env, check=True, capture_output=True)
    pending = api.get("buildrequests", complete="false")["buildrequests"]
    assert [p["builderid"] for p in pending] == [api.builder_id("promote-2025.1")], pending
    subprocess.run([str(BIN / "buildbot-worker"), "start", str(worker)], env=env, check=True, capture_output=True)
    build = api.wait_build("promote-2025.1", number, timeout=120)
    assert build["results"] == 0, api.steps(build)
    assert api.properties(build)["projects"] == "tinyapp"


def test_a_worker_lost_mid_build_publishes_nothing_and_the_build_is_retried(master: Master) -> None:
    api, env = master.api, master.env()
    worker = master.ws.root / "var" / "buildbot-workers" / "local"
    number = len(api.builds(BUILDER)) + 1
    master.upstream.release("1.2", "1.2")  # the hook polls; the tag starts a build
    deadline = time.monotonic() + 300
    while True:
        running = [b for b in api.builds(BUILDER) if b["number"] == number]
        if running and api.steps(running[0]).get("deb build") == "not run":  # started, not finished
            break
        assert time.monotonic() < deadline, api.builds(BUILDER)
        time.sleep(0.5)
    before = master.staging()
    kill_tree(int((worker / "twistd.pid").read_text()))  # the worker and the stackyard deb it runs
    lost = api.wait_build(BUILDER, number, timeout=120)
    assert lost["results"] == 5, lost  # retry: Buildbot puts the request back in the queue
    assert master.staging() == before
    (worker / "twistd.pid").unlink()
    subprocess.run([str(BIN / "buildbot-worker"), "start", str(worker)], env=env, check=True, capture_output=True)
    retried = api.wait_build(BUILDER, number + 1)
    steps = api.steps(retried)
    failed = [name for name, state in steps.items() if state not in ("success", "skipped")]
    assert retried["results"] == 0, f"{steps}\n" + "\n".join(api.step_log(retried, name)[-3000:] for name in failed[:1])
    assert api.properties(retried)["version"] == "1.2"
    assert "venv-tinyapp 1.2-2025.1.1" in master.staging()


def test_a_build_whose_inputs_did_not_change_says_so_in_one_fast_step_and_skips_build_lintian_and_smoke(master: Master) -> None:
    api = master.api
    number = len(api.builds(BUILDER)) + 1
    api.login("admin", master.admin_password)
    r = api.force("force-tinyapp-2025_1", BUILDER, release="2025.1", project="tinyapp", version="")
    assert r.status_code == 200 and "error" not in r.json(), r.text
    build = api.wait_build(BUILDER, number)
    steps = api.steps(build)
    assert build["results"] == 0, steps
    assert {k: steps[k] for k in ("inputs unchanged?", "deb build", "lintian", "smoke test")} == {
        "inputs unchanged?": "success", "deb build": "skipped", "lintian": "skipped", "smoke test": "skipped"}
    check = api.step(build, "inputs unchanged?")
    assert check["state_string"] == "unchanged: venv-tinyapp 1.2-2025.1.1", check
    seconds = check["complete_at"] - check["started_at"]
    print(f"\n'inputs unchanged?' took {seconds}s")
    assert seconds <= 20, check  # the lock and packaging digests and the file's sha256: no tool runs
    assert not any(api.step(build, s)["hidden"] for s in ("deb build", "lintian", "smoke test"))  # shown as skipped


def test_forcing_needs_a_login_and_a_failing_smoke_test_fails_the_build_and_publishes_nothing(master: Master) -> None:
    api = master.api
    before = master.staging()
    refused = Api(master.url).force("force-tinyapp-2025_1", BUILDER, release="2025.1", project="tinyapp", version="")
    assert refused.status_code == 403 and "you need to have role 'admins'" in refused.text, refused.text
    recipe = master.ws.root / "recipes" / "tinyapp.yaml"
    recipe.write_text(recipe.read_text().replace("  - tinyapp --version", "  - tinyapp --version\n  - sh -c 'echo kaboom; exit 3'"))
    number = len(api.builds(BUILDER)) + 1
    api.login("admin", master.admin_password)
    r = api.force("force-tinyapp-2025_1", BUILDER, release="2025.1", project="tinyapp", version="")
    assert r.status_code == 200 and "error" not in r.json(), r.text
    build = api.wait_build(BUILDER, number)
    assert build["results"] == 2, api.steps(build)  # failure
    steps = api.steps(build)
    assert steps["smoke test"] == "failure" and "publish" not in steps, steps  # halted before publishing
    assert steps["deb build"] == "success" and steps["lintian"] == "warnings"  # the recipe (packaging) changed: built again
    assert "kaboom" in api.step_log(build, "smoke test")
    assert steps.get("pin") in (None, "skipped")  # no upstream ref given: the recipe's pin is built
    assert master.staging() == before


def test_an_unreachable_upstream_is_logged_and_retried_and_the_master_keeps_running(master: Master) -> None:
    master.wait_log("tags-tinyghost: cannot list the tags of")
    count = master.log.read_text().count("tags-tinyghost: cannot list the tags of")
    api = master.api
    r = api.http.post(master.url + "change_hook/poller", params={"poller": "tags-tinyghost"}, timeout=30)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 30
    while master.log.read_text().count("tags-tinyghost: cannot list the tags of") == count:
        assert time.monotonic() < deadline, "the poll was not retried"
        time.sleep(0.5)
    assert api.builds("tinyghost-2025.2") == [] and api.builds("tinypure-2025.2") == []
    assert {b["name"] for b in api.get("builders")["builders"]} >= {BUILDER, "tinypure-2025.2", "tinyghost-2025.2", "wheels-2025.1"}



CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--window-size=1400,900",
                  "--virtual-time-budget=15000"]


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
                          capture_output=True, text=True, check=False, timeout=120)


def rendered(url: str, profile: Path, shot: Path, expect: tuple[str, ...] = ()) -> str:
    """A headless Chromium screenshot of ``url`` (a PNG at ``shot``) and the text of the rendered page: dumped
    again (at most 4 times) until it shows ``expect``, as a person waits for the page's data to arrive."""
    r = chromium(url, profile / "shot", f"--screenshot={shot}")
    assert r.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000, r.stderr[-2000:]
    for attempt in range(4):
        dom = chromium(url, profile / f"dom{attempt}", "--dump-dom")
        assert dom.returncode == 0, dom.stderr[-2000:]
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom.stdout)).replace("&nbsp;", " ")
        if all(e in text for e in expect):
            break
    return text


def test_the_web_ui_shows_the_builders_and_a_finished_build(master: Master, tmp_path: Path) -> None:
    builders = rendered(f"{master.url}#/builders", tmp_path / "p1", tmp_path / "builders.png",
                        (BUILDER, "promote-2025.1", "refs/tags/1.1 (1)"))
    for name in (BUILDER, "wheels-2025.1", "promote-2025.1", "tinypure-2025.2", "Waterfall View", "Console View", "Grid View"):
        assert name in builders, builders[:3000]
    assert "refs/tags/1.1 (1)" in builders  # the tag build, on the builder's row
    build = rendered(f"{master.url}#/builders/{master.api.builder_id(BUILDER)}/builds/1", tmp_path / "p2", tmp_path / "build.png",
                     ("build successful", "to do: build lintian smoke"))
    assert "tinyapp-2025.1/1" in build and "build successful" in build and "SUCCESS" in build, build[:3000]
    for step in ("pin", "lock", "wheels", "deb", "smoke", "publish"):
        assert f"'stackyard {step} ...'" in build
    assert "to do: build lintian smoke" in build and re.search(r"lintian: \d+ warnings", build), build[:3000]


def test_make_up_twice_is_a_no_op_and_after_a_crash_it_recovers(master: Master) -> None:
    again = ctl(master.ws, "up")  # what a second 'make up' (and 'make demo') runs
    assert again.returncode == 0, again.stdout + again.stderr
    assert "master: already running" in again.stdout and "worker local: already running" in again.stdout

    worker = master.ws.root / "var" / "buildbot-workers" / "local"
    pids = [int((d / "twistd.pid").read_text()) for d in (master.basedir, worker)]
    for pid in pids:  # the machine crashed: both die at once and leave their pid files
        kill_tree(pid)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text() for pid in pids):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert (master.basedir / "twistd.pid").exists() and (worker / "twistd.pid").exists()

    recovered = ctl(master.ws, "up")
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert "already running" not in recovered.stdout
    deadline = time.monotonic() + 90
    while True:
        try:
            if any(w["connected_to"] for w in master.api.get("workers")["workers"]):
                break
        except Exception:  # noqa: BLE001 - the master is still starting
            pass
        assert time.monotonic() < deadline, "the worker did not reconnect after the restart"
        time.sleep(0.5)
