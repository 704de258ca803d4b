"""The ``[buildbot]`` table of stackyard.toml: the master, its workers and web users.

stackyard's core (``stackyard.config``) does not read this table: it keeps it
as a ``Table``, and this module validates it with that same reader, so errors
name the file and the dotted key like the rest of the configuration.
``load_config`` gives the ``BuildbotConfig`` (the core ``Config`` plus these
settings) that builders.plan, builders.master and builders.ctl work from.

Secrets are never in stackyard.toml: a worker's or a web user's password comes
from a file (``password_file``) or an environment variable (``password_env``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from stackyard import config as core
from stackyard.config import Config, Table

WORKER_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
DB_URL = re.compile(r"^(sqlite|postgresql|postgresql\+[a-z0-9]+|mysql|mysql\+[a-z0-9]+)://")
BUILDER_PATTERN = re.compile(r"^[a-z0-9*?.\[\]_-]+$")
BRANCH = re.compile(r"^[A-Za-z0-9._/-]+$")
URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
RELEASES_REPO = "https://opendev.org/openstack/releases"
BUILD, PUBLISH = "build", "publish"
ROLES = (BUILD, PUBLISH)  # a worker declaring no roles, when none does: one machine does everything (no transfers)
MAX_WAIT_DELAY = 300  # seconds: the first wait between index attempts; later ones double, up to 10x it


@dataclass(frozen=True)
class Secret:
    """Where a password comes from: a file (made on first use if ``create``) or an environment variable."""

    key: str  # the dotted key, for messages
    file: Path | None
    env: str | None

    def describe(self) -> str:
        return f"${self.env}" if self.env else str(self.file)


@dataclass(frozen=True)
class LatentSettings:
    """A latent worker (``kind = "docker"`` or ``"kubernetes"``): the master starts it for a build, stops it after."""

    kind: str  # "docker" | "kubernetes"
    image: str  # "" (docker only): the worker image stackyard builds (builders.latent.worker_image_tag)
    docker_host: str  # docker: the engine (default: [images] engine)
    namespace: str  # kubernetes: the namespace pods are made in
    kube_config: str  # kubernetes: "in-cluster" | "kubectl-proxy"
    master: str  # "host[:port]" the worker connects to ("" = the master's own worker_host:worker_port, or its IP)
    network: str  # docker: the container's network mode ("host": these engines run without a bridge)
    volumes: tuple[str, ...]  # docker: "SOURCE:TARGET[:ro]" bind mounts
    environment: tuple[tuple[str, str], ...]  # added to the worker's environment (e.g. STACKYARD_CONFIG)
    packages: tuple[str, ...]  # docker, built image: Debian packages added to it (the build toolchain)
    codename: str  # docker, built image: the Debian codename of its base ("" = the first release's)
    build_wait_timeout: int  # seconds an idle worker stays before it is stopped (0: after each build)


@dataclass(frozen=True)
class WorkerSettings:
    name: str
    password: Secret
    builders: tuple[str, ...]  # fnmatch patterns of builder names it may take; () = every builder
    max_builds: int  # builds at once on this worker (0 = no limit)
    latent: LatentSettings | None = None  # kind = "docker" | "kubernetes"; None: a worker started by hand or by make up
    roles: tuple[str, ...] = ROLES  # "build": wheels, debs, images; "publish": reprepro, signing key, registry credentials


@dataclass(frozen=True)
class BuildbotSettings:
    basedir: Path  # the master's directory (twistd.log, http.log, state.sqlite, secrets/)
    title: str
    web_host: str  # interface the web UI listens on (loopback by default)
    web_port: int
    worker_host: str  # interface the worker protocol listens on
    worker_port: int
    db_url: str  # SQLite by default; postgresql://user@host/db for production
    poll_interval: int  # seconds between upstream tag polls
    nightly: str  # "HH:MM" (UTC): the nightly run of every release's wheels builder
    images: bool  # the project builders build and push the image (needs a registry)
    requirements_update: bool  # the wheels builders refresh upper-constraints from upstream first
    deliverables: Path | None  # openstack/releases deliverables/ (tags of a series), or None
    releases_repo: str  # the openstack/releases git repository the releases poller watches ("" = no poller)
    releases_branch: str
    wait_attempts: int  # 'stackyard wait-for': attempts to find a new version on the index
    wait_delay: int  # seconds before the second attempt; doubles each time, up to 10x
    workers: tuple[WorkerSettings, ...]
    users: Mapping[str, Secret]  # web user -> password, in the order given (the first is the one 'make' logs in as)
    verify: bool = True  # promote-<release> runs 'stackyard verify' first (false: promote --force, naming this key)
    pins_branch: str = ""  # a tag build commits its pin and lock to this branch of the configuration repository ("" = off)
    pins_remote: str = "origin"  # where that branch is pushed: a remote of the checkout, or a git URL
    wheelhouse_url: str = ""  # scale-out: the publisher's wheelhouse over HTTP (stackyard serve-wheelhouse), build workers install from it

    @property
    def scale_out(self) -> bool:
        """Some worker declared its roles: build workers and one publisher, artifacts travel through the master."""
        return any(w.roles != ROLES for w in self.workers)

    @property
    def checks_out(self) -> bool:
        """Scale-out with a pins branch: every build checks the machine's clone out at the branch first."""
        return self.scale_out and bool(self.pins_branch)

    @property
    def publisher(self) -> WorkerSettings:
        (publisher,) = [w for w in self.workers if PUBLISH in w.roles]  # parse_buildbot checked: exactly one
        return publisher

    @property
    def url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}/"


def _secret(t: Table, key: str, root: Path, default_file: Path) -> Secret:
    file, env = t.data.get("password_file"), t.data.get("password_env")
    if file is not None and env is not None:
        raise t.error("give password_file or password_env, not both", "password_file")
    if env is not None:
        if not isinstance(env, str) or not ENV_NAME.match(env):
            raise t.error(f"must be an environment variable name, got {env!r}", "password_env")
        return Secret(key=f"{t.key}.password_env", file=None, env=env)
    if file is not None and (not isinstance(file, str) or not file):
        raise t.error(f"must be a path, got {file!r}", "password_file")
    return Secret(key=f"{t.key}.password_file", file=root / file if file else default_file, env=None)


def _list_of_tables(t: Table, key: str, default: list[dict]) -> list[Table]:
    value = t.data.get(key, default)
    if not isinstance(value, list) or not value:
        raise t.error(f"must be a non-empty array of tables ([[{t.key}.{key}]]), got {value!r}", key)
    return [Table(t.file, f"{t.key}.{key}[{i}]", item) for i, item in enumerate(value)]


def _port(t: Table, key: str, default: int) -> int:
    port = t.int(key, default, 1)
    if port > 65535:
        raise t.error(f"must be a TCP port (1-65535), got {port}", key)
    return port


WORKER_KINDS = ("worker", "docker", "kubernetes")
LATENT_KEYS = {
    "docker": {"image", "docker_host", "master", "network", "volumes", "environment", "packages", "codename", "build_wait_timeout"},
    "kubernetes": {"image", "namespace", "kube_config", "master", "environment", "build_wait_timeout"},
}
KUBE_CONFIGS = ("in-cluster", "kubectl-proxy")
IMAGE_REF = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*$")
NAMESPACE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
HOST_PORT = re.compile(r"^[A-Za-z0-9._-]+(:[0-9]{1,5})?$")
PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


def _optional(w: Table, key: str, default: str = "") -> str:
    """A string key that may be absent (then ``default``) but not empty."""
    return w.str(key) if key in w.data else default


def _latent(w: Table, kind: str) -> LatentSettings | None:
    """The fields of a ``kind = "docker"`` or ``"kubernetes"`` worker (None for a plain one)."""
    if kind == "worker":
        for key in sorted(set().union(*LATENT_KEYS.values()) & set(w.data)):
            raise w.error("is a key of a latent worker: add kind = \"docker\" or kind = \"kubernetes\"", key)
        return None
    for key in sorted((set().union(*LATENT_KEYS.values()) - LATENT_KEYS[kind]) & set(w.data)):
        raise w.error(f"is not a key of a kind = \"{kind}\" worker", key)
    image = _optional(w, "image")
    if image and not IMAGE_REF.match(image):
        raise w.error(f"{image!r} is not an image reference (registry/name:tag)", "image")
    if kind == "kubernetes" and not image:
        raise w.error("a kubernetes worker needs the image its pods run (the worker image pushed to a registry)", "image")
    master = _optional(w, "master")
    if master and not HOST_PORT.match(master):
        raise w.error(f"must be HOST or HOST:PORT where the worker reaches the master, got {master!r}", "master")
    volumes = w.str_list("volumes")
    for v in volumes:
        if v.count(":") not in (1, 2) or not v.split(":")[0] or not v.split(":")[1].startswith("/") \
                or (v.count(":") == 2 and v.split(":")[2] not in ("ro", "rw")):
            raise w.error(f"{v!r} is not SOURCE:/TARGET[:ro|:rw]", "volumes")
    env = w.data.get("environment", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and ENV_NAME.match(k) and isinstance(v, str) for k, v in env.items()):
        raise w.error(f"must be a table of NAME = \"value\" strings, got {env!r}", "environment")
    packages = w.str_list("packages")
    for p in packages:
        if not PACKAGE.match(p):
            raise w.error(f"{p!r} is not a Debian package name", "packages")
    namespace = _optional(w, "namespace", "default" if kind == "kubernetes" else "")
    if kind == "kubernetes" and not NAMESPACE.match(namespace):
        raise w.error(f"{namespace!r} is not a Kubernetes namespace name", "namespace")
    kube_config = _optional(w, "kube_config", "in-cluster" if kind == "kubernetes" else "")
    if kind == "kubernetes" and kube_config not in KUBE_CONFIGS:
        raise w.error(f"must be one of {', '.join(KUBE_CONFIGS)}, got {kube_config!r}", "kube_config")
    network = _optional(w, "network", "host" if kind == "docker" else "")
    return LatentSettings(
        kind=kind, image=image, docker_host=_optional(w, "docker_host"), namespace=namespace, kube_config=kube_config,
        master=master, network=network, volumes=volumes, environment=tuple(sorted(env.items())), packages=packages,
        codename=_optional(w, "codename"), build_wait_timeout=w.int("build_wait_timeout", 0),
    )


def _roles(w: Table) -> tuple[str, ...]:
    value = w.data.get("roles", [BUILD])
    if not isinstance(value, list) or not value or any(r not in ROLES for r in value) or len(set(value)) != len(value):
        raise w.error(f"must be a non-empty list of {BUILD!r} and {PUBLISH!r}, got {value!r}", "roles")
    return tuple(r for r in ROLES if r in value)


def _check_roles(t: Table, workers: list[WorkerSettings]) -> None:
    publishers = [w.name for w in workers if PUBLISH in w.roles]
    if len(publishers) != 1:
        said = "none" if not publishers else ", ".join(publishers)
        raise t.error(f"exactly one worker must have the role {PUBLISH!r} (it alone holds the apt repository, the signing key "
                      f"and the registry credentials), found {said}", "workers[*].roles")
    if not any(BUILD in w.roles for w in workers):
        raise t.error(f"no worker has the role {BUILD!r}; give it to at least one", "workers[*].roles")


def parse_buildbot(t: Table, root: Path, output: Path) -> BuildbotSettings:
    t.check_keys({
        "basedir", "title", "web_host", "web_port", "worker_host", "worker_port", "db_url", "poll_interval",
        "nightly", "images", "requirements_update", "verify", "deliverables", "releases_repo", "releases_branch",
        "wait_attempts", "wait_delay", "workers", "users", "pins_branch", "pins_remote", "wheelhouse_url",
    })
    basedir = root / t.data["basedir"] if "basedir" in t.data else output / "buildbot"
    t.str("basedir", "var/buildbot")  # type check
    secrets = basedir / "secrets"
    for key in ("images", "requirements_update", "verify"):
        if not isinstance(t.data.get(key, True), bool):
            raise t.error(f"must be true or false, got {t.data[key]!r}", key)
    db_url = t.str("db_url", f"sqlite:///{basedir / 'state.sqlite'}")
    if not DB_URL.match(db_url):
        raise t.error(f"{db_url!r} is not an SQLAlchemy URL (sqlite:///PATH or postgresql://USER@HOST/DB)", "db_url")
    deliverables = t.data.get("deliverables", "")
    if not isinstance(deliverables, str):
        raise t.error(f"must be a path or \"\", got {deliverables!r}", "deliverables")
    if deliverables and not (root / deliverables).is_dir():
        raise t.error(f"{root / deliverables} is not a directory (openstack/releases deliverables/)", "deliverables")

    workers: list[WorkerSettings] = []
    worker_tables = _list_of_tables(t, "workers", [{"name": "local"}])
    # roles: none declared anywhere = one machine (every worker does everything, today's setup); once one worker
    # declares them, a worker without them builds, and exactly one worker publishes
    with_roles = any("roles" in w.data for w in worker_tables)
    for w in worker_tables:
        kind = w.str("kind", "worker")
        if kind not in WORKER_KINDS:
            raise w.error(f"must be one of {', '.join(WORKER_KINDS)}, got {kind!r}", "kind")
        w.check_keys({"name", "password_file", "password_env", "builders", "max_builds", "kind", "roles",
                      *set().union(*LATENT_KEYS.values())})
        name = w.str("name", pattern=WORKER_NAME)
        if any(o.name == name for o in workers):
            raise w.error(f"worker {name!r} is declared twice", "name")
        patterns = w.str_list("builders")
        for p in patterns:
            if not BUILDER_PATTERN.match(p):
                raise w.error(f"{p!r} is not a builder name or pattern (e.g. \"keystone-*\")", "builders")
        roles = _roles(w) if with_roles else ROLES
        workers.append(WorkerSettings(name, _secret(w, "password", root, secrets / f"worker-{name}"), patterns, w.int("max_builds", 2),
                                      latent=_latent(w, kind), roles=roles))
    if with_roles:
        _check_roles(t, workers)
    wheelhouse_url = t.data.get("wheelhouse_url", "")
    if not isinstance(wheelhouse_url, str) or (wheelhouse_url and not URL.match(wheelhouse_url)):
        raise t.error(f"must be an http(s) URL of the publisher's wheelhouse (stackyard serve-wheelhouse), got {wheelhouse_url!r}",
                      "wheelhouse_url")
    if with_roles and not wheelhouse_url:
        raise t.error("workers declare roles: build workers install from the publisher's wheelhouse over HTTP; give its URL "
                      "(e.g. \"http://publisher.example.org:8081\", served by 'stackyard serve-wheelhouse')", "wheelhouse_url")

    users: dict[str, Secret] = {}
    for u in _list_of_tables(t, "users", [{"name": "admin"}]):
        u.check_keys({"name", "password_file", "password_env"})
        name = u.str("name", pattern=WORKER_NAME)
        if name in users:
            raise u.error(f"user {name!r} is declared twice", "name")
        users[name] = _secret(u, "password", root, secrets / f"user-{name}")

    nightly = t.str("nightly", "03:00", pattern=CLOCK)
    releases_repo = t.data.get("releases_repo", RELEASES_REPO)
    if not isinstance(releases_repo, str) or releases_repo.startswith("-") or any(c.isspace() for c in releases_repo):
        raise t.error(f"must be a git repository URL (or \"\" for no releases poller), got {releases_repo!r}", "releases_repo")
    wait_delay = t.int("wait_delay", 30, 1)
    if wait_delay > MAX_WAIT_DELAY:
        raise t.error(f"must be at most {MAX_WAIT_DELAY} seconds, got {wait_delay}", "wait_delay")
    pins_branch = t.data.get("pins_branch", "")
    if pins_branch != "" and (not isinstance(pins_branch, str) or not BRANCH.match(pins_branch) or pins_branch.startswith("-")):
        raise t.error(f"must be a branch name (or \"\" for no pin commits), got {pins_branch!r}", "pins_branch")
    pins_remote = t.str("pins_remote", "origin")
    if pins_remote.startswith("-") or any(c.isspace() for c in pins_remote):
        raise t.error(f"must be a git remote name or URL, got {pins_remote!r}", "pins_remote")
    return BuildbotSettings(
        basedir=basedir,
        title=t.str("title", "stackyard"),
        web_host=t.str("web_host", "127.0.0.1"),
        web_port=_port(t, "web_port", 8010),
        worker_host=t.str("worker_host", "127.0.0.1"),
        worker_port=_port(t, "worker_port", 9989),
        db_url=db_url,
        poll_interval=t.int("poll_interval", 300, 1),
        nightly=nightly,
        images=bool(t.data.get("images", True)),
        requirements_update=bool(t.data.get("requirements_update", True)),
        deliverables=(root / deliverables) if deliverables else None,
        releases_repo=releases_repo,
        releases_branch=t.str("releases_branch", "master", pattern=BRANCH),
        wait_attempts=t.int("wait_attempts", 15, 1),
        wait_delay=wait_delay,
        workers=tuple(workers),
        users=users,
        verify=bool(t.data.get("verify", True)),
        pins_branch=pins_branch,
        pins_remote=pins_remote,
        wheelhouse_url=wheelhouse_url.rstrip("/"),
    )


@dataclass(frozen=True, kw_only=True)
class BuildbotConfig(Config):
    """stackyard.toml as the Buildbot master reads it: the core configuration and its ``[buildbot]`` settings."""

    buildbot: BuildbotSettings


def buildbot_config(config: Config) -> BuildbotConfig:
    """``config`` with its ``[buildbot]`` table validated."""
    if isinstance(config, BuildbotConfig):
        return config
    settings = parse_buildbot(config.table("buildbot"), config.paths.root, config.paths.output)
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(Config)}
    return BuildbotConfig(**fields, buildbot=settings)


def load_config(file: Path) -> BuildbotConfig:
    return buildbot_config(core.load_config(file))


def parse_config(data: dict[str, Any], file: Path) -> BuildbotConfig:
    return buildbot_config(core.parse_config(data, file))
