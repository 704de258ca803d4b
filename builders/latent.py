"""Latent workers from ``[[buildbot.workers]]``: the master starts them for a build and stops them after.

``kind = "docker"``: Buildbot's ``DockerLatentWorker`` on ``docker_host`` (default: ``[images] engine``,
the engine ``make up`` starts), host networking (these engines run without a bridge), the image stackyard
builds (``ensure_worker_image``, tagged ``stackyard-worker:<codename>``) unless ``image`` names one. ``kind = "kubernetes"``: Buildbot's
``KubeLatentWorker`` in ``namespace``, running ``image`` (the worker image pushed to a registry), with the
cluster's own credentials (``kube_config = "in-cluster"``) or ``kubectl proxy``'s.

The worker image: stackyard's base (``stackyard.images.build.ensure_base``: a Debian rootfs made locally, no
Docker Hub), the worker's Debian packages, and a venv with buildbot-worker (the master's version) and
stackyard from a wheel of this checkout (stackyard has no deb), all installed offline from wheels made here
(``images/worker.Dockerfile.j2``). Its tag is named after those inputs, so a changed checkout makes a new
image and an unchanged one is not rebuilt. The worker reads where the master is and its password from the
environment the master gives the container (``buildbot.tac`` below), never from its command line.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any, Callable

from buildbot.plugins import util, worker
from buildbot.worker.docker import DockerLatentWorker
from buildbot.worker.kubernetes import KubeLatentWorker

from builders.settings import BuildbotConfig, LatentSettings, Secret, WorkerSettings
from stackyard.config import Config, Release
from stackyard.errors import ConfigError
from stackyard.events import Note, Reporter, discard
from stackyard.images import engine as docker_engine
from stackyard.images.build import ensure_base, render
from stackyard.runner import RUNNER, Runner
from stackyard.wheels.pip import isolated_env

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "worker.Dockerfile.j2"
REPOSITORY = "stackyard-worker"
VENV = "/opt/stackyard"
BASEDIR = "/buildbot"
# what a worker needs to run stackyard at all; build workers add their toolchain with 'packages'
WORKER_PACKAGES = ("python3-venv", "git", "ca-certificates")
SOURCES = ("pyproject.toml", "README.md", "stackyard")  # what the wheel is made from
DIGESTED = ("pyproject.toml", "stackyard")  # what the image's tag follows (the README is only the wheel's description)

# The worker's buildbot.tac: everything from the environment the master gives the container
# (BUILDMASTER, BUILDMASTER_PORT, WORKERNAME, WORKERPASS); the password is dropped from the
# environment before any build step runs, so no step and no log sees it.
TAC = '''\
import os
import sys

from buildbot_worker.bot import Worker
from twisted.application import service
from twisted.python.log import FileLogObserver, ILogObserver

basedir = os.path.dirname(os.path.abspath(__file__))
application = service.Application("buildbot-worker")
application.setComponent(ILogObserver, FileLogObserver(sys.stdout).emit)
passwd = os.environ.pop("WORKERPASS")
worker = Worker(os.environ["BUILDMASTER"], int(os.environ.get("BUILDMASTER_PORT", "9989")), os.environ["WORKERNAME"],
                passwd, basedir, 600, umask=0o022, maxdelay=30, allow_shutdown=None, maxRetries=10)
worker.setServiceParent(application)
'''


def _codename(config: Config, latent: LatentSettings) -> str:
    if latent.codename:
        if latent.codename not in config.codenames:
            raise ConfigError(f"{config.file}: buildbot.workers: codename {latent.codename!r} is not a [codenames] table",
                              hint=f"one of {', '.join(sorted(config.codenames))}")
        return latent.codename
    return next(iter(config.releases.values())).codename


def _release(config: Config, codename: str) -> Release:
    """A release of ``codename``: ensure_base makes the base image per release's codename."""
    for release in config.releases.values():
        if release.codename == codename:
            return release
    return next(iter(config.releases.values()))


def source_digest(root: Path = ROOT) -> str:
    """sha256 of the files stackyard's wheel is made from (names and contents, in order)."""
    h = hashlib.sha256()
    for top in DIGESTED:
        path = root / top
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if "__pycache__" in f.parts or f.suffix == ".pyc":
                continue
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def worker_packages(latent: LatentSettings) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*WORKER_PACKAGES, *latent.packages)))


def worker_dockerfile(config: Config, base: str, latent: LatentSettings, inputs: str = "") -> str:
    return render(config, TEMPLATE, base=base, packages=worker_packages(latent), venv=VENV, basedir=BASEDIR,
                  buildbot_worker=f"buildbot-worker=={dist_version('buildbot-worker')}", inputs=inputs)


def worker_image_tag(config: Config, latent: LatentSettings, root: Path = ROOT) -> str:
    """``stackyard-worker:<codename>-<key>``, the key a digest of the image's inputs: the template (rendered),
    the packages, buildbot-worker's version, stackyard's sources."""
    codename = _codename(config, latent)
    dockerfile = worker_dockerfile(config, "BASE", latent)
    key = hashlib.sha256(f"{codename}\0{dockerfile}\0{source_digest(root)}".encode()).hexdigest()[:12]
    return f"{REPOSITORY}:{codename}-{key}"


def worker_image_ref(config: Config, latent: LatentSettings) -> str:
    """What the master starts containers from: ``stackyard-worker:<codename>``, moved by ``make up`` onto the image
    of the current inputs (so a master never names an image that was not built)."""
    return f"{REPOSITORY}:{_codename(config, latent)}"


def ensure_worker_image(config: Config, latent: LatentSettings, *, report: Reporter = discard, runner: Runner = RUNNER,
                        root: Path = ROOT) -> tuple[str, bool]:
    """The worker image of ``latent`` in its engine (built when its tag is missing), tagged as
    ``worker_image_ref`` too: (tag, built)."""
    tag = worker_image_tag(config, latent, root)
    engine = latent.docker_host or config.images.engine
    client = docker_engine.connect(config.images if engine == config.images.engine else
                                   _with_engine(config, engine))
    built = _build_worker_image(config, latent, client, tag, report, runner, root)
    client.api.tag(tag, REPOSITORY, worker_image_ref(config, latent).split(":", 1)[1])
    return tag, built


def _build_worker_image(config: Config, latent: LatentSettings, client: Any, tag: str, report: Reporter, runner: Runner,
                        root: Path) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return False
    except docker.errors.ImageNotFound:
        pass
    log = config.paths.output / "logs" / "buildbot" / "worker-image.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    codename = _codename(config, latent)
    base = ensure_base(config, _release(config, codename), client, log, report, runner=runner)
    report(Note("worker-image", f"{tag}: wheels of stackyard and buildbot-worker"))
    with tempfile.TemporaryDirectory(prefix="stackyard-worker-") as tmp:
        context = Path(tmp)
        source = context / "source"
        source.mkdir()
        for top in SOURCES:
            (shutil.copytree if (root / top).is_dir() else shutil.copy)(root / top, source / top)
        wheels = context / "wheels"
        runner.run([sys.executable, "-m", "pip", "wheel", "--isolated",
                    "--disable-pip-version-check", "-q", "--index-url", config.index.tools_url, "--wheel-dir", str(wheels),
                    str(source), f"buildbot-worker=={dist_version('buildbot-worker')}"],
                   env=isolated_env(), log=log, timeout=1800, what="pip wheel (the worker image's stackyard and buildbot-worker)")
        (context / "buildbot.tac").write_text(TAC)
        (context / "Dockerfile").write_text(worker_dockerfile(config, base, latent, inputs=tag.split(":", 1)[1]))
        report(Note("worker-image", f"{tag}: building on {base}"))
        docker_engine.build(client, context, tag, log,
                            on_step=lambda i, n, text: report(Note("worker-image", f"[{i}/{n}] {text}")))
    return True


def _with_engine(config: Config, engine: str) -> Any:
    import dataclasses

    return dataclasses.replace(config.images, engine=engine)


def master_address(config: BuildbotConfig, latent: LatentSettings) -> str | None:
    """``host:port`` the latent worker connects to: ``master`` if set; a docker worker on host networking
    reaches the master's worker port on loopback (or on worker_host when it is an address of its own);
    a kubernetes worker: None (Buildbot's default: the master's IP)."""
    settings = config.buildbot
    if latent.master:
        return latent.master if ":" in latent.master else f"{latent.master}:{settings.worker_port}"
    if latent.kind == "docker":
        host = "127.0.0.1" if settings.worker_host in ("0.0.0.0", "::", "") else settings.worker_host
        return f"{host}:{settings.worker_port}"
    return None


class _Environment:
    """``environment`` of the worker's table added to what Buildbot gives the container or pod."""

    extra_environment: dict[str, str] = {}

    def createEnvironment(self, build: Any = None) -> dict[str, str]:  # noqa: N802 (Buildbot's name)
        return {**self.extra_environment, **super().createEnvironment(build)}  # type: ignore[misc]


class StackyardDockerWorker(_Environment, DockerLatentWorker):
    def __init__(self, name: str, password: str, *, environment: dict[str, str] | None = None, **kwargs: Any) -> None:
        self.extra_environment = dict(environment or {})
        super().__init__(name, password, **kwargs)


class StackyardKubeWorker(_Environment, KubeLatentWorker):
    def __init__(self, name: str, *, environment: dict[str, str] | None = None, **kwargs: Any) -> None:
        self.extra_environment = dict(environment or {})
        super().__init__(name, **kwargs)


def docker_worker_kwargs(config: BuildbotConfig, w: WorkerSettings) -> dict[str, Any]:
    """The arguments of the DockerLatentWorker of ``w`` (without its password)."""
    latent = w.latent
    assert latent is not None and latent.kind == "docker"
    return {
        "docker_host": latent.docker_host or config.images.engine,
        "image": latent.image or worker_image_ref(config, latent),
        "masterFQDN": master_address(config, latent),
        "hostconfig": {"network_mode": latent.network},
        "volumes": list(latent.volumes),
        "environment": dict(latent.environment),
        "max_builds": w.max_builds or None,
        "build_wait_timeout": latent.build_wait_timeout,
        "autopull": bool(latent.image),  # the built image is local; a named one may be pulled from its registry
    }


def kube_worker_kwargs(config: BuildbotConfig, w: WorkerSettings) -> dict[str, Any]:
    """The arguments of the KubeLatentWorker of ``w`` (without its password)."""
    latent = w.latent
    assert latent is not None and latent.kind == "kubernetes"
    loader = (util.KubeInClusterConfigLoader() if latent.kube_config == "in-cluster"
              else util.KubeCtlProxyConfigLoader(namespace=latent.namespace))
    kwargs: dict[str, Any] = {
        "image": latent.image,
        "namespace": latent.namespace,
        "kube_config": loader,
        "environment": dict(latent.environment),
        "max_builds": w.max_builds or None,
        "build_wait_timeout": latent.build_wait_timeout,
    }
    master = master_address(config, latent)
    if master:
        kwargs["masterFQDN"] = master
    return kwargs


def make_worker(config: BuildbotConfig, w: WorkerSettings, password: Callable[[Secret], str]) -> Any:
    """The Buildbot worker object of ``w``: a plain Worker, a Docker or a Kubernetes latent worker. ``password``
    reads a Secret (builders.master.secret_value); a Kubernetes worker gets a random one per pod from Buildbot."""
    if w.latent is None:
        return worker.Worker(w.name, password(w.password), max_builds=w.max_builds or None)
    if w.latent.kind == "docker":
        return StackyardDockerWorker(w.name, password(w.password), **docker_worker_kwargs(config, w))
    return StackyardKubeWorker(w.name, **kube_worker_kwargs(config, w))


def docker_workers(config: BuildbotConfig) -> list[WorkerSettings]:
    """The docker workers whose image stackyard builds (no ``image`` given)."""
    return [w for w in config.buildbot.workers if w.latent and w.latent.kind == "docker" and not w.latent.image]
