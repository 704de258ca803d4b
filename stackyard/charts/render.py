"""What the openstack-helm charts would put in their pods, as plain data (pure functions, no I/O but reading
the chart directory).

For each chart: its ``bin/`` scripts rendered with the values' defaults (``gotemplate``), and the files its
``configmap-etc.yaml`` mounts: ``conf.<project>`` and the ``conf.*_uwsgi`` sections through helm-toolkit's
``to_oslo_conf`` (re-implemented here: ``oslo_conf``), ``conf.logging``, ``conf.paste``, ``conf.policy``,
rootwrap and the ``*_sudoers``. What the configmap computes with helm-toolkit's endpoint lookups (database
connections, ``transport_url``, keystone_authtoken's ``auth_url``/credentials, memcached servers, the uwsgi
``http-socket``, the keystone vhost's port) is not under ../shared: ``_endpoints`` sets the same keys to this
run's hosts, one hand-written equivalent per chart.

The charts' helm-toolkit jobs (``db_init``, ``ks_user``, ``ks_service``, ``ks_endpoints``, ``rabbit_init``) are
not under ../shared either: ``DB_INIT``/``KS_JOBS`` are equivalent scripts (a SQLAlchemy database/user creation
in the openstack-client image as helm-toolkit's db-init.py does, and ``openstack`` client calls), and
keystone's ``fernet_setup``/``credential_setup`` jobs (a Python script that stores keys in Kubernetes
secrets) are ``keystone-manage fernet_setup``/``credential_setup`` writing to a shared volume.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from stackyard.charts.gotemplate import TemplateUnsupported
from stackyard.charts.gotemplate import render as render_template
from stackyard.errors import InputError

REGION = "RegionOne"
# this run's hosts on the run's own network (names every container resolves through its /etc/hosts)
DB, RABBIT, MEMCACHED = "mariadb", "rabbitmq", "memcached"
# chart -> (API host, port, service type, service name, URL path)
APIS: dict[str, tuple[str, int, str, str, str]] = {
    "keystone": ("keystone-api", 5000, "identity", "keystone", "/v3"),
    "glance": ("glance-api", 9292, "image", "glance", ""),
    "placement": ("placement-api", 8778, "placement", "placement", ""),
    "nova": ("nova-api", 8774, "compute", "nova", "/v2.1"),
    "neutron": ("neutron-server", 9696, "network", "neutron", ""),
    "cinder": ("cinder-api", 8776, "volumev3", "cinderv3", "/v3/%(tenant_id)s"),
}
# the order they come up in; nova needs neutron (its API asks neutron for every server's security groups)
CHARTS = ("keystone", "glance", "placement", "neutron", "nova", "cinder")
SUPPORTED = CHARTS
# the databases each chart's db_init makes
DATABASES: dict[str, tuple[str, ...]] = {
    "keystone": ("keystone",), "glance": ("glance",), "placement": ("placement",),
    "nova": ("nova", "nova_api", "nova_cell0"), "neutron": ("neutron",), "cinder": ("cinder",),
}


@dataclass(frozen=True)
class File:
    path: str  # in the container
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class Step:
    """One thing a chart runs: a job (to completion) or a service (kept running)."""

    chart: str
    name: str  # the chart's name for it: db-sync, keystone-api, ks-user...
    image: str  # our image: a project's or "openstack-client"
    script: str  # the chart file it runs (bin/_db-sync.sh.tpl), or what stands in for a helm-toolkit one
    command: tuple[str, ...]
    kind: str = "job"  # "job" or "service"
    user: str = "root"
    env: Mapping[str, str] = field(default_factory=dict)  # secrets go here or in files, never in command
    files: tuple[File, ...] = ()
    port: int = 0  # an API's port (services only)
    path: str = "/"  # what answers on it


@dataclass(frozen=True)
class Endpoints:
    """This run's addresses and passwords (secrets: they reach containers in files and the environment)."""

    passwords: Mapping[str, str]  # "db-root", "rabbit-<chart>", "db-<chart>", "ks-<user>", "admin", "memcache"

    def url(self, chart: str) -> str:
        host, port, *_ = APIS[chart]
        return f"http://{host}:{port}"

    def db(self, chart: str, database: str | None = None) -> str:
        return f"mysql+pymysql://{chart}:{self.passwords['db-' + chart]}@{DB}:3306/{database or chart}"

    def transport(self, chart: str) -> str:
        return f"rabbit://{chart}:{self.passwords['rabbit-' + chart]}@{RABBIT}:5672/{chart}"


def chart_dir(charts: Path, chart: str) -> Path:
    path = charts / chart
    if not (path / "values.yaml").exists():
        raise InputError(f"{path}/values.yaml: no such chart", hint="the charts are vendored under images/charts/openstack-helm (or give --charts DIR)")
    return path


def load_values(charts: Path, chart: str) -> dict[str, Any]:
    return yaml.safe_load((chart_dir(charts, chart) / "values.yaml").read_text())


def render_script(charts: Path, chart: str, name: str, values: Mapping[str, Any]) -> str:
    """``bin/_<name>.tpl`` of the chart with ``values``; an InputError names the chart and script."""
    path = chart_dir(charts, chart) / "bin" / f"_{name}.tpl"
    if not path.exists():
        raise InputError(f"{chart}: the chart has no bin/_{name}.tpl", hint=f"see {path.parent}")
    try:
        text = render_template(path.read_text(), dict(values))
    except TemplateUnsupported as exc:
        raise InputError(f"{chart}: bin/_{name}.tpl: {exc}") from None
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def oslo_conf(sections: Mapping[str, Any]) -> str:
    """helm-toolkit's ``utils.to_oslo_conf``: sections in key order, lists joined with commas, ``{type: multistring,
    values: [...]}`` as repeated keys and ``{type: csv, values: [...]}`` joined; booleans in lower case."""
    lines: list[str] = []
    for section in sorted(sections):
        values = sections[section]
        if not isinstance(values, Mapping):
            continue
        lines.append(f"[{section}]")
        for key in sorted(values):
            value = values[key]
            if isinstance(value, list):
                lines.append(f"{key} = {','.join(_scalar(v) for v in value)}")
            elif isinstance(value, Mapping):
                if value.get("type") == "multistring":
                    lines.extend(f"{key} = {_scalar(v)}" for v in value.get("values", []))
                elif value.get("type") == "csv":
                    lines.append(f"{key} = {','.join(_scalar(v) for v in value.get('values', []))}")
            else:
                lines.append(f"{key} = {_scalar(value)}")
    return "\n".join(lines) + "\n"


def ini(sections: Mapping[str, Any]) -> str:
    """helm-toolkit's ``utils.to_ini`` (paste files): like oslo_conf, in key order."""
    return oslo_conf(sections)


def _set(conf: dict[str, Any], section: str, **keys: Any) -> None:
    """Set keys the configmap fills when empty (``if empty ... set``)."""
    target = conf.setdefault(section, {})
    for key, value in keys.items():
        if target.get(key) in (None, ""):
            target[key] = value


def _authtoken(conf: dict[str, Any], section: str, user: str, ep: Endpoints, *, memcache: bool = True) -> None:
    keys = dict(auth_url=ep.url("keystone"), auth_type="password", username=user, password=ep.passwords["ks-" + user],
                project_name="service", project_domain_name="default", user_domain_name="default",
                region_name=REGION)
    if memcache:
        keys.update(auth_uri=ep.url("keystone"), memcached_servers=f"{MEMCACHED}:11211",
                    memcache_secret_key=ep.passwords["memcache"])
    _set(conf, section, **keys)


def _endpoints(chart: str, values: dict[str, Any], ep: Endpoints) -> None:
    """What the chart's configmap-etc.yaml sets through helm-toolkit's endpoint lookups, for this run's hosts."""
    conf = values["conf"]
    own = conf[chart]
    _set(own, "database", connection=ep.db(chart)) if chart != "placement" else None
    if chart == "keystone":
        _set(own, "DEFAULT", transport_url=ep.transport(chart))
        _set(own, "cache", memcache_servers=f"{MEMCACHED}:11211")
    elif chart == "glance":
        _set(own, "DEFAULT", transport_url=ep.transport(chart), bind_port=APIS["glance"][1],
             public_endpoint=ep.url("glance"), enabled_backends="file:file")
        _set(own, "glance_store", default_backend="file")
        _authtoken(own, "keystone_authtoken", "glance", ep)
        _set(conf["glance_api_uwsgi"], "uwsgi", **{"http-socket": f"0.0.0.0:{APIS['glance'][1]}", "processes": 1})
    elif chart == "placement":
        _set(own, "placement_database", connection=ep.db(chart))
        _authtoken(own, "keystone_authtoken", "placement", ep)
        _set(conf["placement_api_uwsgi"], "uwsgi", **{"http-socket": f"0.0.0.0:{APIS['placement'][1]}"})
    elif chart == "nova":
        _set(own, "DEFAULT", transport_url=ep.transport(chart), osapi_compute_listen_port=APIS["nova"][1],
             metadata_host="nova-metadata", metadata_listen_port=8775)
        _set(own, "api_database", connection=ep.db(chart, "nova_api"))
        _set(own, "cache", memcache_servers=f"{MEMCACHED}:11211")
        _set(own, "glance", api_servers=ep.url("glance"))
        _authtoken(own, "keystone_authtoken", "nova", ep)
        for section, user in (("placement", "placement"), ("service_user", "nova"), ("neutron", "neutron"),
                              ("cinder", "cinder")):
            if section == "cinder":
                _set(own, section, auth_url=ep.url("keystone"))
                continue
            _authtoken(own, section, user, ep, memcache=False)
        for proxy in ("vnc", "spice", "serial_console"):
            _set(own, proxy, enabled=False)
        _set(conf["nova_api_uwsgi"], "uwsgi", **{"http-socket": f"0.0.0.0:{APIS['nova'][1]}", "processes": 1})
        _set(conf["nova_metadata_uwsgi"], "uwsgi", **{"http-socket": "0.0.0.0:8775", "processes": 1})
    elif chart == "neutron":
        # network.backend openvswitch (the default): the configmap's interface and mechanism drivers for it
        _set(own, "DEFAULT", transport_url=ep.transport(chart), bind_port=APIS["neutron"][1],
             interface_driver="openvswitch")
        _set(own, "cache", memcache_servers=f"{MEMCACHED}:11211")
        _authtoken(own, "keystone_authtoken", "neutron", ep)
        _authtoken(own, "nova", "nova", ep, memcache=False)
        _authtoken(own, "placement", "placement", ep, memcache=False)
        _set(conf["plugins"]["ml2_conf"], "ml2", mechanism_drivers="openvswitch,l2population")
        _set(conf["neutron_api_uwsgi"], "uwsgi", **{"http-socket": f"0.0.0.0:{APIS['neutron'][1]}", "processes": 1})
    elif chart == "cinder":
        _set(own, "DEFAULT", transport_url=ep.transport(chart), glance_api_servers=ep.url("glance"),
             osapi_volume_listen_port=APIS["cinder"][1])
        _authtoken(own, "keystone_authtoken", "cinder", ep)
        _set(own, "nova", auth_url=ep.url("keystone"))
        # send_service_user_token: the configmap sets auth_url, the operator's endpoints the service user
        _authtoken(own, "service_user", "cinder", ep, memcache=False)
        _set(conf["cinder_api_uwsgi"], "uwsgi", **{"http-socket": f"0.0.0.0:{APIS['cinder'][1]}",
                                                   "processes": own["DEFAULT"]["osapi_volume_workers"]})


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out.get(key) or {}, value) if isinstance(value, Mapping) else value
    return out


# what this run overrides in the values, as an operator's values file would (nothing else differs from the chart)
OVERRIDES: dict[str, dict[str, Any]] = {
    # no agents here, so no availability zone "nova" (the chart's default_availability_zones) to put a network in
    "neutron": {"conf": {"neutron": {"DEFAULT": {"default_availability_zones": ""}}}},
    # no hypervisor here: nova's fake driver; no console proxies
    "nova": {"conf": {"nova": {"DEFAULT": {"compute_driver": "fake.FakeDriver", "host": "nova-compute"},
                               "scheduler": {"discover_hosts_in_cells_interval": -1}}},
             "console": {"address_search_enabled": False},
             "bootstrap": {"structured": {"flavors": {"options": {"m1_tiny": {
                 "name": "m1.tiny", "ram": 512, "disk": 1, "vcpus": 1}}}}}},
}


def chart_values(charts: Path, chart: str, ep: Endpoints) -> dict[str, Any]:
    """The chart's values.yaml with this run's overrides and the configmap's endpoint keys filled in."""
    values = _merge(load_values(charts, chart), OVERRIDES.get(chart, {}))
    if chart == "nova":  # the run's flavor instead of the chart's five (bootstrap.structured.flavors.options)
        values["bootstrap"]["structured"]["flavors"]["options"] = OVERRIDES["nova"]["bootstrap"]["structured"][
            "flavors"]["options"]
    _endpoints(chart, values, ep)
    return values


def etc_files(chart: str, values: Mapping[str, Any]) -> tuple[File, ...]:
    """The files configmap-etc.yaml mounts under /etc/<chart>."""
    conf = values["conf"]
    etc = f"/etc/{chart}"
    files = [File(f"{etc}/logging.conf", oslo_conf(conf["logging"])),
             File(f"{etc}/policy.yaml", yaml.safe_dump(conf.get("policy") or {}))]
    main = {"glance": "glance-api.conf"}.get(chart, f"{chart}.conf")
    files.append(File(f"{etc}/{main}", oslo_conf(conf[chart]), 0o640))
    for key, value in conf.items():
        if key.endswith("_uwsgi"):
            files.append(File(f"{etc}/{key.removesuffix('_uwsgi').replace('_', '-')}-uwsgi.ini", oslo_conf(value)))
    if "paste" in conf:
        name = {"glance": "glance-api-paste.ini", "nova": "api-paste.ini"}.get(chart, "api-paste.ini")
        files.append(File(f"{etc}/{name}", ini(conf["paste"])))
    if "api_audit_map" in conf:
        files.append(File(f"{etc}/api_audit_map.conf", oslo_conf(conf["api_audit_map"])))
    if isinstance(conf.get("rootwrap"), str):
        files.append(File(f"{etc}/rootwrap.conf", conf["rootwrap"]))
        for key, filt in (conf.get("rootwrap_filters") or {}).items():
            files.append(File(f"{etc}/rootwrap.d/{key.replace('_', '-')}.filters", filt["content"]))
    if isinstance(conf.get(f"{chart}_sudoers"), str):
        files.append(File(f"/etc/sudoers.d/kolla_{chart}_sudoers", conf[f"{chart}_sudoers"], 0o440))
    # the chart mounts <project>.conf.d (snippets) where its scripts name it in --config-dir
    files.append(File(f"{etc}/{chart}.conf.d/chart-verify.conf", ""))
    if chart == "neutron":
        files.append(File(f"{etc}/plugins/ml2/ml2_conf.ini", oslo_conf(conf["plugins"]["ml2_conf"])))
    if chart == "cinder":  # the cinder-etc secret's backends.conf (mounted in conf/) and resource_filters.json
        files.append(File(f"{etc}/conf/backends.conf", ini(conf.get("backends") or {})))
        files.append(File(f"{etc}/resource_filters.json", json.dumps(conf.get("resource_filters") or {})))
    if chart == "keystone":
        files.append(File("/etc/apache2/ports.conf", ""))  # the chart's configmap: ports.conf ''
        files.append(File(f"{etc}/access_rules.json", "{}"))
        files.append(File("/var/www/cgi-bin/keystone/wsgi.py", conf["wsgi_script"]))
        files.append(File("/etc/apache2/sites-enabled/wsgi-keystone.conf", keystone_vhost(conf["wsgi_keystone"])))
    return tuple(files)


def keystone_vhost(template: str) -> str:
    """conf.wsgi_keystone with the identity port (helm-toolkit's endpoint_port_lookup of the default endpoints)."""
    text = re.sub(r"^\{\{-? \$portInt := .*\}\}\n", "", template)
    text = text.replace("{{ $portInt }}", str(APIS["keystone"][1]))
    if "{{" in text:
        raise InputError("keystone: conf.wsgi_keystone has a template action this run does not know: "
                         + text[text.index("{{"):][:80])
    return text


def db_init_script(chart: str) -> str:
    """helm-toolkit's db-init.py, the same SQLAlchemy statements: each database and its user (passwords from the
    environment: ROOT_DB_CONNECTION, DB_PASSWORD)."""
    dbs = ", ".join(repr(d) for d in DATABASES[chart])
    return f"""#!/usr/bin/env python3
# stands in for helm-toolkit's db-init.py (not under ../shared): same statements
import os
import sqlalchemy
engine = sqlalchemy.create_engine(os.environ["ROOT_DB_CONNECTION"])
user, password = {chart!r}, os.environ["DB_PASSWORD"]
with engine.connect() as conn:
    for db in ({dbs},):
        conn.execute(sqlalchemy.text(f"CREATE DATABASE IF NOT EXISTS {{db}}"))
        conn.execute(sqlalchemy.text(f"CREATE USER IF NOT EXISTS '{{user}}'@'%' IDENTIFIED BY '{{password}}'"))
        conn.execute(sqlalchemy.text(f"GRANT ALL ON `{{db}}`.* TO '{{user}}'@'%'"))
    conn.commit()
print("databases", {dbs}, "and user", user)
"""


def ks_script(chart: str, users: tuple[str, ...], ep: Endpoints) -> str:
    """helm-toolkit's ks-user.sh, ks-service.sh and ks-endpoints.sh as ``openstack`` calls (passwords from the
    environment, SERVICE_PASSWORD_<USER>)."""
    lines = ["#!/bin/bash", "# stands in for helm-toolkit's ks-user/ks-service/ks-endpoints (not under ../shared)",
             "set -e", "export HOME=/tmp",
             "openstack project create --or-show --domain default service -f value -c id",
             "openstack role create --or-show service -f value -c id"]
    for user in users:
        var = f"SERVICE_PASSWORD_{user.upper()}"
        lines += [f"openstack user show --domain default {user} >/dev/null 2>&1 || "
                  f"openstack user create --domain default --project service --password \"${var}\" {user}",
                  f"openstack user set --password \"${var}\" {user}",
                  f"openstack role add --project service --user {user} admin",
                  f"openstack role add --project service --user {user} service"]
    if chart != "keystone":
        host, port, stype, name, path = APIS[chart]
        lines += [f"openstack service show {stype} >/dev/null 2>&1 || openstack service create --name {name} {stype}"]
        for interface in ("admin", "internal", "public"):
            lines.append(f"openstack endpoint list --service {stype} --interface {interface} -f value -c ID | grep -q . || "
                         f"openstack endpoint create --region {REGION} {stype} {interface} 'http://{host}:{port}{path}'")
    lines.append(f"echo 'identity for {chart}: users {' '.join(users) or '-'}'")
    return "\n".join(lines) + "\n"


def client_env(ep: Endpoints) -> dict[str, str]:
    """The admin credentials the charts' jobs get from their keystone-admin secret (environment, not argv)."""
    return {"OS_AUTH_URL": f"{ep.url('keystone')}/v3", "OS_USERNAME": "admin", "OS_PASSWORD": ep.passwords["admin"],
            "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "default", "OS_PROJECT_DOMAIN_NAME": "default",
            "OS_REGION_NAME": REGION, "OS_INTERFACE": "internal", "OS_IDENTITY_API_VERSION": "3",
            "OS_DEFAULT_DOMAIN": "default"}


KS_USERS: dict[str, tuple[str, ...]] = {"keystone": (), "glance": ("glance",), "placement": ("placement",),
                                        "nova": ("nova",), "neutron": ("neutron",), "cinder": ("cinder",)}


def chart_steps(charts: Path, chart: str, ep: Endpoints) -> list[Step]:
    """The jobs and services of ``chart``, in the order the chart's dependencies run them."""
    if chart not in SUPPORTED:
        raise InputError(f"chart-verify knows {', '.join(SUPPORTED)}, not {chart}")
    values = chart_values(charts, chart, ep)
    etc = etc_files(chart, values)
    user = chart

    def script(name: str, image: str = chart) -> File:
        # the openstack-client container runs every chart's jobs: its scripts are named after their chart
        where = f"/tmp/{chart}-{name}" if image == "openstack-client" else f"/tmp/{name}"
        return File(where, render_script(charts, chart, name, values), 0o755)

    def run(name: str, step: str, *, image: str = chart, who: str = user, env: Mapping[str, str] | None = None,
            kind: str = "job", port: int = 0, path: str = "/", args: tuple[str, ...] = ()) -> Step:
        f = script(name, image)
        who = "root" if image == "openstack-client" else who  # the client image has no service users
        mounts = (f,) if image == "openstack-client" else (*etc, f)  # the client jobs get no service configuration
        return Step(chart, step, image, f"bin/_{name}.tpl", ("bash", f.path, *args), kind, who, dict(env or {}),
                    mounts, port, path)

    root_db = f"mysql+pymysql://root:{ep.passwords['db-root']}@{DB}:3306/"
    steps = [Step(chart, "db-init", "openstack-client", "helm-toolkit db-init.py (equivalent)",
                  ("python3", f"/tmp/{chart}-db-init.py"), env={"ROOT_DB_CONNECTION": root_db,
                                                                "DB_PASSWORD": ep.passwords["db-" + chart]},
                  files=(File(f"/tmp/{chart}-db-init.py", db_init_script(chart), 0o755),))]
    host, port, *_ = APIS[chart]
    if chart == "keystone":
        boot = {"OS_BOOTSTRAP_USERNAME": "admin", "OS_BOOTSTRAP_PASSWORD": ep.passwords["admin"],
                "OS_BOOTSTRAP_PROJECT_NAME": "admin", "OS_BOOTSTRAP_ROLE_NAME": "admin",
                "OS_BOOTSTRAP_SERVICE_NAME": "keystone", "OS_BOOTSTRAP_REGION_ID": REGION,
                **{f"OS_BOOTSTRAP_{i.upper()}_URL": f"{ep.url('keystone')}/v3" for i in ("admin", "internal", "public")}}
        # dependencies.static.db_sync: db-init, credential-setup and fernet-setup first (bootstrap needs the keys)
        steps.append(Step(chart, "key-repositories", chart, "the keystone-fernet-keys/credential-keys secrets' mounts",
                          ("install", "-d", "-o", "keystone", "-g", "keystone", "-m", "0700",
                           "/etc/keystone/fernet-keys", "/etc/keystone/credential-keys")))
        for what in ("credential", "fernet"):
            steps.append(Step(chart, f"{what}-setup", chart, f"keystone-manage {what}_setup (for bin/_fernet-manage.py.tpl)",
                              ("keystone-manage", f"{what}_setup", "--keystone-user", "keystone",
                               "--keystone-group", "keystone"), files=etc))
        steps.append(run("db-sync.sh", "db-sync", env=boot))
        steps.append(run("keystone-api.sh", "keystone-api", who="root", kind="service", port=port, path="/",
                         args=("start",)))
        steps.append(run("bootstrap.sh", "bootstrap", image="openstack-client", who="root", env=client_env(ep)))
        return steps
    if chart == "nova":
        cell0 = ep.db("nova", "nova_cell0")
        steps.append(run("db-sync.sh", "db-sync", env={"DB_CONNECTION_CELL0": cell0}))
    else:
        steps.append(run("db-sync.sh", "db-sync"))
    steps.append(Step(chart, "ks-user/ks-service/ks-endpoints", "openstack-client",
                      "helm-toolkit ks-user.sh, ks-service.sh, ks-endpoints.sh (equivalent)", ("bash", f"/tmp/{chart}-ks.sh"),
                      env={**client_env(ep), **{f"SERVICE_PASSWORD_{u.upper()}": ep.passwords["ks-" + u]
                                                for u in KS_USERS[chart]}},
                      files=(File(f"/tmp/{chart}-ks.sh", ks_script(chart, KS_USERS[chart], ep), 0o755),)))
    uwsgi = ("uwsgi", "--ini", f"/etc/{chart}/{chart}-api-uwsgi.ini")
    if chart == "glance":
        steps.append(run("metadefs-load.sh", "metadefs-load"))
        steps.append(Step(chart, "glance-api", chart, "glance-api deployment: uwsgi --ini (conf.glance_api_uwsgi)",
                          uwsgi, "service", user, {}, etc, port, "/"))
    elif chart == "placement":
        steps.append(Step(chart, "placement-api", chart, "placement deployment: uwsgi --ini (conf.placement_api_uwsgi)",
                          uwsgi, "service", user, {}, etc, port, "/"))
    elif chart == "neutron":
        steps.append(run("neutron-server.sh", "neutron-server", kind="service", port=port, path="/", args=("start",)))
    elif chart == "nova":
        steps.append(Step(chart, "nova-api", chart, "nova-api-osapi deployment: uwsgi --ini (conf.nova_api_uwsgi)",
                          uwsgi, "service", user, {}, etc, port, "/"))
        for daemon in ("nova-conductor", "nova-scheduler"):
            steps.append(Step(chart, daemon, chart, f"{daemon} deployment: {daemon} --config-file /etc/nova/nova.conf",
                              (daemon, "--config-file", "/etc/nova/nova.conf"), "service", user, {}, etc))
        init = script("nova-compute-init.sh")
        main = script("nova-compute.sh")
        # the init container, then the compute container, both as root (pod.security_context of nova_compute)
        compute = ("bash", "-c", f"mkdir -p /tmp/pod-shared /etc/nova/nova.conf.d && NOVA_USER_UID=$(id -u nova) "
                                 f"bash {init.path} && exec bash {main.path}")
        steps.append(Step(chart, "nova-compute", chart, "bin/_nova-compute-init.sh.tpl, bin/_nova-compute.sh.tpl",
                          compute, "service", "root", {}, (*etc, init, main)))
        steps.append(run("cell-setup-init.sh", "cell-setup-init", image="openstack-client", env=client_env(ep)))
        steps.append(run("cell-setup.sh", "cell-setup"))
        steps.append(run("bootstrap.sh", "bootstrap", image="openstack-client", who="root", env=client_env(ep)))
    elif chart == "cinder":
        internal = {"PROJECT_DOMAIN_ID": "default", "USER_DOMAIN_ID": "default",
                    "INTERNAL_PROJECT_NAME": values["conf"]["cinder"]["DEFAULT"]["internal_project_name"],
                    "INTERNAL_USER_NAME": values["conf"]["cinder"]["DEFAULT"]["internal_user_name"]}
        steps.append(run("create-internal-tenant-id.sh", "create-internal-tenant", image="openstack-client",
                         env={**client_env(ep), **internal}))
        steps.append(Step(chart, "cinder-api", chart, "cinder-api deployment: uwsgi --ini (conf.cinder_api_uwsgi)",
                          uwsgi, "service", user, {}, etc, port, "/"))
        steps.append(Step(chart, "cinder-scheduler", chart,
                          "cinder-scheduler deployment: cinder-scheduler --config-file /etc/cinder/cinder.conf",
                          ("cinder-scheduler", "--config-file", "/etc/cinder/cinder.conf",
                           "--config-dir", "/etc/cinder/cinder.conf.d"), "service", user, {}, etc))
        steps.append(run("bootstrap.sh", "bootstrap", image="openstack-client", who="root", env=client_env(ep)))
    return steps


# -- the servers the charts expect (MariaDB, RabbitMQ, memcached) ------------------------------------------------

INFRA_PACKAGES = ("mariadb-server", "rabbitmq-server", "memcached")


def rabbit_password_hash(password: str, salt: bytes) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password)), salt of 4 bytes."""
    import base64
    import hashlib

    if len(salt) != 4:
        raise ValueError("RabbitMQ's salt is 4 bytes")
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def rabbit_definitions(charts: tuple[str, ...], ep: Endpoints, salts: Mapping[str, bytes]) -> str:
    """The users and vhosts the charts' rabbit_init jobs make (a user and a vhost per chart, full permissions),
    as a definitions file RabbitMQ loads at boot (no password on any command line)."""
    import json

    users = [{"name": c, "password_hash": rabbit_password_hash(ep.passwords["rabbit-" + c], salts[c]),
              "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""} for c in charts]
    return json.dumps({"users": users, "vhosts": [{"name": c} for c in charts],
                       "permissions": [{"user": c, "vhost": c, "configure": ".*", "write": ".*", "read": ".*"}
                                       for c in charts]}, indent=1, sort_keys=True) + "\n"


RABBIT_CONF = "load_definitions = /etc/rabbitmq/definitions.json\nlisteners.tcp.default = 5672\n"


def mariadb_init(ep: Endpoints) -> str:
    """What MariaDB runs at start (--init-file): root over the network, with this run's password."""
    pw = ep.passwords["db-root"].replace("\\", "\\\\").replace("'", "\\'")
    return (f"CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '{pw}';\n"
            "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;\nFLUSH PRIVILEGES;\n")


def hosts(charts: tuple[str, ...], subnet_prefix: str) -> dict[str, str]:
    """Every container's name and address on the run's network (``subnet_prefix`` like "10.213.7")."""
    names = [DB, RABBIT, MEMCACHED, "openstack-client"]
    for chart in charts:
        names.append(APIS[chart][0])
    if "nova" in charts:
        names += ["nova-conductor", "nova-scheduler", "nova-compute", "nova-metadata"]
    if "cinder" in charts:
        names += ["cinder-scheduler", "cinder-volume"]
    return {name: f"{subnet_prefix}.{10 + i}" for i, name in enumerate(names)}


def job_pod(step: Step) -> str:
    """The container a job runs in: one per chart and image (its jobs in turn, each as its own process with its
    own user and environment), the openstack-client one shared by every chart."""
    return "openstack-client" if step.image == "openstack-client" else f"{step.chart}-jobs"


def pod_files(steps: list[Step]) -> dict[str, tuple[File, ...]]:
    """What each job container mounts: the files of its jobs (the same path with other content is an error)."""
    pods: dict[str, dict[str, File]] = {}
    for step in steps:
        if step.kind != "job":
            continue
        files = pods.setdefault(job_pod(step), {})
        for f in step.files:
            if f.path in files and files[f.path] != f:
                raise InputError(f"{step.chart}: {step.name}: {f.path} differs from another job's in {job_pod(step)}")
            files[f.path] = f
    return {pod: tuple(files.values()) for pod, files in pods.items()}
