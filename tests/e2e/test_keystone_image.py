"""keystone 2025.1 as openstack-helm runs it: the image is built from the
published venv-keystone, pushed to the registry with a login, pulled back by
skopeo, and started the way the chart starts it (db_sync against SQLite, then
apache2 with mod_wsgi and the chart's own keystone vhost and WSGI script),
answering GET / with the identity versions document. The openstack-client
image carries what the charts' jobs need."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import docker
import pytest
import requests
import yaml

from stackyard.config import load_config
from stackyard.images.build import read_record
from stackyard.images.services import registry_password
from tests.conftest import ROOT, Workspace, free_port

pytestmark = pytest.mark.e2e

CHART = ROOT.parent / "shared" / "openstack-helm" / "keystone"
PROJECTS = ("keystone", "python-openstackclient")


def chart_start_script() -> str:
    """keystone-api.sh.tpl with the chart's defaults (no a2enmod/a2dismod, apache2 -DFOREGROUND)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())["conf"]["software"]["apache2"]
    text = (CHART / "keystone-api.sh.tpl").read_text()
    text = re.sub(r"\{\{/\*.*?\*/\}\}\n", "", text, flags=re.S)
    text = re.sub(r"[ ]*\{\{- range .*?\{\{- end \}\}\n", "", text, flags=re.S)
    text = re.sub(r"[ ]*\{\{- if .*?\{\{- end \}\}\n", "", text, flags=re.S)
    text = text.replace("{{ .Values.conf.software.apache2.binary }}", values["binary"])
    text = text.replace("{{ .Values.conf.software.apache2.start_parameters }}", values["start_parameters"])
    assert "{{" not in text, text
    return text


def chart_vhost(port: int) -> str:
    """The chart's wsgi_keystone with its port, listening on loopback only."""
    conf = yaml.safe_load((CHART / "values.yaml").read_text())["conf"]["wsgi_keystone"]
    conf = re.sub(r"^\{\{-? \$portInt .*\}\}\n", "", conf)
    assert "{{" in conf
    conf = conf.replace("{{ $portInt }}", str(port)).replace("Listen 0.0.0.0:", "Listen 127.0.0.1:")
    assert "{{" not in conf, conf
    return conf


@pytest.fixture(scope="module")
def pushed(ws: Workspace) -> Workspace:
    ws.run("wheels", "--release", "2025.1", *PROJECTS)
    for project in PROJECTS:
        if not list((ws.root / "var/debs/2025.1").glob(f"venv-{project}_*.deb")):  # the deb e2e test may have made it
            ws.run("deb", "--release", "2025.1", project)
    ws.run("publish", "--release", "2025.1", *PROJECTS)
    ws.run("services", "up")
    r = ws.run("image", "--release", "2025.1", *PROJECTS, "--push")
    assert re.search(r"keystone\s+27\.0\.2-2025\.1\.\d+\s+built", r.stdout), r.stdout
    assert re.search(r"openstack-client\s+7\.5\.0-2025\.1\.\d+\s+built", r.stdout), r.stdout
    return ws


def pull(ws: Workspace, image: str, into: str, tmp_path: Path) -> None:
    config = load_config(ws.config)
    assert config.images.ca_cert is not None
    certs = tmp_path / "certs"
    certs.mkdir(exist_ok=True)
    shutil.copy(config.images.ca_cert, certs / "ca.crt")
    subprocess.run(["skopeo", "copy", "--src-creds", f"{config.images.username}:{registry_password(config.images)}",
                    "--src-cert-dir", str(certs), "--dest-daemon-host", config.images.engine,
                    f"docker://{config.images.repository(image)}:2025.1-debian_bookworm", f"docker-daemon:{into}"],
                   check=True, capture_output=True)


def test_keystone_image_runs_the_api_the_way_the_chart_starts_it(pushed: Workspace, tmp_path: Path) -> None:
    ws = pushed
    config = load_config(ws.config)
    pull(ws, "keystone", "pulled/keystone:e2e", tmp_path)
    client = docker.DockerClient(base_url=config.images.engine, version="auto")
    record = read_record(config, config.release("2025.1"), "keystone")
    assert record is not None
    out = client.containers.run("pulled/keystone:e2e", ["sh", "-c", "keystone-manage --version; id -u; "
                                "test -x /var/lib/openstack/bin/keystone-manage && echo present"],
                                network_mode="host", remove=True).decode().split()
    assert out == ["27.0.2", "42424", "present"]
    assert client.images.get("pulled/keystone:e2e").labels["org.opencontainers.image.version"] == record.version

    port = free_port()
    files = tmp_path / "chart"
    files.mkdir()
    (files / "keystone.conf").write_text("[database]\nconnection = sqlite:////var/lib/keystone/keystone.db\n")
    (files / "wsgi.py").write_text(yaml.safe_load((CHART / "values.yaml").read_text())["conf"]["wsgi_script"])
    (files / "wsgi-keystone.conf").write_text(chart_vhost(port))
    (files / "keystone-api.sh").write_text(chart_start_script())
    # the chart's jobs as the keystone user (db_sync, fernet_setup, credential_setup), then its API container as root
    script = ("set -e; for step in db_sync 'fernet_setup --keystone-user keystone --keystone-group keystone' "
              "'credential_setup --keystone-user keystone --keystone-group keystone'; do "
              "runuser -u keystone -- keystone-manage $step; done; exec bash /tmp/keystone-api.sh start")
    volumes = {str(files / "keystone.conf"): {"bind": "/etc/keystone/keystone.conf", "mode": "ro"},
               str(files / "wsgi.py"): {"bind": "/var/www/cgi-bin/keystone/wsgi.py", "mode": "ro"},
               str(files / "wsgi-keystone.conf"): {"bind": "/etc/apache2/sites-enabled/wsgi-keystone.conf", "mode": "ro"},
               str(files / "keystone-api.sh"): {"bind": "/tmp/keystone-api.sh", "mode": "ro"}}
    container = client.containers.run("pulled/keystone:e2e", ["bash", "-c", script], user="root", network_mode="host",
                                      volumes=volumes, detach=True)
    try:
        deadline, answer = time.monotonic() + 180, None
        while time.monotonic() < deadline and answer is None:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
            except requests.ConnectionError:
                container.reload()
                assert container.status == "running", container.logs().decode()[-3000:]
                time.sleep(2)
        assert answer is not None, container.logs().decode()[-3000:]
        assert answer.status_code == 300, answer.text
        versions = answer.json()["versions"]["values"]
        assert versions[0]["id"].startswith("v3.") and versions[0]["status"] == "stable"
        assert "mod_wsgi" in container.logs().decode()
    finally:
        container.remove(force=True)


def test_openstack_client_image_and_the_helm_values(pushed: Workspace, tmp_path: Path) -> None:
    ws = pushed
    config = load_config(ws.config)
    pull(ws, "openstack-client", "pulled/openstack-client:e2e", tmp_path)
    client = docker.DockerClient(base_url=config.images.engine, version="auto")
    out = client.containers.run("pulled/openstack-client:e2e",
                                ["sh", "-c", "openstack --version; python -c 'import sqlalchemy, pymysql; print(\"db-ok\")'"],
                                network_mode="host", remove=True).decode()
    assert "openstack 7.5.0" in out and "db-ok" in out

    ws.run("helm-values", "--release", "2025.1")
    values = yaml.safe_load((ws.root / "var/helm/2025.1/keystone.yaml").read_text())
    keystone = read_record(config, config.release("2025.1"), "keystone")
    os_client = read_record(config, config.release("2025.1"), "openstack-client")
    assert keystone and os_client
    tags = values["images"]["tags"]
    chart_tags = yaml.safe_load((CHART / "values.yaml").read_text())["images"]["tags"]
    ours = {k for k, v in chart_tags.items() if "airshipit/keystone:" in v or "airshipit/openstack-client:" in v}
    assert set(tags) == ours  # every key the chart runs on a keystone or client image, nothing else
    for key in ours:
        image = keystone if "airshipit/keystone:" in chart_tags[key] else os_client
        assert tags[key] == f"{image.repository}:{image.dated_tag}", key
    assert values["endpoints"]["oci_image_registry"]["auth"]["keystone"]["username"] == config.images.username
    json.dumps(values)  # plain data, nothing YAML-specific
