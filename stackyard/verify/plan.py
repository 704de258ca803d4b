"""What a verify installs, configures, starts and asks, decided without running anything.

A project verify knows has a ``Profile``: the units it starts, the databases
and RabbitMQ user it needs, its catalog entries, its configuration files (as
puppet writes them: ``stackyard/verify/templates``) and its database
commands. ``make_plan`` closes a project list over what each needs (nova
needs keystone, glance and placement; every verify needs keystone and the
client) and renders every file.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import jinja2

from stackyard.errors import InputError
from stackyard.recipes import Recipe

TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_PROJECTS = ("keystone", "glance", "placement", "nova", "python-openstackclient")
CLIENT = "python-openstackclient"
HOST = "127.0.0.1"
REGION = "RegionOne"
KEYSTONE_URL = f"http://{HOST}:5000"
MEMCACHED = f"{HOST}:11211"
CACHE_BACKEND = "dogpile.cache.memcached"
BASE_PACKAGES = ("mariadb-server", "rabbitmq-server", "memcached")  # Debian's: in the cached root already
# cinder's volume backend: the NFS driver on a share that is already mounted. These machines' kernel has
# neither device-mapper (no LVM) nor an NFS client nor an iSCSI target, so the share is a tmpfs mounted
# where os-brick mounts it (its mount point is the md5 of the share): cinder-volume finds it mounted
# and does the rest (capacity, sparse volume files, permissions) through rootwrap as on a real share.
NFS_SHARE = f"{HOST}:/srv/cinder-volumes"
NFS_MOUNT = "/var/lib/cinder/mnt/" + hashlib.md5(NFS_SHARE.encode()).hexdigest()


@dataclass(frozen=True)
class CatalogEntry:
    """A service of keystone's catalog; its endpoint is ``path`` on the project's API (its recipe's port)."""

    type: str
    name: str
    path: str = ""


@dataclass(frozen=True)
class Command:
    """A setup command: ``user`` runs it (root when None)."""

    text: str
    user: str | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    requires: tuple[str, ...] = ()
    units: tuple[str, ...] = ()  # started in this order
    api_paths: Mapping[str, str] = field(default_factory=dict)  # unit -> path asked to show the API answers
    databases: tuple[str, ...] = ()  # for the database user named after the project
    rabbit: bool = False
    catalog: tuple[CatalogEntry, ...] = ()  # the service user named after the project is made for these
    files: tuple[str, ...] = ()  # rendered from templates/<name>.j2, root:<project> 0640 as the packages make /etc/<project>
    setup: tuple[Command, ...] = ()  # db syncs and the like, before the units start
    host_packages: tuple[str, ...] = ()  # Debian packages a backend needs on the host (not the package's Depends)


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile(
        "keystone", units=("keystone-api",), api_paths={"keystone-api": "/v3"},
        databases=("keystone",),
        files=("/etc/keystone/keystone.conf",),
        setup=(
            Command("keystone-manage db_sync", "keystone"),
            # root: they make /etc/keystone/fernet-keys and credential-keys (owned by keystone)
            Command("keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone"),
            Command("keystone-manage credential_setup --keystone-user keystone --keystone-group keystone"),
            Command("keystone-manage bootstrap --bootstrap-password \"$ADMIN_PASSWORD\" "
                    f"--bootstrap-admin-url {KEYSTONE_URL}/v3 --bootstrap-internal-url {KEYSTONE_URL}/v3 "
                    f"--bootstrap-public-url {KEYSTONE_URL}/v3 --bootstrap-region-id {REGION}", "keystone"),
        ),
    ),
    Profile("glance", requires=("keystone",), units=("glance-api",), api_paths={"glance-api": "/versions"},
            databases=("glance",), catalog=(CatalogEntry("image", "glance"),), files=("/etc/glance/glance-api.conf",),
            setup=(Command("glance-manage db_sync", "glance"),)),
    Profile("placement", requires=("keystone",), units=("placement-api",), api_paths={"placement-api": "/"},
            databases=("placement",), catalog=(CatalogEntry("placement", "placement"),), files=("/etc/placement/placement.conf",),
            setup=(Command("placement-manage db sync", "placement"),)),
    Profile("neutron", requires=("keystone",), units=("neutron-api", "neutron-rpc-server"), api_paths={"neutron-api": "/"},
            databases=("neutron",), rabbit=True, catalog=(CatalogEntry("network", "neutron"),),
            files=("/etc/neutron/neutron.conf", "/etc/neutron/plugins/ml2/ml2_conf.ini"),
            setup=(Command("neutron-db-manage --config-file /etc/neutron/neutron.conf "
                           "--config-file /etc/neutron/plugins/ml2/ml2_conf.ini upgrade heads", "neutron"),)),
    Profile(
        # nova's API shows a server's security groups and ports from neutron: no server without it
        "nova", requires=("keystone", "glance", "placement", "neutron"),
        units=("nova-api", "nova-conductor", "nova-scheduler", "nova-compute"), api_paths={"nova-api": "/"},
        databases=("nova_api", "nova", "nova_cell0"),
        rabbit=True,
        catalog=(CatalogEntry("compute", "nova", "/v2.1"),),
        files=("/etc/nova/nova.conf",),
        setup=(
            Command("nova-manage api_db sync", "nova"),
            Command("nova-manage cell_v2 map_cell0", "nova"),
            Command("nova-manage cell_v2 create_cell --name cell1 --verbose", "nova"),
            Command("nova-manage db sync", "nova"),
        ),
    ),
    Profile(
        # 'openstack volume create' makes an image client even without --image: no volume without glance
        "cinder", requires=("keystone", "glance"), units=("cinder-api", "cinder-scheduler", "cinder-volume"),
        api_paths={"cinder-api": "/"},
        databases=("cinder",), rabbit=True,
        catalog=(CatalogEntry("volumev3", "cinderv3", "/v3/%(project_id)s"),
                 CatalogEntry("block-storage", "cinder", "/v3/%(project_id)s")),
        files=("/etc/cinder/cinder.conf", "/etc/cinder/nfs_shares"),
        setup=(Command("cinder-manage db sync", "cinder"),
               Command(f"mkdir -p {NFS_MOUNT} && mount -t tmpfs -o size=8g,mode=0755 {NFS_SHARE} {NFS_MOUNT}")),
        host_packages=("nfs-common",),  # the NFS driver checks for mount.nfs
    ),
    Profile(CLIENT),
)}


@dataclass(frozen=True)
class Override:
    """``FILE:SECTION.KEY=VALUE``: one option of a rendered file, set after rendering."""

    file: str  # a rendered file's name (nova.conf) or path (/etc/nova/nova.conf)
    section: str
    key: str
    value: str

    @classmethod
    def parse(cls, text: str) -> "Override":
        m = re.fullmatch(r"([^:=\s]+):([^.=\s]+)\.([^=\s]+)=(.*)", text)
        if not m:
            raise InputError(f"--set {text!r}: expected FILE:SECTION.KEY=VALUE",
                             hint="e.g. --set nova.conf:DEFAULT.compute_driver=fake.FakeDriver")
        return cls(*m.groups())

    def matches(self, path: str) -> bool:
        return path == self.file or Path(path).name == self.file

    def __str__(self) -> str:
        return f"{self.file}:{self.section}.{self.key}={self.value}"


def set_option(text: str, section: str, key: str, value: str) -> str:
    """``text`` (an ini file) with ``key = value`` in ``[section]``: replaced if set, else added."""
    lines = text.splitlines()
    current, start, end = None, None, None
    for i, line in enumerate(lines):
        m = re.match(r"\s*\[([^\]]+)\]", line)
        if m:
            if current == section:
                end = i
                break
            current = m.group(1)
            if current == section:
                start = i
    if start is None:
        return text.rstrip("\n") + f"\n\n[{section}]\n{key} = {value}\n"
    end = len(lines) if end is None else end
    for i in range(start + 1, end):
        if re.match(rf"\s*{re.escape(key)}\s*=", lines[i]):
            lines[i] = f"{key} = {value}"
            return "\n".join(lines) + "\n"
    last = max(i for i in range(start, end) if lines[i].strip() or i == start)
    lines.insert(last + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RenderedFile:
    path: str
    content: str
    owner: str
    group: str
    mode: str


@dataclass(frozen=True)
class Unit:
    project: str
    name: str
    url: str | None  # asked until it answers: the API is up


@dataclass(frozen=True)
class VerifyPlan:
    projects: tuple[str, ...]  # closed over requirements, in start order
    packages: tuple[str, ...]  # venv-<project>, what apt installs besides BASE_PACKAGES
    units: tuple[Unit, ...]
    files: tuple[RenderedFile, ...]
    sql: str
    rabbit_users: tuple[str, ...]
    setup: tuple[tuple[str, Command], ...]  # (project, command), in order
    catalog: tuple[tuple[str, CatalogEntry, str], ...]  # (service user, entry, endpoint url)
    service_users: tuple[str, ...]
    passwords: Mapping[str, str]
    overrides: tuple[Override, ...] = ()
    host_packages: tuple[str, ...] = ()  # from Debian, for a backend (nfs-common for cinder's NFS driver)

    @property
    def has(self) -> frozenset[str]:
        return frozenset(self.projects)


def close_projects(requested: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The projects to install: the requested ones, what they need, keystone and the client; ordered."""
    unknown = [p for p in requested if p not in PROFILES]
    if unknown:
        raise InputError(f"verify cannot run {', '.join(unknown)} yet",
                         hint=f"it knows {', '.join(sorted(PROFILES))} (stackyard/verify/plan.py PROFILES)")
    wanted = set(requested or DEFAULT_PROJECTS) | {"keystone", CLIENT}
    todo = list(wanted)
    while todo:
        for need in PROFILES[todo.pop()].requires:
            if need not in wanted:
                wanted.add(need)
                todo.append(need)
    order = list(PROFILES)  # PROFILES is written in dependency order
    return tuple(sorted(wanted, key=order.index))


def make_passwords(names: list[str]) -> dict[str, str]:
    return {n: secrets.token_hex(12) for n in names}


def make_plan(recipes: Mapping[str, Recipe], requested: list[str] | tuple[str, ...], *, hostname: str,
              passwords: Mapping[str, str] | None = None, overrides: tuple[Override, ...] = ()) -> VerifyPlan:
    projects = close_projects(requested)
    missing = [p for p in projects if p not in recipes]
    if missing:
        raise InputError(f"no recipe for {', '.join(missing)}", hint="verify installs the venv-<project> of each recipe")
    profiles = [PROFILES[p] for p in projects]
    units: list[Unit] = []
    api: dict[str, str] = {}
    for profile in profiles:
        recipe = recipes[profile.name]
        ports = {a.name: a.port for a in recipe.apis}
        declared = set(ports) | {s.name for s in recipe.services}
        undeclared = [u for u in profile.units if u not in declared]
        if undeclared:
            raise InputError(f"{recipe.file}: venv-{profile.name} has no unit {', '.join(undeclared)}",
                             hint="verify starts each service through the unit the package ships (apis:/services:)")
        for unit in profile.units:
            path = profile.api_paths.get(unit)
            if path is None:
                units.append(Unit(profile.name, unit, None))
                continue
            root = f"http://{HOST}:{ports[unit]}"
            api.setdefault(profile.name, root)  # the catalog's endpoints are on it
            units.append(Unit(profile.name, unit, root + path))
    databases = [(d, p.name) for p in profiles for d in p.databases]  # (database, user)
    service_users = [p.name for p in profiles if p.catalog]
    rabbit_users = tuple(p.name for p in profiles if p.rabbit)
    names = ["admin", "demo", *service_users, *sorted({f"db-{user}" for _, user in databases}),
             *(f"rabbit-{u}" for u in rabbit_users)]
    passwords = dict(passwords) if passwords is not None else make_passwords(names)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)

    def db_url(user: str, name: str | None = None) -> str:
        return f"mysql+pymysql://{user}:{passwords['db-' + user]}@{HOST}/{name or user}?charset=utf8"

    def rabbit_url(user: str) -> str:
        return f"rabbit://{user}:{passwords['rabbit-' + user]}@{HOST}:5672/"

    context = dict(projects=set(projects), passwords=passwords, keystone_url=KEYSTONE_URL, memcached=MEMCACHED,
                   cache_backend=CACHE_BACKEND, region=REGION, hostname=hostname, db_url=db_url, rabbit_url=rabbit_url,
                   databases=databases, nfs_share=NFS_SHARE)
    files = []
    for profile in profiles:
        for path in profile.files:
            text = env.get_template(Path(path).name + ".j2").render(context)
            text = re.sub(r"\n{3,}", "\n\n", text).lstrip("\n")
            for o in overrides:
                if o.matches(path):
                    text = set_option(text, o.section, o.key, o.value)
            files.append(RenderedFile(path, text, "root", profile.name, "0640"))
    files.append(RenderedFile("/root/.config/openstack/clouds.yaml", env.get_template("clouds.yaml.j2").render(context),
                              "root", "root", "0600"))
    unmatched = [str(o) for o in overrides if not any(o.matches(f.path) for f in files)]
    if unmatched:
        raise InputError(f"--set {', '.join(unmatched)}: no such file",
                         hint="one of " + ", ".join(Path(f.path).name for f in files))
    return VerifyPlan(
        projects=projects,
        packages=tuple(recipes[p].package for p in projects),
        units=tuple(units),
        files=tuple(files),
        sql=env.get_template("databases.sql.j2").render(context),
        rabbit_users=rabbit_users,
        setup=tuple((p.name, c) for p in profiles for c in p.setup),
        catalog=tuple((p.name, e, api[p.name] + e.path) for p in profiles for e in p.catalog),
        service_users=tuple(service_users),
        passwords=passwords,
        overrides=overrides,
        host_packages=tuple(dict.fromkeys(h for p in profiles for h in p.host_packages)),
    )
