"""Recipes: one YAML file per OpenStack project, schema-checked.

Adding a project needs only ``recipes/<project>.yaml``; every stage reads the
same frozen ``Recipe``. Errors name the file and the dotted key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stackyard.config import RELEASE_ID
from stackyard.errors import ConfigError, InputError

PROJECT = re.compile(r"^[a-z][a-z0-9.-]*$")
COMMAND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
DEB_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")
VERSION = re.compile(r"^[0-9][0-9A-Za-z.+!-]*$")
REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[a-z0-9,_-]+\])?$")  # a bare name: upper-constraints pins it



def package_name(name: str) -> str:
    """The Debian package of a project (``venv-<project>``); a package name stays as it is."""
    return name if name.startswith(("venv-", "openstack-wheels-")) else f"venv-{name}"

@dataclass(frozen=True)
class Source:
    pypi: str | None = None  # distribution name on the index
    git: str | None = None  # repository URL (tags are the versions)

    def requirement(self, version: str) -> str:
        """The requirement line that installs this project at ``version``."""
        if self.git:
            return f"{self.distribution} @ git+{self.git}@{version}"
        return f"{self.distribution}=={version}"

    @property
    def distribution(self) -> str:
        if self.pypi:
            return self.pypi
        assert self.git
        return self.git.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")


@dataclass(frozen=True)
class Service:
    name: str
    command: str
    description: str


@dataclass(frozen=True)
class Api:
    """A WSGI application the package serves with uwsgi (Debian's python3 plugin, the venv as home)."""

    name: str  # unit and ini name: /lib/systemd/system/<name>.service, /etc/<project>/<name>-uwsgi.ini
    module: str  # "package.module:callable"
    port: int
    description: str


@dataclass(frozen=True)
class ConstraintOverrides:
    drop: tuple[str, ...] = ()  # upper-constraints pins to ignore for this project
    replace: tuple[tuple[str, str], ...] = ()  # (name, "path" | "git+URL@ref")


WSGI_SERVERS = ("apache", "uwsgi", "none")


@dataclass(frozen=True)
class ImageSpec:
    """How the project's image is made and which openstack-helm chart keys run it."""

    name: str  # the image's name in the registry (default: the project's)
    wsgi: str  # "apache" (mod_wsgi), "uwsgi" or "none"
    packages: tuple[str, ...]  # Debian packages the image adds beyond the deb's Depends
    chart: str | None  # the openstack-helm chart whose values name this project's image
    chart_keys: tuple[str, ...]  # images.tags keys of that chart that run this image
    client_keys: tuple[str, ...]  # images.tags keys of that chart that run the openstack-client image


@dataclass(frozen=True)
class Recipe:
    name: str
    file: Path
    description: str
    source: Source
    versions: dict[str, str]
    extras: tuple[str, ...]
    console_scripts: tuple[str, ...]
    services: tuple[Service, ...]
    runtime_packages: tuple[str, ...]
    smoke: tuple[str, ...]
    constraints: ConstraintOverrides
    image: ImageSpec
    requirements: tuple[str, ...] = ()  # more distributions in the venv, pinned by upper-constraints
    keep_tests: bool = False  # keep the packages' tests/ directories in the venv (dropped by default)
    apis: tuple[Api, ...] = ()  # WSGI applications served by uwsgi units
    rootwrap: bool = False  # sudo may run <project>-rootwrap (and its daemon) with /etc/<project>/rootwrap.conf
    privsep: bool = False  # sudo may run the venv's privsep-helper (oslo.privsep) for the service user

    def version(self, release_id: str) -> str:
        try:
            return self.versions[release_id]
        except KeyError:
            raise InputError(
                f"{self.file}: versions: no version of {self.name} for release {release_id}",
                hint=f"add '\"{release_id}\": <version>' under versions in {self.file}",
            ) from None

    @property
    def package(self) -> str:
        return package_name(self.name)


class _Node:
    def __init__(self, file: Path, key: str, value: Any) -> None:
        self.file, self.key, self.value = file, key, value

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self.key or '<top>'}: {message}")

    def child(self, key: str, default: Any = None) -> "_Node":
        assert isinstance(self.value, dict)
        return _Node(self.file, f"{self.key}.{key}" if self.key else key, self.value.get(key, default))

    def mapping(self, allowed: set[str], required: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
        if not isinstance(self.value, dict):
            raise self.error(f"must be a mapping, got {type(self.value).__name__}")
        for key in self.value:
            if key not in allowed:
                raise self.child(str(key)).error(f"unknown key; expected one of {', '.join(sorted(allowed))}")
        for key in required:
            if key not in self.value:
                raise self.child(key).error("is required")
        return self.value

    def string(self, pattern: re.Pattern[str] | None = None, optional: bool = False) -> str | None:
        if self.value is None and optional:
            return None
        if not isinstance(self.value, str) or not self.value.strip():
            raise self.error(f"must be a non-empty string, got {self.value!r}")
        if pattern and not pattern.match(self.value):
            raise self.error(f"{self.value!r} is not valid (expected {pattern.pattern})")
        return self.value

    def entries(self, shape: str) -> list["_Node"]:
        """The items of a list of mappings (``shape`` names their keys in the error)."""
        if not isinstance(self.value, list):
            raise self.error(f"must be a list of {shape}")
        return [_Node(self.file, f"{self.key}[{i}]", v) for i, v in enumerate(self.value)]

    def strings(self, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
        if self.value is None:
            return ()
        if not isinstance(self.value, list):
            raise self.error(f"must be a list, got {type(self.value).__name__}")
        return tuple(_Node(self.file, f"{self.key}[{i}]", v).string(pattern) or "" for i, v in enumerate(self.value))


TOP_KEYS = {
    "name", "description", "source", "versions", "extras", "console_scripts", "services",
    "runtime_packages", "smoke", "constraints", "image", "requirements", "keep_tests", "apis", "rootwrap", "privsep",
}
WSGI_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")


def parse_recipe(data: Any, file: Path) -> Recipe:
    top = _Node(file, "", data)
    top.mapping(TOP_KEYS, {"name", "source", "versions"})
    name = top.child("name").string(PROJECT)
    assert name
    if file.stem != name:
        raise top.child("name").error(f"{name!r} must match the file name {file.stem!r}")

    src = top.child("source")
    src.mapping({"pypi", "git"})
    source = Source(pypi=src.child("pypi").string(optional=True), git=src.child("git").string(optional=True))
    if bool(source.pypi) == bool(source.git):
        raise src.error("give exactly one of 'pypi: <distribution>' or 'git: <url>'")

    versions_n = top.child("versions")
    versions: dict[str, str] = {}
    for rid in versions_n.mapping(set(versions_n.value or {})):
        key = str(rid)
        node = _Node(file, f"versions.{key}", versions_n.value[rid])
        if not isinstance(rid, str) or not RELEASE_ID.match(key):
            raise node.error("release ids look like \"2025.1\" (quote them in YAML)")
        if isinstance(node.value, (int, float)):
            raise node.error("quote the version so YAML keeps it a string")
        versions[key] = node.string(VERSION) or ""

    services: list[Service] = []
    for node in top.child("services", []).entries("{name, command, description}"):
        node.mapping({"name", "command", "description"}, {"name", "command"})
        services.append(
            Service(
                name=node.child("name").string(COMMAND) or "",
                command=node.child("command").string() or "",
                description=node.child("description").string(optional=True) or "",
            )
        )

    cons = top.child("constraints", {})
    cons.mapping({"drop", "replace"})
    replace_n = cons.child("replace", {})
    replace_n.mapping(set(map(str, replace_n.value or {})))
    replace = []
    for lib, target in (replace_n.value or {}).items():
        node = _Node(file, f"constraints.replace.{lib}", target)
        value = node.string() or ""
        if not (value.startswith(("git+", "/", "./", "../", "file://"))):
            raise node.error("must be a local path or 'git+URL@ref'")
        if not value.startswith(("git+", "file://")):
            path = Path(value) if value.startswith("/") else (file.parent / value).resolve()
            value = path.as_uri()
        replace.append((str(lib), value))

    flags = {}
    for flag in ("keep_tests", "rootwrap", "privsep"):
        value = top.child(flag, False).value
        if not isinstance(value, bool):
            raise top.child(flag).error(f"must be true or false, got {value!r}")
        flags[flag] = value

    apis: list[Api] = []
    for node in top.child("apis", []).entries("{name, module, port, description}"):
        node.mapping({"name", "module", "port", "description"}, {"name", "module", "port"})
        port = node.child("port").value
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise node.child("port").error(f"must be a TCP port number, got {port!r}")
        apis.append(Api(name=node.child("name").string(COMMAND) or "", module=node.child("module").string(WSGI_MODULE) or "",
                        port=port, description=node.child("description").string(optional=True) or ""))
    names = [a.name for a in apis] + [s.name for s in services]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        raise top.child("apis").error(f"{dup!r} names both a service and an API (or two of them): units need unique names")

    image_n = top.child("image", {})
    image_n.mapping({"name", "wsgi", "packages", "chart", "chart_keys", "client_keys"})
    wsgi = image_n.child("wsgi").string(optional=True) or "none"
    if wsgi not in WSGI_SERVERS:
        raise image_n.child("wsgi").error(f"{wsgi!r} is not one of {', '.join(WSGI_SERVERS)}")
    chart_key = re.compile(r"^[a-z][a-z0-9_]*$")
    image = ImageSpec(
        name=image_n.child("name").string(PROJECT, optional=True) or name,
        wsgi=wsgi,
        packages=image_n.child("packages").strings(DEB_PACKAGE),
        chart=image_n.child("chart").string(PROJECT, optional=True),
        chart_keys=image_n.child("chart_keys").strings(chart_key),
        client_keys=image_n.child("client_keys").strings(chart_key),
    )
    if (image.chart_keys or image.client_keys) and not image.chart:
        raise image_n.child("chart").error("chart_keys and client_keys need the chart they belong to (e.g. chart: keystone)")

    return Recipe(
        name=name,
        file=file,
        description=top.child("description").string(optional=True) or f"OpenStack {name}",
        source=source,
        versions=versions,
        extras=top.child("extras").strings(re.compile(r"^[a-z0-9_-]+$")),
        console_scripts=top.child("console_scripts").strings(COMMAND),
        services=tuple(services),
        runtime_packages=top.child("runtime_packages").strings(DEB_PACKAGE),
        smoke=top.child("smoke").strings(),
        constraints=ConstraintOverrides(drop=cons.child("drop").strings(), replace=tuple(sorted(replace))),
        image=image,
        requirements=top.child("requirements").strings(REQUIREMENT),
        keep_tests=flags["keep_tests"],
        apis=tuple(apis),
        rootwrap=flags["rootwrap"],
        privsep=flags["privsep"],
    )


def load_recipe(file: Path) -> Recipe:
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: invalid YAML: {exc}") from None
    return parse_recipe(data, file)


def load_recipes(directory: Path) -> dict[str, Recipe]:
    recipes = {}
    for file in sorted(directory.glob("*.yaml")):
        recipe = load_recipe(file)
        recipes[recipe.name] = recipe
    return recipes


def select(recipes: dict[str, Recipe], names: list[str], directory: Path) -> list[Recipe]:
    unknown = [n for n in names if n not in recipes]
    if unknown:
        raise InputError(
            f"unknown project {', '.join(unknown)}",
            hint=f"known projects: {', '.join(sorted(recipes))}; add {directory}/{unknown[0]}.yaml to define one",
        )
    return [recipes[n] for n in names] if names else list(recipes.values())
