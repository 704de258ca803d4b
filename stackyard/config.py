"""stackyard.toml, parsed once into frozen dataclasses.

Every validation error names the file and the dotted key at fault.
"""

from __future__ import annotations

import platform
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from stackyard.errors import ConfigError, InputError

RELEASE_ID = re.compile(r"^\d{4}\.[12]$")
PYTHON_VERSION = re.compile(r"^3\.\d+$")
GLIBC_VERSION = re.compile(r"^2\.\d+$")
NAME = re.compile(r"^[a-z][a-z0-9-]*$")

# Debian architecture -> the machine name used in wheel platform tags.
WHEEL_MACHINE = {"amd64": "x86_64", "arm64": "aarch64", "ppc64el": "ppc64le", "s390x": "s390x"}

# Top-level tables of stackyard.toml that the core does not read: the component
# that owns each validates it with Table (the Buildbot master: builders/settings.py).
COMPONENT_TABLES = ("buildbot",)


@dataclass(frozen=True)
class Codename:
    name: str
    python: str
    glibc: str
    mirror: str


@dataclass(frozen=True)
class Release:
    id: str
    series: str
    codename: str
    python: str
    glibc: str
    upstream: str
    requirements_git: str = ""  # openstack/requirements as git: Buildbot polls its branch ("" = not polled)
    requirements_branch: str = ""  # default stable/<id>

    @property
    def python_tag(self) -> str:
        return "cp" + self.python.replace(".", "")

    @property
    def interpreter(self) -> str:
        return f"/usr/bin/python{self.python}"


@dataclass(frozen=True)
class IndexSettings:
    url: str
    tools_url: str  # where the shared build environment's backends come from
    retries: int
    timeout: float


LOCK_RESOLVERS = ("uv", "pip-compile")


@dataclass(frozen=True)
class LockSettings:
    resolver: str = "uv"  # "uv" (uv pip compile, pip-compile's format) or "pip-compile"


@dataclass(frozen=True)
class WheelSettings:
    download_jobs: int
    build_jobs: int
    allowed_failures: tuple[str, ...]


@dataclass(frozen=True)
class DebSettings:
    prefix: str
    maintainer: str


@dataclass(frozen=True)
class RepoSettings:
    path: Path  # reprepro base directory (one for every release)
    url: str  # what clients put in their sources (default: file:// of path)
    origin: str
    label: str
    component: str
    gnupg_home: Path  # keyring the embedded default creates its signing key in
    signing_key: str  # fingerprint of a configured key; "" = create one on first use


@dataclass(frozen=True)
class ImageSettings:
    registry: str  # host[:port] images are pushed to
    namespace: str  # <registry>/<namespace>/<image>:<tag>
    engine: str  # Docker Engine API address (unix:///path or tcp://host:port)
    username: str  # registry login
    password_file: Path  # holds the password; STACKYARD_REGISTRY_PASSWORD overrides it
    ca_cert: Path | None  # CA of the registry's TLS certificate (None: the system's trust store)
    uid: int  # uid and gid of the service user in every image (openstack-helm: 42424)
    retries: int  # bounded retries (exponential backoff) for registry requests
    storage_driver: str = "auto"  # the embedded dockerd's: overlay2 when it works there ("auto"), else vfs

    @property
    def engine_socket(self) -> Path | None:
        return Path(self.engine.removeprefix("unix://")) if self.engine.startswith("unix://") else None

    def repository(self, image: str) -> str:
        return f"{self.registry}/{self.namespace}/{image}"


@dataclass(frozen=True)
class Paths:
    root: Path
    output: Path
    cache: Path
    requirements: Path
    recipes: Path
    images: Path  # Jinja2 Dockerfile templates


@dataclass(frozen=True)
class Config:
    file: Path
    paths: Paths
    index: IndexSettings
    wheels: WheelSettings
    deb: DebSettings
    repo: RepoSettings
    images: ImageSettings
    architecture: str
    codenames: Mapping[str, Codename]
    releases: Mapping[str, Release]
    lock: LockSettings = LockSettings()
    # top-level tables that other components read and validate themselves (COMPONENT_TABLES)
    tables: Mapping[str, "Table"] = field(default_factory=dict)

    def table(self, name: str) -> "Table":
        """The top-level table ``name`` of stackyard.toml, for the component that reads it (empty if absent)."""
        return self.tables.get(name) or Table(self.file, name, {})

    def release(self, name: str) -> Release:
        """A release by id (``2025.1``) or series name (``epoxy``)."""
        if name in self.releases:
            return self.releases[name]
        for release in self.releases.values():
            if release.series == name:
                return release
        known = ", ".join(f"{r.id} ({r.series})" for r in self.releases.values())
        raise InputError(
            f"unknown release {name!r}",
            hint=f"use one of {known}, or add [releases.\"{name}\"] to {self.file}",
        )

    @property
    def wheel_machine(self) -> str:
        return WHEEL_MACHINE[self.architecture]

    def requirements_dir(self, release: Release) -> Path:
        return self.paths.requirements / release.id

    def wheelhouse_dir(self, release: Release) -> Path:
        target = f"{release.codename}-{release.python_tag}-{self.architecture}"
        return self.paths.output / "wheelhouse" / release.id / target

    def logs_dir(self, step: str, release: Release) -> Path:
        return self.paths.output / "logs" / release.id / step


class Table:
    """A TOML table being validated: remembers its file and dotted key, so every error names both.

    The core reads its own tables with it; a component that owns a table of
    its own (COMPONENT_TABLES) validates it with the same reader."""

    def __init__(self, file: Path, key: str, data: Any) -> None:
        self.file, self.key = file, key
        if not isinstance(data, dict):
            raise self.error(f"must be a table, got {type(data).__name__}")
        self.data: dict[str, Any] = data

    def error(self, message: str, key: str | None = None) -> ConfigError:
        where = ".".join(k for k in (self.key, key) if k)
        return ConfigError(f"{self.file}: {where or '<top>'}: {message}")

    def check_keys(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.error(f"unknown key; expected one of {', '.join(sorted(allowed))}", key)

    def sub(self, key: str) -> "Table":
        return Table(self.file, f"{self.key}.{key}" if self.key else key, self.data.get(key, {}))

    def str(self, key: str, default: str | None = None, pattern: re.Pattern[str] | None = None) -> str:
        value = self.data.get(key, default)
        if value is None:
            raise self.error("is required", key)
        if not isinstance(value, str) or not value:
            raise self.error(f"must be a non-empty string, got {value!r}", key)
        if pattern and not pattern.match(value):
            raise self.error(f"{value!r} does not match {pattern.pattern}", key)
        return value

    def int(self, key: str, default: int, minimum: int = 0) -> int:
        value = self.data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.error(f"must be an integer >= {minimum}, got {value!r}", key)
        return value

    def str_list(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(f"must be a list of strings, got {value!r}", key)
        return tuple(value)


def host_architecture() -> str:
    machine = platform.machine()
    for arch, wheel_machine in WHEEL_MACHINE.items():
        if wheel_machine == machine:
            return arch
    raise ConfigError(f"unsupported machine {machine!r}; supported: {', '.join(WHEEL_MACHINE.values())}")


REGISTRY = re.compile(r"^[a-z0-9.-]+(:[0-9]{1,5})?$")
IMAGE_PATH = re.compile(r"^[a-z0-9]+([._/-][a-z0-9]+)*$")


def _image_settings(t: Table, root: Path) -> ImageSettings:
    t.check_keys({"registry", "namespace", "engine", "username", "password_file", "ca_cert", "uid", "retries",
                  "storage_driver"})
    engine = t.str("engine", "unix://var/run/docker.sock")
    if engine.startswith("unix://"):
        engine = "unix://" + str(root / engine.removeprefix("unix://"))  # relative to stackyard.toml
    elif not engine.startswith(("tcp://", "ssh://")):
        raise t.error(f"{engine!r} is not a unix://, tcp:// or ssh:// address", "engine")
    ca = t.data.get("ca_cert", "var/registry/ca.crt")
    if not isinstance(ca, str):
        raise t.error(f"must be a path or \"\" (system trust store), got {ca!r}", "ca_cert")
    driver = t.str("storage_driver", "auto")
    if driver not in ("auto", "overlay2", "vfs"):
        raise t.error(f"{driver!r} is not one of auto, overlay2, vfs (auto: overlay2 where it works, else vfs)",
                      "storage_driver")
    return ImageSettings(
        registry=t.str("registry", "127.0.0.1:5443", pattern=REGISTRY),
        namespace=t.str("namespace", "stackyard", pattern=IMAGE_PATH),
        engine=engine,
        username=t.str("username", "stackyard"),
        password_file=root / t.str("password_file", "var/registry/password"),
        ca_cert=(root / ca) if ca else None,
        uid=t.int("uid", 42424, 1),
        retries=t.int("retries", 4),
        storage_driver=driver,
    )


GIT_URL = re.compile(r"^(https?|git|ssh|file)://[^\s]+$")
GIT_BRANCH = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._/-]*$")


def _git_url(t: Table, key: str) -> str:
    """A git repository URL, or "" when the key is absent."""
    value = t.data.get(key, "")
    if value == "":
        return ""
    if not isinstance(value, str) or not GIT_URL.match(value):
        raise t.error(f"must be a git repository URL (https://, ssh://, git:// or file://), got {value!r}", key)
    return value


def load_config(file: Path) -> Config:
    file = file.resolve()
    try:
        data = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{file}: not found", hint="run from the stackyard checkout or pass --config") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    return parse_config(data, file)


def parse_config(data: dict[str, Any], file: Path) -> Config:
    top = Table(file, "", data)
    top.check_keys({"paths", "index", "lock", "wheels", "deb", "repo", "images", "codenames", "releases", "architecture",
                    *COMPONENT_TABLES})
    root = file.parent

    paths_t = top.sub("paths")
    paths_t.check_keys({"output", "cache", "requirements", "recipes", "images"})
    output = root / paths_t.str("output", "var")
    paths = Paths(
        root=root,
        output=output,
        cache=root / paths_t.str("cache", str(Path(paths_t.str("output", "var")) / "cache")),
        requirements=root / paths_t.str("requirements", "requirements"),
        recipes=root / paths_t.str("recipes", "recipes"),
        images=root / paths_t.str("images", "images"),
    )

    index_t = top.sub("index")
    index_t.check_keys({"url", "tools_url", "retries", "timeout"})
    url = index_t.str("url", "https://pypi.org/simple")
    tools_url = index_t.str("tools_url", url)
    for key, value in (("url", url), ("tools_url", tools_url)):
        if not re.match(r"^(https?|file)://", value):
            raise index_t.error(f"{value!r} is not an http(s) or file URL", key)
    index = IndexSettings(url=url.rstrip("/"), tools_url=tools_url.rstrip("/"), retries=index_t.int("retries", 4), timeout=float(index_t.int("timeout", 60, 1)))

    lock_t = top.sub("lock")
    lock_t.check_keys({"resolver"})
    resolver = lock_t.str("resolver", "uv")
    if resolver not in LOCK_RESOLVERS:
        raise lock_t.error(f"{resolver!r} is not one of {', '.join(LOCK_RESOLVERS)}", "resolver")

    wheels_t = top.sub("wheels")
    wheels_t.check_keys({"download_jobs", "build_jobs", "allowed_failures"})
    wheels = WheelSettings(
        download_jobs=wheels_t.int("download_jobs", 16, 1),
        build_jobs=wheels_t.int("build_jobs", 0),
        allowed_failures=wheels_t.str_list("allowed_failures"),
    )

    deb_t = top.sub("deb")
    deb_t.check_keys({"prefix", "maintainer"})
    deb = DebSettings(prefix=deb_t.str("prefix", "/opt/openstack"), maintainer=deb_t.str("maintainer", "stackyard <packaging@stackyard.example.org>"))

    repo_t = top.sub("repo")
    repo_t.check_keys({"path", "url", "origin", "label", "component", "gnupg_home", "signing_key"})
    repo_path = root / repo_t.str("path", "var/repo")
    signing_key = repo_t.data.get("signing_key", "")
    if not isinstance(signing_key, str) or (signing_key and not re.match(r"^[0-9A-Fa-f]{16,40}$", signing_key)):
        raise repo_t.error(f"must be a key fingerprint (hex), got {signing_key!r}", "signing_key")
    repo = RepoSettings(
        path=repo_path,
        url=repo_t.str("url", repo_path.as_uri()),
        origin=repo_t.str("origin", "stackyard"),
        label=repo_t.str("label", "stackyard"),
        component=repo_t.str("component", "main", pattern=NAME),
        gnupg_home=root / repo_t.str("gnupg_home", "var/gnupg"),
        signing_key=signing_key.upper(),
    )

    images = _image_settings(top.sub("images"), root)

    architecture = data.get("architecture") or host_architecture()
    if architecture not in WHEEL_MACHINE:
        raise top.error(f"{architecture!r} is not one of {', '.join(WHEEL_MACHINE)}", "architecture")

    codenames: dict[str, Codename] = {}
    codenames_t = top.sub("codenames")
    for name in codenames_t.data:
        t = codenames_t.sub(name)
        t.check_keys({"python", "glibc", "mirror"})
        if not NAME.match(name):
            raise codenames_t.error("codename must be lower-case letters", name)
        codenames[name] = Codename(
            name=name,
            python=t.str("python", pattern=PYTHON_VERSION),
            glibc=t.str("glibc", pattern=GLIBC_VERSION),
            mirror=t.str("mirror", "http://deb.debian.org/debian"),
        )

    releases: dict[str, Release] = {}
    releases_t = top.sub("releases")
    if not releases_t.data:
        raise top.error("at least one [releases.\"<id>\"] table is required", "releases")
    for rid in releases_t.data:
        t = releases_t.sub(rid)
        t.check_keys({"series", "codename", "upstream", "requirements_git", "requirements_branch"})
        if not RELEASE_ID.match(rid):
            raise releases_t.error("release ids look like 2025.1", rid)
        codename = t.str("codename")
        if codename not in codenames:
            raise t.error(f"unknown codename {codename!r}; define [codenames.{codename}]", "codename")
        cn = codenames[codename]
        releases[rid] = Release(
            id=rid,
            series=t.str("series", pattern=NAME),
            codename=codename,
            python=cn.python,
            glibc=cn.glibc,
            upstream=t.str("upstream"),
            requirements_git=_git_url(t, "requirements_git"),
            requirements_branch=t.str("requirements_branch", f"stable/{rid}", pattern=GIT_BRANCH),
        )
    return Config(
        file=file,
        paths=paths,
        index=index,
        wheels=wheels,
        deb=deb,
        repo=repo,
        images=images,
        architecture=architecture,
        codenames=codenames,
        releases=releases,
        lock=LockSettings(resolver=resolver),
        tables={name: top.sub(name) for name in COMPONENT_TABLES if name in data},
    )
