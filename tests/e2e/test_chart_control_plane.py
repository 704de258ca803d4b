"""keystone, glance, placement, neutron, nova and cinder 2025.1 under openstack-helm's own scripts (CI: all but
cinder; 'make test-charts': the six): the images are built from the
published debs and pushed; ``stackyard chart-verify`` pulls them by digest and runs the charts' rendered bin/
scripts and configuration (../shared/openstack-helm) in containers on one loopback network with MariaDB,
RabbitMQ and memcached from Debian's packages, then the scenario (token, glance upload/download, a network, the
compute node in placement, a server ACTIVE on the fake driver: nova's API asks neutron for every server's
security groups, so nova needs neutron; cinder's API and scheduler up in `openstack volume service list`).
Then the faults: a failing chart script, a killed run,
an image that lacks a path its chart names, and /etc/image_info in every image."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from stackyard.config import load_config
from stackyard.errors import EXIT_CODES, BuildError
from stackyard.images.build import ImageResult, check_chart_paths, push_image, read_record
from stackyard.images.registry import Registry
from stackyard.images.services import registry_password
from tests.conftest import ROOT, Workspace

pytestmark = pytest.mark.e2e

CHARTS = ROOT.parent / "shared" / "openstack-helm"
PROJECTS = ("keystone", "glance", "placement", "neutron", "nova", "cinder", "python-openstackclient")
KEYSTONE = ("keystone", "python-openstackclient")  # the keystone image test's own images
# CI's run ('make test'): nova and what it needs, the debs test_control_plane.py installs (built once for both)
CI = ("keystone", "glance", "placement", "neutron", "nova", "python-openstackclient")
LABEL = "org.stackyard.chart-verify"
# 'make test-charts' runs what is marked so: the six charts, cinder's with them (its image only there)
charts = pytest.mark.charts


def _push(ws: Workspace, projects: tuple[str, ...]) -> Workspace:
    """The images in the session's registry (what other e2e modules built is reused: one build each)."""
    ws.run("wheels", "--release", "2025.1", *projects)
    for project in projects:
        if not list((ws.root / "var/debs/2025.1").glob(f"venv-{project}_*.deb")):
            ws.run("deb", "--release", "2025.1", project)
    ws.run("publish", "--release", "2025.1", *projects)
    ws.run("services", "up")
    ws.run("image", "--release", "2025.1", *projects, "--push")
    return ws


@pytest.fixture(scope="module")
def pushed(ws: Workspace) -> Workspace:
    return _push(ws, KEYSTONE)


@pytest.fixture(scope="module")
def pushed_ci(ws: Workspace) -> Workspace:
    return _push(ws, CI)


@pytest.fixture(scope="module")
def pushed_all(ws: Workspace) -> Workspace:
    return _push(ws, PROJECTS)


def engine(ws: Workspace) -> docker.DockerClient:
    return docker.DockerClient(base_url=load_config(ws.config).images.engine, version="auto")


def leftovers(client: docker.DockerClient) -> list[str]:
    selector = {"label": LABEL}
    return ([c.name for c in client.containers.list(all=True, filters=selector, ignore_removed=True)]
            + [n.name for n in client.networks.list(filters=selector)]
            + [v.name for v in client.volumes.list(filters=selector)])


ROWS = {
    "keystone": ("keystone db-sync", "keystone keystone-api"),
    "glance": ("glance db-sync", "glance metadefs-load", "glance glance-api"),
    "placement": ("placement placement-api",),
    "neutron": ("neutron neutron-server",),
    "nova": ("nova db-sync", "nova nova-api", "nova nova-conductor", "nova nova-scheduler", "nova nova-compute",
             "nova cell-setup", "nova bootstrap"),
    "cinder": ("cinder db-sync", "cinder create-internal-tenant", "cinder cinder-api", "cinder cinder-scheduler",
               "cinder bootstrap"),
}


def run_and_check(ws: Workspace, projects: tuple[str, ...], expected: list[str]) -> float:
    """``chart-verify`` of ``projects``: the charts ``expected`` run their scripts, the scenario passes, the
    record names the pushed digests, nothing is left on the engine and no secret reached the log."""
    started = time.monotonic()
    r = ws.run("chart-verify", "--release", "2025.1", *projects, "--charts", str(CHARTS))
    seconds = time.monotonic() - started
    out = r.stdout
    for row in (row for chart in expected for row in ROWS[chart]):
        assert re.search(rf"^{row}\s", out, re.M), (row, out)
    assert re.search(r"^keystone keystone-api\s+\S+\s+running\s+300 after", out, re.M), out
    assert re.search(r"^glance glance-api\s+\S+\s+running\s+\d{3} after", out, re.M), out
    assert re.search(r"^nova nova-api\s+\S+\s+running\s+\d{3} after", out, re.M), out
    if "cinder" in expected:
        assert re.search(r"^cinder cinder-api\s+\S+\s+running\s+\d{3} after", out, re.M), out
        assert re.search(r"^cinder cinder: volume service list, services up .*ok .*up: .*cinder-scheduler", out,
                         re.M), out
    assert re.search(r"^nova nova: server create --nic none, ACTIVE .*ok .*server \S+ ACTIVE", out, re.M), out
    assert "both ways" in out  # glance: the same sha256 up and down
    record = json.loads((ws.root / "var/charts/2025.1/chart-verify.json").read_text())
    assert record["ok"] is True and record["charts"] == expected
    config = load_config(ws.config)
    for image in (*expected, "openstack-client"):
        pushed_record = read_record(config, config.release("2025.1"), image)
        assert pushed_record is not None
        assert record["images"][image] == f"{pushed_record.repository}@{pushed_record.digest}"
    steps = {(row["chart"], row["step"]): row for row in record["rows"]}
    assert steps[("placement", "placement: resource provider of nova-compute listed")]["state"] == "ok"
    assert steps[("nova", "db-sync")]["script"] == "bin/_db-sync.sh.tpl"
    # nothing of the run is left on the engine; no secret reached the log's command lines or the record
    assert leftovers(engine(ws)) == []
    log = next((ws.root / "var/logs/2025.1/chart-verify").glob(f"{record['run_id']}.log")).read_text()
    assert registry_password(config.images) not in log + json.dumps(record)
    return seconds


def test_nova_and_what_it_needs_run_under_their_charts_scripts(pushed_ci: Workspace) -> None:
    """CI's run: keystone, glance, placement, neutron and nova (chart-verify nova brings the others)."""
    seconds = run_and_check(pushed_ci, ("nova",), ["keystone", "glance", "placement", "neutron", "nova"])
    print(f"chart-verify nova: {seconds:.0f}s")


@charts
def test_the_charts_scripts_run_the_control_plane_and_the_scenario_passes(pushed_all: Workspace) -> None:
    seconds = run_and_check(pushed_all, (), ["keystone", "glance", "placement", "neutron", "nova", "cinder"])
    print(f"chart-verify: {seconds:.0f}s")


def broken_charts(tmp_path: Path) -> Path:
    """The charts with keystone's db-sync script failing the way a real failure would (output, then exit 3)."""
    charts = tmp_path / "charts"
    shutil.copytree(CHARTS, charts)
    script = charts / "keystone" / "bin" / "_db-sync.sh.tpl"
    script.write_text(script.read_text().replace("set -ex\n", "set -ex\necho 'the database is on fire' >&2\nexit 3\n"))
    return charts


def test_a_failing_chart_script_names_chart_script_and_output_and_leaves_nothing(pushed: Workspace,
                                                                                 tmp_path: Path) -> None:
    ws = pushed
    r = ws.run("chart-verify", "--release", "2025.1", "keystone", "--charts", str(broken_charts(tmp_path)),
               check=False)
    assert r.returncode == EXIT_CODES[BuildError], r.stdout + r.stderr
    assert "stackyard: error: keystone: bin/_db-sync.sh.tpl (db-sync) exited 3" in r.stderr, r.stderr
    assert "the database is on fire" in r.stderr and "Traceback" not in r.stderr
    assert leftovers(engine(ws)) == []
    record = json.loads((ws.root / "var/charts/2025.1/chart-verify.json").read_text())
    assert record["ok"] is False and "bin/_db-sync.sh.tpl" in record["error"]


def test_a_killed_run_is_cleaned_by_clean(pushed: Workspace) -> None:
    ws = pushed
    client = engine(ws)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    proc = subprocess.Popen([sys.executable, "-m", "stackyard", "--config", str(ws.config), "chart-verify",
                             "--release", "2025.1", "keystone", "--charts", str(CHARTS)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while len(client.containers.list(all=True, filters={"label": LABEL}, ignore_removed=True)) < 3:  # jobs come and go
            assert proc.poll() is None, "the run ended before its servers started"
            assert time.monotonic() < deadline, "no container of the run within 300 s"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert leftovers(client) != []  # a killed run cannot clean up after itself
    r = ws.run("chart-verify", "--clean")
    assert re.search(r"removed [1-9]\d* containers, networks and volumes", r.stdout), r.stdout
    assert leftovers(client) == []


def test_an_image_lacking_a_chart_path_is_not_pushed(pushed_ci: Workspace) -> None:
    """keystone's image standing in for glance's: glance's chart names its metadefs and glance-rootwrap."""
    config = load_config(pushed_ci.config)
    release = config.release("2025.1")
    client = engine(pushed_ci)
    glance, keystone = read_record(config, release, "glance"), read_record(config, release, "keystone")
    assert glance is not None and keystone is not None
    assert check_chart_paths(config, glance, client) >= 5  # the real glance image has them all
    fake = type(glance)(**{**glance.__dict__, "image_id": keystone.image_id, "digest": "",
                           "dated_tag": "2025.1-debian_bookworm-missing"})
    password = registry_password(config.images)
    registry = Registry(config.images, password)
    before = registry.digest("glance", glance.release_tag)
    with pytest.raises(BuildError) as info:
        push_image(config, release, ImageResult(fake, built=True, seconds=0.0), client, password, registry)
    assert "/var/lib/openstack/etc/glance/metadefs (named by glance/bin/_metadefs-load.sh.tpl)" in str(info.value)
    assert "/var/lib/openstack/bin/glance-rootwrap" in str(info.value)
    assert registry.digest("glance", glance.release_tag) == before  # the release tag did not move
    assert registry.digest("glance", fake.dated_tag) is None  # nothing pushed


@pytest.mark.parametrize("image", ["keystone", "openstack-client", "glance", "placement", "neutron", "nova",
                                   pytest.param("cinder", marks=charts)])
def test_image_info_carries_the_provenance(request: pytest.FixtureRequest, image: str) -> None:
    pushed = request.getfixturevalue("pushed_all" if image == "cinder" else "pushed_ci" if image in CI else "pushed")
    config = load_config(pushed.config)
    record = read_record(config, config.release("2025.1"), image)
    assert record is not None
    client = engine(pushed)
    labels = client.images.get(record.image_id).labels
    info = client.containers.run(record.image_id, ["cat", "/etc/image_info"], remove=True,
                                 network_mode="none").decode()
    fields = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line and not line.startswith("  "))
    assert fields["image"] == image and fields["openstack-release"] == "2025.1"
    assert fields["package"] == labels["org.stackyard.package"]
    assert fields["package-sha256"] == labels["org.stackyard.deb-sha256"]
    assert fields["lock-sha256"] == labels["org.stackyard.lock-sha256"] and len(fields["lock-sha256"]) == 64
    distribution = "python-openstackclient" if image == "openstack-client" else image
    version = fields["package"].split("=")[1].split("-")[0]
    assert fields["upstream"].endswith(f" {version}") and distribution.split("-")[0] in fields["upstream"]
    packages = info.split("debian-packages:\n", 1)[1].splitlines()
    names = {line.split()[0]: line.split()[1] for line in packages}
    assert names[labels["org.stackyard.package"].split("=")[0]] == fields["package"].split("=")[1]
    assert "python3" in names and "sudo" in names and len(names) > 50
