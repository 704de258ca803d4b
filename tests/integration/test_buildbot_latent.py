"""A Docker latent worker from stackyard.toml, on the engine stackyard starts, with a real master.

The master has no other worker: the build waits for the container the master starts on demand from the
worker image stackyard built (its base, buildbot-worker, a wheel of this checkout); the build runs a
stackyard command in it; the container is removed after the build.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from builders.latent import worker_image_ref, worker_image_tag
from builders.settings import load_config
from tests.conftest import ROOT, free_port, images_toml
from tests.fixtures.index_server import IndexServer
from tests.integration.buildbot_harness import Api, Master, buildbot_table, ctl
from tests.integration.conftest import make_workspace

pytestmark = pytest.mark.integration

WORKER = "box"
BUILDER = "promote-2025.1"  # [buildbot] verify = false: one 'stackyard promote --force' step


def containers(engine: str, name: str) -> list[tuple[str, str, str]]:
    """(name, image, state) of every container of the engine whose name has ``name`` (docker ps -a)."""
    out = subprocess.run(["docker", "-H", engine, "ps", "-a", "--filter", f"name={name}", "--format",
                          "{{.Names}}\t{{.Image}}\t{{.State}}"], capture_output=True, text=True, check=True).stdout
    return [tuple(line.split("\t")) for line in out.splitlines() if line]  # type: ignore[misc]


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory, index: IndexServer, shared_cache: Path,
           docker_engine: str) -> Iterator[Master]:
    base = tmp_path_factory.mktemp("latent")
    web, pb = free_port(), free_port()
    ws = make_workspace(base / "ws", index.url, shared_cache)
    shutil.copytree(ROOT / "images", ws.root / "images")
    # one worker, a docker latent one: the workspace and the cache (the signing key) mounted where they are
    docker_worker = textwrap.dedent(f"""\
        [[buildbot.workers]]
        name = "{WORKER}"
        kind = "docker"
        max_builds = 1
        packages = ["reprepro", "gnupg"]
        volumes = ["{ws.root}:{ws.root}", "{shared_cache}:{shared_cache}"]
        environment = {{ STACKYARD_CONFIG = "{ws.config}" }}
        """)
    table = buildbot_table(web, pb).replace('[[buildbot.workers]]\nname = "local"\nmax_builds = 2\n', docker_worker)
    assert f'name = "{WORKER}"' in table and 'name = "local"' not in table
    ws.config.write_text(ws.config.read_text() + table + images_toml(docker_engine))
    up = ctl(ws, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    basedir = ws.root / "var" / "buildbot"
    url = f"http://127.0.0.1:{web}/"
    m = Master(ws, None, Api(url), url, basedir / "twistd.log", (basedir / "secrets" / "user-admin").read_text().strip())
    m.up = up  # type: ignore[attr-defined]
    try:
        m.wait_log("BuildMaster is running")
        yield m
    finally:
        down = ctl(ws, "down")
        assert down.returncode == 0, down.stdout + down.stderr


def test_make_up_builds_the_worker_image_once(master: Master, docker_engine: str) -> None:
    config = load_config(master.ws.config)
    (w,) = config.buildbot.workers
    assert w.latent is not None
    tag = worker_image_tag(config, w.latent)
    assert f"worker {WORKER}: docker latent worker, image {tag} (" in master.up.stdout  # type: ignore[attr-defined]
    images = subprocess.run(["docker", "-H", docker_engine, "images", "--format", "{{.Repository}}:{{.Tag}}"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert tag in images
    # the master starts containers from the moving tag, which points at the image of the current inputs
    ref = worker_image_ref(config, w.latent)
    ids = [subprocess.run(["docker", "-H", docker_engine, "image", "inspect", "--format", "{{.Id}}", t],
                          capture_output=True, text=True, check=True).stdout for t in (tag, ref)]
    assert ids[0] == ids[1]
    # stackyard and the master's buildbot-worker are in it, on PATH
    said = subprocess.run(["docker", "-H", docker_engine, "run", "--rm", "--network", "host", tag, "sh", "-c",
                           "stackyard --help >/dev/null && twistd --version >/dev/null && "
                           "/opt/stackyard/bin/python -c 'import buildbot_worker, stackyard; print(buildbot_worker.version)'"],
                          capture_output=True, text=True, check=False)
    assert said.returncode == 0, said.stderr
    from importlib.metadata import version
    assert said.stdout.strip() == version("buildbot-worker")
    again = ctl(master.ws, "up")
    assert again.returncode == 0 and f"image {tag} (up to date)" in again.stdout, again.stdout + again.stderr


def test_a_build_starts_the_container_on_demand_runs_in_it_and_the_container_is_gone_after(
        master: Master, docker_engine: str) -> None:
    api = master.api
    config = load_config(master.ws.config)
    tag = worker_image_ref(config, config.buildbot.workers[0].latent)  # type: ignore[arg-type]
    assert containers(docker_engine, f"buildbot-{WORKER}-") == []  # nothing runs before a build needs it
    (worker,) = api.get("workers")["workers"]
    assert worker["name"] == WORKER and worker["connected_to"] == []

    api.login("admin", master.admin_password)
    started = time.monotonic()
    r = api.force("force-promote-2025_1", BUILDER)
    assert r.status_code == 200 and "error" not in r.json(), r.text
    seen: set[tuple[str, str, str]] = set()
    deadline = time.monotonic() + 600
    while True:
        seen |= set(containers(docker_engine, f"buildbot-{WORKER}-"))
        done = [b for b in api.builds(BUILDER) if b["complete"]]
        if done:
            break
        assert time.monotonic() < deadline, f"no build finished; seen {seen}"
        time.sleep(0.3)
    (build,) = done
    took = time.monotonic() - started
    # the container ran the build: from the worker image, named after the worker
    assert any(name.startswith(f"buildbot-{WORKER}-") and image == tag and state == "running" for name, image, state in seen), seen
    assert build["results"] == 0, (build, api.steps(build), api.step_log(build, "promote"))
    assert api.properties(build)["workername"] == WORKER
    assert api.steps(build) == {"promote": "success"}
    assert "promoted to bookworm-2025.1" in api.step_log(build, "promote")
    # after the build (build_wait_timeout = 0) the master stops the container and removes it
    deadline = time.monotonic() + 120
    while containers(docker_engine, f"buildbot-{WORKER}-"):
        assert time.monotonic() < deadline, containers(docker_engine, f"buildbot-{WORKER}-")
        time.sleep(0.5)
    assert "Container created" in master.log.read_text() and "Stopping container" in master.log.read_text()
    print(f"forced build to green, container started and ran it: {took:.1f} s")
