"""Latent workers from [[buildbot.workers]]: what the settings say and the Buildbot objects made from them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from buildbot.config.errors import ConfigErrors
from buildbot.util.kubeclientservice import KubeCtlProxyConfigLoader
from buildbot.worker.docker import DockerLatentWorker
from buildbot.worker.kubernetes import KubeLatentWorker

from builders import latent
from builders.master import master_config
from builders.settings import Secret, parse_config
from stackyard.errors import ConfigError
from tests.conftest import ROOT

FILE = Path("/srv/stackyard/stackyard.toml")
BASE: dict[str, Any] = {
    "architecture": "amd64",
    "paths": {"images": str(ROOT / "images")},
    "images": {"engine": "unix:///srv/stackyard/var/run/docker.sock"},
    "codenames": {"bookworm": {"python": "3.11", "glibc": "2.36"}, "trixie": {"python": "3.13", "glibc": "2.41"}},
    "releases": {"2025.1": {"series": "epoxy", "codename": "bookworm", "upstream": "https://example.invalid/2025.1"}},
}
DOCKER = {"name": "box", "kind": "docker", "builders": ["wheels-*"], "max_builds": 1}
KUBE = {"name": "pod", "kind": "kubernetes", "image": "registry.example.org/stackyard/worker:1", "namespace": "ci",
        "kube_config": "kubectl-proxy", "master": "buildbot.example.org:9989", "environment": {"STACKYARD_CONFIG": "/etc/s.toml"}}


def config(*workers: dict[str, Any], **buildbot: Any) -> Any:
    d = copy.deepcopy(BASE)
    d["buildbot"] = {"workers": [copy.deepcopy(w) for w in workers], **buildbot}
    return parse_config(d, FILE)


def error(*workers: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        config(*workers)
    return str(info.value)


def password(secret: Secret) -> str:
    return f"pw-of-{secret.key}"


def test_a_plain_worker_stays_plain_and_latent_keys_need_a_kind() -> None:
    (w,) = config({"name": "local"}).buildbot.workers
    assert w.latent is None
    assert error({"name": "local", "image": "x"}) == (
        f"{FILE}: buildbot.workers[0].image: is a key of a latent worker: add kind = \"docker\" or kind = \"kubernetes\"")


@pytest.mark.parametrize("worker, key, says", [
    ({"kind": "vm"}, "kind", "must be one of worker, docker, kubernetes, got 'vm'"),
    ({"kind": "docker", "namespace": "ci"}, "namespace", "is not a key of a kind = \"docker\" worker"),
    ({"kind": "kubernetes", "volumes": ["/a:/b"]}, "volumes", "is not a key of a kind = \"kubernetes\" worker"),
    ({"kind": "kubernetes"}, "image", "a kubernetes worker needs the image its pods run"),
    ({"kind": "kubernetes", "image": "r/w:1", "namespace": "Bad_NS"}, "namespace", "'Bad_NS' is not a Kubernetes namespace name"),
    ({"kind": "kubernetes", "image": "r/w:1", "kube_config": "~/.kube/config"}, "kube_config",
     "must be one of in-cluster, kubectl-proxy, got '~/.kube/config'"),
    ({"kind": "docker", "image": "Not An Image"}, "image", "'Not An Image' is not an image reference"),
    ({"kind": "docker", "volumes": ["/srv/x"]}, "volumes", "'/srv/x' is not SOURCE:/TARGET[:ro|:rw]"),
    ({"kind": "docker", "volumes": ["/srv/x:/x:rx"]}, "volumes", "'/srv/x:/x:rx' is not SOURCE:/TARGET[:ro|:rw]"),
    ({"kind": "docker", "environment": {"lower": "x"}}, "environment", "must be a table of NAME = \"value\" strings"),
    ({"kind": "docker", "packages": ["dh virtualenv"]}, "packages", "'dh virtualenv' is not a Debian package name"),
    ({"kind": "docker", "master": "http://m:9989"}, "master", "must be HOST or HOST:PORT"),
])
def test_bad_latent_settings_name_file_and_key(worker: dict[str, Any], key: str, says: str) -> None:
    said = error({"name": "w", **worker})
    assert said.startswith(f"{FILE}: buildbot.workers[0].{key}: {says}"), said


def test_a_docker_worker_defaults_to_the_local_engine_host_networking_and_the_built_image() -> None:
    c = config(DOCKER, worker_port=9990)
    (w,) = c.buildbot.workers
    assert w.latent is not None and w.latent.kind == "docker" and w.latent.network == "host"
    kwargs = latent.docker_worker_kwargs(c, w)
    tag = latent.worker_image_tag(c, w.latent)
    assert tag.startswith("stackyard-worker:bookworm-") and len(tag.split("-")[-1]) == 12
    assert latent.worker_image_ref(c, w.latent) == "stackyard-worker:bookworm"  # make up moves it onto the built tag
    assert kwargs == {
        "docker_host": "unix:///srv/stackyard/var/run/docker.sock", "image": "stackyard-worker:bookworm",
        "masterFQDN": "127.0.0.1:9990",
        "hostconfig": {"network_mode": "host"}, "volumes": [], "environment": {}, "max_builds": 1, "build_wait_timeout": 0,
        "autopull": False,
    }
    made = latent.make_worker(c, w, password)
    assert isinstance(made, DockerLatentWorker) and made.name == "box"
    assert made._config_args == ("box", "pw-of-buildbot.workers[0].password_file")
    assert made._config_kwargs["image"] == "stackyard-worker:bookworm" and made._config_kwargs["hostconfig"] == {"network_mode": "host"}


def test_a_docker_worker_with_its_own_image_engine_mounts_and_environment() -> None:
    c = config({**DOCKER, "image": "registry.example.org/stackyard/worker:7", "docker_host": "tcp://10.0.0.5:2375",
                "master": "10.0.0.1", "volumes": ["/srv/stackyard:/srv/stackyard:ro"], "network": "bridge",
                "environment": {"STACKYARD_CONFIG": "/srv/stackyard/stackyard.toml"}, "build_wait_timeout": 600})
    kwargs = latent.docker_worker_kwargs(c, c.buildbot.workers[0])
    assert (kwargs["image"], kwargs["docker_host"], kwargs["masterFQDN"]) == (
        "registry.example.org/stackyard/worker:7", "tcp://10.0.0.5:2375", "10.0.0.1:9989")
    assert kwargs["volumes"] == ["/srv/stackyard:/srv/stackyard:ro"] and kwargs["hostconfig"] == {"network_mode": "bridge"}
    assert kwargs["build_wait_timeout"] == 600 and kwargs["autopull"] is True
    assert latent.docker_workers(c) == []  # stackyard builds no image for it


def test_the_worker_image_tag_follows_its_inputs(tmp_path: Path) -> None:
    src = tmp_path / "checkout"
    (src / "stackyard").mkdir(parents=True)
    (src / "pyproject.toml").write_text("[project]\nname = 'stackyard'\n")
    (src / "README.md").write_text("readme\n")
    (src / "stackyard" / "cli.py").write_text("print(1)\n")
    c = config(DOCKER)
    w = c.buildbot.workers[0].latent
    first = latent.worker_image_tag(c, w, src)
    (src / "stackyard" / "__pycache__").mkdir()
    (src / "stackyard" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"\0")
    assert latent.worker_image_tag(c, w, src) == first  # bytecode is no input
    (src / "README.md").write_text("edited\n")
    assert latent.worker_image_tag(c, w, src) == first  # nor the README (the wheel's description only)
    (src / "stackyard" / "cli.py").write_text("print(2)\n")
    second = latent.worker_image_tag(c, w, src)
    assert second != first
    more = config({**DOCKER, "packages": ["dh-virtualenv"]})
    assert latent.worker_image_tag(more, more.buildbot.workers[0].latent, src) != second
    trixie = config({**DOCKER, "codename": "trixie"})
    assert latent.worker_image_tag(trixie, trixie.buildbot.workers[0].latent, src).startswith("stackyard-worker:trixie-")
    with pytest.raises(ConfigError, match="codename 'sid' is not a \\[codenames\\] table"):
        unknown = config({**DOCKER, "codename": "sid"})
        latent.worker_image_tag(unknown, unknown.buildbot.workers[0].latent, src)


def test_the_worker_dockerfile_installs_the_worker_and_stackyard_offline() -> None:
    c = config({**DOCKER, "packages": ["dpkg-dev", "git"]})
    text = latent.worker_dockerfile(c, "stackyard-base:bookworm-0123456789ab", c.buildbot.workers[0].latent, inputs="k")
    assert text.startswith("# A Buildbot worker") and "FROM stackyard-base:bookworm-0123456789ab\n" in text
    assert "--no-install-recommends python3-venv git ca-certificates dpkg-dev \\" in text  # git once
    assert "--no-index" in text and "--find-links /tmp/wheels stackyard buildbot-worker==" in text
    assert 'CMD ["/opt/stackyard/bin/twistd", "--pidfile=", "--nodaemon", "--python", "buildbot.tac"]' in text
    assert "WORKERPASS" in latent.TAC and 'os.environ.pop("WORKERPASS")' in latent.TAC  # no step sees the password
    compile(latent.TAC, "buildbot.tac", "exec")


def test_a_kubernetes_worker_is_a_kube_latent_worker_with_its_namespace_image_and_environment() -> None:
    c = config(KUBE)
    (w,) = c.buildbot.workers
    made = latent.make_worker(c, w, password)
    assert isinstance(made, KubeLatentWorker) and made.name == "pod"
    kwargs = made._config_kwargs
    assert (kwargs["image"], kwargs["namespace"], kwargs["masterFQDN"]) == (
        "registry.example.org/stackyard/worker:1", "ci", "buildbot.example.org:9989")
    assert isinstance(kwargs["kube_config"], KubeCtlProxyConfigLoader) and kwargs["kube_config"].namespace == "ci"
    assert "password" not in kwargs  # Buildbot gives each pod a random one
    assert made.extra_environment == {"STACKYARD_CONFIG": "/etc/s.toml"}
    # what the pod gets: the environment of the table beside Buildbot's own
    made.masterFQDN, made.master_protocol, made.password, made.registration = "m:9989", "pb", "pw", None
    env = made.createEnvironment()
    assert env["STACKYARD_CONFIG"] == "/etc/s.toml" and (env["BUILDMASTER"], env["BUILDMASTER_PORT"]) == ("m", "9989")
    assert env["WORKERNAME"] == "pod" and env["WORKERPASS"] == "pw"


def test_an_in_cluster_kubernetes_worker_outside_a_cluster_is_a_config_error() -> None:
    c = config({**KUBE, "kube_config": "in-cluster"})
    with pytest.raises(ConfigErrors, match="Not in kubernetes cluster"):
        latent.make_worker(c, c.buildbot.workers[0], password)


def test_master_config_makes_every_kind_of_worker(tmp_path: Path) -> None:
    d = copy.deepcopy(BASE)
    d["paths"]["output"] = str(tmp_path / "var")
    d["buildbot"] = {"workers": [{"name": "local"}, DOCKER, KUBE]}
    c = master_config(parse_config(d, tmp_path / "stackyard.toml"))
    kinds = {w.name: type(w).__name__ for w in c["workers"]}
    assert kinds == {"local": "Worker", "box": "StackyardDockerWorker", "pod": "StackyardKubeWorker"}
    # the plain and docker workers got a password file made on first use; the kubernetes one needs none
    assert sorted(p.name for p in (tmp_path / "var" / "buildbot" / "secrets").iterdir()) == ["user-admin", "worker-box", "worker-local"]
