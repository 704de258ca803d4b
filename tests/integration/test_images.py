"""Images of the tiny fixture project through the third stage: a real dockerd
builds them from the deb published in the signed repository, a real registry
(TLS, htpasswd with bcrypt) takes the push, skopeo and the engine pull them
back with credentials, and containers run from them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import docker
import pytest

from stackyard.config import load_config
from stackyard.errors import ToolError
from stackyard.images.build import read_record
from stackyard.images.registry import Registry
from stackyard.images.services import registry_password
from tests.conftest import ROOT, Workspace, free_port, images_toml
from tests.fixtures.index_server import IndexServer
from tests.integration.conftest import make_workspace
from tests.integration.test_debs import deb_file, prepare

pytestmark = pytest.mark.integration

REPO = "stackyard/tinyapp"
RELEASE_TAG = "2025.1-debian_bookworm"


def image_workspace(root: Path, index_url: str, cache: Path, engine: str) -> Workspace:
    ws = make_workspace(root, index_url, cache)
    shutil.copytree(ROOT / "images", ws.root / "images")
    with ws.config.open("a") as handle:
        handle.write(images_toml(engine))
    recipe = ws.root / "recipes" / "tinyapp.yaml"
    recipe.write_text(recipe.read_text() + "image:\n  chart: tinyapp\n  chart_keys: [tinyapp_api, tinyapp_db_sync]\n")
    with (ws.root / "images" / "charts" / "IMAGES.tsv").open("a") as handle:  # helm-values knows the chart's keys
        handle.write("tinyapp\ttinyapp_api\tquay.io/airshipit/tinyapp:2026.1-ubuntu_noble\n"
                     "tinyapp\ttinyapp_db_sync\tquay.io/airshipit/tinyapp:2026.1-ubuntu_noble\n"
                     "tinyapp\tdep_check\tquay.io/airshipit/kubernetes-entrypoint:latest-ubuntu_noble\n")
    return ws


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, index: IndexServer, shared_cache: Path,
              docker_engine: str) -> Iterator[Workspace]:
    ws = image_workspace(tmp_path_factory.mktemp("images") / "ws", index.url, shared_cache, docker_engine)
    prepare(ws)
    ws.run("deb", "--release", "2025.1", "tinyapp")
    ws.run("publish", "--release", "2025.1", "tinyapp")
    ws.run("services", "up")
    try:
        yield ws
    finally:
        ws.run("services", "down")


@pytest.fixture(scope="module")
def pushed(published: Workspace) -> Workspace:
    r = published.run("image", "--release", "2025.1", "tinyapp", "--push")
    assert re.search(r"tinyapp\s+1\.0-2025\.1\.1\s+built", r.stdout), r.stdout + r.stderr
    return published


def engine(ws: Workspace) -> docker.DockerClient:
    return docker.DockerClient(base_url=load_config(ws.config).images.engine, version="auto")


def login(ws: Workspace) -> tuple[str, str, str, Path]:
    images = load_config(ws.config).images
    assert images.ca_cert is not None
    return images.registry, images.username, registry_password(images), images.ca_cert


def registry(ws: Workspace) -> Registry:
    images = load_config(ws.config).images
    return Registry(images, registry_password(images), backoff=0.1)


def run(client: docker.DockerClient, image: str, command: str, user: str | None = None) -> str:
    out = client.containers.run(image, ["sh", "-c", command], network_mode="host", remove=True, user=user or "")
    return out.decode()


def test_skopeo_pulls_it_with_credentials_and_it_runs_as_openstack_helm_expects(pushed: Workspace, tmp_path: Path) -> None:
    host, user, password, ca = login(pushed)
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(ca, certs / "ca.crt")
    # a real client, outside the engine: without credentials it is refused, with them it reads the image
    denied = subprocess.run(["skopeo", "inspect", "--cert-dir", str(certs), f"docker://{host}/{REPO}:{RELEASE_TAG}"],
                            capture_output=True, text=True)
    assert denied.returncode != 0 and re.search(r"unauthorized|authentication required", denied.stderr, re.I)
    layout = tmp_path / "oci"
    subprocess.run(["skopeo", "copy", "--src-creds", f"{user}:{password}", "--src-cert-dir", str(certs),
                    f"docker://{host}/{REPO}:{RELEASE_TAG}", f"oci:{layout}:pulled"], check=True, capture_output=True)
    assert (layout / "index.json").exists()
    info = json.loads(subprocess.run(["skopeo", "inspect", "--creds", f"{user}:{password}", "--cert-dir", str(certs),
                                      f"docker://{host}/{REPO}:{RELEASE_TAG}"], capture_output=True, text=True, check=True).stdout)
    labels = info["Labels"]
    record = read_record(load_config(pushed.config), load_config(pushed.config).release("2025.1"), "tinyapp")
    assert record is not None
    assert labels["org.opencontainers.image.version"] == "1.0-2025.1.1"
    pool = next((pushed.root / "var/repo/pool").rglob("venv-tinyapp_1.0-2025.1.1_amd64.deb"))
    assert labels["org.stackyard.deb-sha256"] == subprocess.run(["sha256sum", str(pool)], capture_output=True, text=True).stdout.split()[0]
    lock = pushed.root / "requirements/2025.1/locks/tinyapp.txt"
    assert labels["org.stackyard.lock-sha256"] == subprocess.run(["sha256sum", str(lock)], capture_output=True, text=True).stdout.split()[0]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", labels["org.opencontainers.image.created"])
    assert info["Digest"] == record.digest

    # the engine gets the pulled copy (same layers: its build cache stays) and runs a container from it
    client = engine(pushed)
    subprocess.run(["skopeo", "copy", "--src-creds", f"{user}:{password}", "--src-cert-dir", str(certs),
                    "--dest-daemon-host", load_config(pushed.config).images.engine,
                    f"docker://{host}/{REPO}:{RELEASE_TAG}", "docker-daemon:pulled/tinyapp:check"],
                   check=True, capture_output=True)
    out = run(client, "pulled/tinyapp:check",
              "id -u; id -g; id -un; tinyapp --version; readlink -f /var/lib/openstack; "
              "test -x /var/lib/openstack/bin/tinyapp && echo venv-ok; command -v python; "
              "python -c 'import sys; print(sys.prefix)'; stat -c '%U %n' /etc/tinyapp /var/log/tinyapp "
              "/var/lib/tinyapp /var/cache/tinyapp; command -v sudo; "
              "find /opt/openstack/tinyapp -name '*.pyc' | wc -l")
    lines = out.split("\n")
    assert lines[:4] == ["42424", "42424", "tinyapp", "tinyapp 1.0"], out
    assert lines[4] == "/opt/openstack/tinyapp" and lines[5] == "venv-ok"
    assert lines[6] == "/var/lib/openstack/bin/python" and lines[7] == "/var/lib/openstack"
    assert lines[8:12] == [f"tinyapp /{d}/tinyapp" for d in ("etc", "var/log", "var/lib", "var/cache")]
    assert lines[12] == "/usr/bin/sudo" and lines[13] == "0"  # no bytecode in the image


def test_unchanged_inputs_build_and_push_nothing(pushed: Workspace) -> None:
    config = load_config(pushed.config)
    before = read_record(config, config.release("2025.1"), "tinyapp")
    r = pushed.run("image", "--release", "2025.1", "tinyapp", "--push")
    assert re.search(r"tinyapp\s+1\.0-2025\.1\.1\s+unchanged\s+.*already there", r.stdout), r.stdout
    assert read_record(config, config.release("2025.1"), "tinyapp") == before


def test_helm_values_point_every_chart_key_at_the_immutable_tag(pushed: Workspace) -> None:
    import yaml

    pushed.run("helm-values", "--release", "2025.1")
    file = pushed.root / "var/helm/2025.1/tinyapp.yaml"
    values = yaml.safe_load(file.read_text())
    config = load_config(pushed.config)
    record = read_record(config, config.release("2025.1"), "tinyapp")
    assert record is not None
    host, user, password, _ = login(pushed)
    assert values["images"]["tags"] == {k: f"{host}/{REPO}:{record.dated_tag}" for k in ("tinyapp_api", "tinyapp_db_sync")}
    auth = values["endpoints"]["oci_image_registry"]
    assert auth["auth"] == {"enabled": True, "tinyapp": {"username": user, "password": password}}
    assert auth["hosts"]["default"] == "127.0.0.1" and auth["port"]["registry"]["default"] == int(host.split(":")[1])
    assert file.stat().st_mode & 0o077 == 0  # it holds the password
    assert "#   dep_check: quay.io/airshipit/kubernetes-entrypoint:latest-ubuntu_noble\n" in file.read_text()  # left to the chart
    pushed.run("helm-values", "--release", "2025.1", "--by-digest", "--output", str(pushed.root / "by-digest"))
    pinned = yaml.safe_load((pushed.root / "by-digest/tinyapp.yaml").read_text())
    assert record.digest.startswith("sha256:")
    assert pinned["images"]["tags"] == {k: f"{host}/{REPO}@{record.digest}" for k in ("tinyapp_api", "tinyapp_db_sync")}


def test_a_push_with_wrong_credentials_fails_first_and_moves_no_tag(pushed: Workspace) -> None:
    reg = registry(pushed)
    before = reg.digest("tinyapp", RELEASE_TAG)
    # the engine itself, with no login at all
    client = engine(pushed)
    host = login(pushed)[0]
    events = list(client.api.push(f"{host}/{REPO}", tag=RELEASE_TAG, stream=True, decode=True))
    assert any("error" in e and re.search(r"no basic auth|unauthorized|authentication required", e["error"], re.I) for e in events)
    # stackyard with a wrong password: one error, exit 2, before anything is built
    r = pushed.run("image", "--release", "2025.1", "tinyapp", "--push", env={"STACKYARD_REGISTRY_PASSWORD": "wrong"}, check=False)
    assert r.returncode == 2, r.stderr
    assert "refused the login of 'stackyard'" in r.stderr and "fix:" in r.stderr
    assert reg.digest("tinyapp", RELEASE_TAG) == before


def test_a_new_deb_rebuilds_only_its_layer_and_pushes_only_that(pushed: Workspace) -> None:
    ws = pushed
    config = load_config(ws.config)
    old = read_record(config, config.release("2025.1"), "tinyapp")
    assert old is not None
    ws.uc().write_text("tinyext===1.0\ntinypure===1.1\n")
    prepare(ws)
    ws.run("deb", "--release", "2025.1", "tinyapp")
    assert deb_file(ws, "1.0-2025.1.2").exists()
    ws.run("publish", "--release", "2025.1", "tinyapp")
    r = ws.run("image", "--release", "2025.1", "tinyapp", "--push")
    assert re.search(r"tinyapp\s+1\.0-2025\.1\.2\s+built\s+.*\s1 sent\s", r.stdout), r.stdout
    new = read_record(config, config.release("2025.1"), "tinyapp")
    assert new is not None and new.dated_tag != old.dated_tag and new.digest != old.digest
    reg = registry(ws)
    assert reg.digest("tinyapp", RELEASE_TAG) == new.digest
    assert reg.digest("tinyapp", old.dated_tag) == old.digest  # dated tags never move
    out = run(engine(ws), f"{config.images.registry}/{REPO}:{new.dated_tag}", "tinyapp --version; dpkg-query -W venv-tinyapp")
    assert out.split("\n")[:2] == ["tinyapp 1.0", "venv-tinyapp\t1.0-2025.1.2"]


def test_bad_input_gets_one_clear_error_and_moves_nothing(pushed: Workspace, tmp_path: Path) -> None:
    ws = pushed
    reg = registry(ws)
    before = reg.digest("tinyapp", RELEASE_TAG)
    # the deb is not published for 2025.2
    r = ws.run("image", "--release", "2025.2", "tinyapp", check=False)
    assert r.returncode == 2 and "venv-tinyapp is not published in bookworm-2025.2-staging" in r.stderr
    assert "stackyard publish --release 2025.2 tinyapp" in r.stderr
    # a template error names file and line
    own = ws.root / "images" / "tinyapp.Dockerfile.j2"
    own.write_text('{% extends "project.Dockerfile.j2" %}\n{% block user %}\nRUN {{ user }\n{% endblock %}\n')
    try:
        r = ws.run("image", "--release", "2025.1", "tinyapp", "--push", check=False)
        assert r.returncode == 2 and re.search(r"images/tinyapp\.Dockerfile\.j2:3: ", r.stderr), r.stderr
    finally:
        own.unlink()
    # the engine is not running: say how to start it
    conf = ws.config.read_text()
    try:
        ws.config.write_text(re.sub(r'engine = ".*"', f'engine = "unix://{tmp_path}/none.sock"', conf))
        r = ws.run("image", "--release", "2025.1", "tinyapp", check=False)
        assert r.returncode == 6 and "the Docker engine at unix://" in r.stderr and "is not running" in r.stderr
        assert "fix: " in r.stderr
        # the registry is unreachable: bounded retries, then one error
        ws.config.write_text(re.sub(r'registry = ".*"', f'registry = "127.0.0.1:{free_port()}"', conf))
        r = ws.run("image", "--release", "2025.1", "tinyapp", "--push", check=False)
        assert r.returncode == 4 and "is unreachable after 2 attempts" in r.stderr, r.stderr
    finally:
        ws.config.write_text(conf)
    assert reg.digest("tinyapp", RELEASE_TAG) == before


def _overlay_mount(base: Path) -> Path:
    """An overlayfs of our own under ``base`` (mounted here: the test needs root, as dockerd does)."""
    for d in ("lower", "upper", "work", "merged"):
        (base / d).mkdir(parents=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work", str(base / "merged")],
                   check=True)
    return base / "merged"


def _mounted_under(path: Path) -> list[str]:
    return [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(path))]


def test_the_engine_runs_overlay2_where_it_can_and_says_why_it_falls_back_to_vfs(tmp_path: Path) -> None:
    """On ext4 with overlayfs in the kernel (an overlay mount works here) 'auto' is overlay2, as docker info
    says; with its data on an overlayfs (where overlay2 cannot stack) it falls back to vfs and says why;
    asked for overlay2 there, it refuses with the setting to change. Nothing stays mounted."""
    from stackyard.images.services import reported_driver, start_dockerd, stop_dockerd

    short = Path(tempfile.mkdtemp(prefix="sy-drv-", dir="/tmp"))  # containerd's socket paths are limited
    try:
        plain = short / "plain"
        started = start_dockerd(plain / "docker.sock", plain)
        try:
            assert (started.driver, started.fallback) == ("overlay2", "")
            assert reported_driver(plain / "docker.sock") == "overlay2"
            assert _mounted_under(plain) != []  # its exec root's network namespace, at least
        finally:
            stop_dockerd(plain)
        assert _mounted_under(plain) == []  # a stopped engine leaves nothing mounted
        merged = _overlay_mount(short / "ov")
        try:
            started = start_dockerd(merged / "docker.sock", merged)
            try:
                assert started.driver == "vfs" and reported_driver(merged / "docker.sock") == "vfs"
                assert started.fallback.startswith("overlay2 not usable here (") and "graphdriver" in started.fallback
            finally:
                stop_dockerd(merged)
            try:
                with pytest.raises(ToolError) as info:
                    start_dockerd(merged / "docker.sock", merged, "overlay2")
            finally:
                stop_dockerd(merged)  # had it started after all
            assert "dockerd does not run with storage driver overlay2 here" in str(info.value)
            assert 'storage_driver = "auto"' in (info.value.hint or "")
            assert not (merged / "dockerd.pid").exists()
        finally:
            time.sleep(1)
            left = [m for m in _mounted_under(short) if m != str(merged)]  # what the failed engines left mounted
            for mount in sorted(_mounted_under(short), reverse=True):
                subprocess.run(["umount", mount], check=False)
        assert left == []
    finally:
        shutil.rmtree(short, ignore_errors=True)
