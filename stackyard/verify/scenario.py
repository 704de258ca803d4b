"""What a verify does once the packages are installed: configure, start, ask.

``configure``: MariaDB databases and users, RabbitMQ users, the rendered
configuration files, then each project's database commands as its service
user (projects in parallel: their databases are their own). ``start``: every
service through the unit its package ships, each API until it answers; the
identity an operator makes (service project, service users, catalog) with
the admin of ``keystone-manage bootstrap``. ``run``: the scenario with the
``openstack`` client, admin for what only an admin may do and a tenant user
it creates for the rest.
"""

from __future__ import annotations

import shlex
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable

from stackyard.verify.plan import HOST, NFS_MOUNT, REGION, Unit

if TYPE_CHECKING:
    from stackyard.verify.run import Session

API_TIMEOUT = 120  # seconds for an API to answer after its unit started
SERVICE_TIMEOUT = 180  # seconds for the compute services to report up
SERVER_TIMEOUT = 180  # seconds for a server to become ACTIVE
IMAGE_BYTES = 1024 * 1024
NOVA_UNITS = ("nova-api", "nova-conductor", "nova-scheduler", "nova-compute")


class Fatal(Exception):
    """Inside ``_poll``: stop asking, this will not get better."""

    def __init__(self, message: str, units: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message, self.units = message, units


def _failed(message: str, units: tuple[str, ...] = ()) -> Exception:
    from stackyard.verify.run import StepFailed

    return StepFailed(message, units)


def osc(s: "Session", cloud: str, args: str, *, units: tuple[str, ...] = (), timeout: float = 180) -> str:
    """``openstack --os-cloud CLOUD ARGS`` in the container (root's clouds.yaml); its stdout."""
    r = s.c.run(f"openstack --os-cloud {cloud} {args}", check=False, timeout=timeout)
    if r.returncode != 0:
        raise _failed(f"openstack {args} exited {r.returncode}: {(r.stderr or r.stdout).strip()[-1500:]}", units)
    return r.stdout.strip()


def _parallel(jobs: list[Callable[[], None]]) -> None:
    """Run ``jobs`` at once; the first failure (in list order) is raised once all are done."""
    if not jobs:
        return
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(job) for job in jobs]
    for f in futures:
        f.result()


def configure(s: "Session") -> None:
    """Databases, RabbitMQ users and the configuration files, as puppet's classes make them."""
    plan, c = s.plan, s.c
    with s.step("configure: MariaDB databases and users, RabbitMQ users, configuration files", units=("mariadb",)) as st:
        c.run("mysql --protocol=socket -u root", stdin=plan.sql, timeout=120, what="creating the databases")
        if plan.rabbit_users:
            c.run(" && ".join(f"rabbitmqctl add_user {user} {shlex.quote(plan.passwords['rabbit-' + user])} && "
                              f"rabbitmqctl set_permissions -p / {user} '.*' '.*' '.*'" for user in plan.rabbit_users),
                  timeout=180, what="adding the RabbitMQ users")
        for f in plan.files:
            c.write(f.path, f.content, owner=f.owner, group=f.group, mode=f.mode)
        st.detail = f"{len(plan.files)} files, {plan.sql.count('CREATE DATABASE')} databases"


def tail_of(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def wait_api(s: "Session", unit: str, url: str) -> str:
    """Until ``url`` answers (any HTTP status) or the unit fails or restarts; the status code."""
    script = (f"for i in $(seq 1 {API_TIMEOUT * 4}); do "
              f"code=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 {url}); "
              "if [ \"$code\" != 000 ]; then echo $code; exit 0; fi; "
              f"if systemctl -q is-failed {unit} || [ \"$(systemctl show -p NRestarts --value {unit})\" != 0 ]; then exit 3; fi; "
              "sleep 0.25; done; exit 2")
    r = s.c.run(script, check=False, timeout=API_TIMEOUT + 30)
    if r.returncode == 3:
        raise _failed(f"{unit}.service failed (or restarted) before {url} answered", (unit,))
    if r.returncode != 0:
        raise _failed(f"{url} did not answer within {API_TIMEOUT}s of starting {unit}.service", (unit,))
    return r.stdout.strip()


def _start_units(s: "Session", units: list[Unit]) -> None:
    """``systemctl start`` them together, then each API until it answers."""
    if not units:
        return
    names = [u.name for u in units]
    s.c.run("systemctl start " + " ".join(names), timeout=120, what="systemctl start " + " ".join(names))
    wait_units(s, units)


def wait_units(s: "Session", units: list[Unit], verb: str = "start") -> None:
    """Each unit active, each API answering (they were just started, or restarted)."""
    started = time.monotonic()

    def waiter(unit: Unit) -> Callable[[], None]:
        def run() -> None:
            with s.step(f"{verb} {unit.name}", kind="unit", service=unit.name, units=(unit.name,)) as st:
                if unit.url:
                    code = wait_api(s, unit.name, unit.url)
                    st.api = f"{code} {unit.url} after {time.monotonic() - started:.1f}s"
                st.state = s.c.unit_state(unit.name).get("ActiveState", "?")
                if st.state != "active":
                    raise _failed(f"{unit.name}.service is {st.state}", (unit.name,))
        return run

    _parallel([waiter(u) for u in units])


def _setup(s: "Session", project: str) -> None:
    """The project's database commands, in order, as its service user."""
    for p, command in s.plan.setup:
        if p != project:
            continue
        text = command.text.replace("$ADMIN_PASSWORD", shlex.quote(s.plan.passwords["admin"]))
        shown = command.text.split(" --bootstrap-password")[0]
        who = command.user or "root"
        with s.step(f"setup: {shown} (as {who})", kind="setup", service=project):
            r = s.c.run(text, user=command.user, check=False, timeout=900)
            if r.returncode != 0:
                raise _failed(f"{shown} exited {r.returncode} as {who}:\n{tail_of(r.stdout + r.stderr)}")


def _identity(s: "Session") -> None:
    """What an operator makes in keystone for the services: the service project, a user per service with
    the admin and service roles there, and the catalog."""
    plan = s.plan
    ks = ("keystone-api",)
    with s.step("identity: service project, service users (admin, service roles), catalog", kind="setup",
                service="keystone", units=ks) as st:
        osc(s, "admin", "project create --domain default --description 'Service Project' service -f value -c id", units=ks)

        def service_user(user: str) -> Callable[[], None]:
            def run() -> None:
                osc(s, "admin", f"user create --domain default --password {shlex.quote(plan.passwords[user])} {user} "
                                "-f value -c id", units=ks)
                osc(s, "admin", f"role add --project service --user {user} admin", units=ks)
                osc(s, "admin", f"role add --project service --user {user} service", units=ks)
                for owner, entry, url in plan.catalog:
                    if owner == user:
                        osc(s, "admin", f"service create --name {entry.name} {entry.type} -f value -c id", units=ks)
                        for interface in ("public", "internal"):
                            osc(s, "admin", f"endpoint create --region {REGION} {entry.type} {interface} {shlex.quote(url)} "
                                            "-f value -c id", units=ks)
            return run

        _parallel([service_user(u) for u in plan.service_users])
        st.detail = f"users {', '.join(plan.service_users) or '-'}"


def start(s: "Session") -> None:
    """Each project as soon as it can: its database commands, then its APIs; keystone's identity for the
    services once keystone answers; the daemons (nova-compute talks to placement at once) after it."""
    plan = s.plan
    identity_done, abort = threading.Event(), threading.Event()

    def chain(project: str) -> Callable[[], None]:
        def run() -> None:
            try:
                _setup(s, project)
                units = [u for u in plan.units if u.project == project]
                _start_units(s, [u for u in units if u.url])
                if project == "keystone":
                    _identity(s)
                    identity_done.set()
                daemons = [u for u in units if not u.url]
                if daemons:
                    while not identity_done.wait(0.5):
                        if abort.is_set():
                            return  # the error that set it is raised
                    _start_units(s, daemons)
            except BaseException:
                abort.set()
                raise
        return run

    _parallel([chain(p) for p in plan.projects if any(q == p for q, _ in plan.setup) or
               any(u.project == p for u in plan.units)])


def _scenario(s: "Session", name: str, units: tuple[str, ...] = (), service: str = ""):  # noqa: ANN202
    return s.step(name, kind="scenario", service=service, units=units)


def run(s: "Session") -> None:
    """The scenario: the tenant, then what each service offers (in parallel where nothing links them)."""
    plan = s.plan
    has = plan.has
    ks = ("keystone-api",)
    with _scenario(s, "admin: project, user and member role for the tenant", ks, "keystone"):
        osc(s, "admin", "project create --domain default demo -f value -c id", units=ks)
        osc(s, "admin", f"user create --domain default --project demo --password {shlex.quote(plan.passwords['demo'])} "
                        "demo -f value -c id", units=ks)
        osc(s, "admin", "role add --project demo --user demo member", units=ks)
    _token(s)
    first: list[Callable[[], None]] = []
    if "glance" in has:
        first.append(lambda: _glance(s))
    if "neutron" in has:
        first.append(lambda: _neutron(s))
    if "nova" in has:
        first.append(lambda: _nova_ready(s))
    if "cinder" in has:
        first.append(lambda: _cinder(s))
    _parallel(first)
    then: list[Callable[[], None]] = []
    if "nova" in has:
        then.append(lambda: _nova_server(s))
        then.append(lambda: _privsep_step(s, "nova", "nova: a privileged call as nova through sudo, nova-rootwrap "
                                                     "and privsep-helper", PRIVSEP_NOVA))
    if "neutron" in has:
        then.append(lambda: _privsep_step(s, "neutron", "neutron: sudo neutron-rootwrap ip netns list, and privsep "
                                                        "through it, as neutron", PRIVSEP_NEUTRON,
                                          "sudo -n neutron-rootwrap /etc/neutron/rootwrap.conf ip netns list"))
    _parallel(then)
    _units_active(s)


def after_upgrade(s: "Session", upgraded: str) -> None:
    """What the tenant did before, against the upgraded services and those left as they were."""
    _token(s, f"after the upgrade to {upgraded}: ")
    if "nova" in s.plan.has:
        _nova_server(s, f"after the upgrade to {upgraded}: ")
    _units_active(s)


def _token(s: "Session", label: str = "") -> None:
    with _scenario(s, f"{label}tenant: token issue", ("keystone-api",), "keystone") as st:
        token = osc(s, "demo", "token issue -f value -c id", units=("keystone-api",))
        st.detail = f"token of {len(token)} characters"


def _units_active(s: "Session") -> None:
    """No unit failed or was restarted by systemd since it started (a restart by the operator does not count)."""
    units = s.plan.units
    with _scenario(s, "units: every service still active, none restarted", tuple(u.name for u in units)) as st:
        bad = []
        for unit in units:
            state = s.c.unit_state(unit.name)
            if state.get("ActiveState") != "active" or state.get("NRestarts", "0") != "0":
                bad.append(f"{unit.name} {state.get('ActiveState')} (restarts: {state.get('NRestarts')})")
        if bad:
            raise _failed("; ".join(bad), tuple(b.split()[0] for b in bad))
        st.detail = f"{len(units)} units active"


def _glance(s: "Session") -> None:
    c = s.c
    with _scenario(s, "tenant: image create (1 MiB, file store), download, same sha256", ("glance-api",), "glance") as st:
        c.run(f"head -c {IMAGE_BYTES} /dev/urandom > /root/verify.img", timeout=60)
        image = osc(s, "demo", "image create --disk-format raw --container-format bare --file /root/verify.img "
                               "verify-image -f value -c id", units=("glance-api",))
        osc(s, "demo", f"image save --file /root/verify.img.out {image}", units=("glance-api",))
        sums = c.run("sha256sum /root/verify.img /root/verify.img.out", timeout=60).stdout.split()
        if len(sums) < 4 or sums[0] != sums[2]:
            raise _failed(f"the downloaded image differs from the uploaded one: {' '.join(sums)}", ("glance-api",))
        st.detail = f"image {image}, sha256 {sums[0][:16]}..."


def _cinder(s: "Session") -> None:
    """The scheduler and the NFS backend's volume service up; a tenant's volume created on the share (a sparse
    file of its size, through rootwrap) and deleted."""
    units = ("cinder-api", "cinder-scheduler", "cinder-volume")
    with _scenario(s, "admin: volume service list: cinder-scheduler and cinder-volume up", units, "cinder") as st:
        def services_up() -> str | None:
            out = osc(s, "admin", "volume service list -f value -c Binary -c Host -c State", units=units)
            up = {line.split()[0] for line in out.splitlines() if line.split()[-1:] == ["up"]}
            return " ".join(sorted(up)) if {"cinder-scheduler", "cinder-volume"} <= up else None

        st.detail = "up: " + _poll(s, "cinder-scheduler and cinder-volume report up", services_up, SERVICE_TIMEOUT,
                                   units, interval=2)

    with _scenario(s, "tenant: volume create --size 1, available on the NFS share; delete", units, "cinder") as st:
        volume = osc(s, "demo", "volume create --size 1 verify-volume -f value -c id", units=units)

        def status(wanted: str) -> Callable[[], str | None]:
            def check() -> str | None:
                now = osc(s, "demo", f"volume show {volume} -f value -c status", units=units)
                if now.startswith("error"):
                    raise Fatal(f"volume {volume} went to {now}", units)
                return now if now == wanted else None
            return check

        _poll(s, f"volume {volume} available", status("available"), SERVER_TIMEOUT, units)
        found = s.c.run(f"stat -c '%s %b %U' {NFS_MOUNT}/volume-{volume}", check=False, timeout=60)
        if found.returncode != 0 or not found.stdout.startswith(f"{2**30} "):
            raise _failed(f"volume {volume} is available but {NFS_MOUNT}/volume-{volume} is not a 1 GiB file: "
                          f"{(found.stdout + found.stderr).strip()}", units)
        _delete(s, "volume", volume, "error", units)
        if s.c.run(f"test -e {NFS_MOUNT}/volume-{volume}", check=False, timeout=60).returncode == 0:
            raise _failed(f"volume {volume} was deleted but its file is still on the share", units)
        size, blocks, owner = found.stdout.split()
        st.detail = f"volume {volume}: {int(size) >> 20} MiB file, {int(blocks) * 512 >> 10} KiB used, owner {owner}; deleted"


def _privsep_step(s: "Session", user: str, name: str, script: str, rootwrap: str = "") -> None:
    with _scenario(s, name, service=user) as st:
        if rootwrap:
            s.c.run(rootwrap, user=user, timeout=60, what=f"{rootwrap} as {user}")
        st.detail = _privsep(s, user, script)


def _poll(s: "Session", what: str, check: Callable[[], str | None], timeout: float, units: tuple[str, ...],
          interval: float = 1.0) -> str:
    """``check()`` until it returns a string (done) or the time is up."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            done = check()
        except Fatal as exc:
            raise _failed(exc.message, exc.units) from None
        except Exception as exc:  # noqa: BLE001 - the last error is reported when the time is up
            done, last = None, str(exc)
        if done is not None:
            return done
        if time.monotonic() > deadline:
            raise _failed(f"{what}: not within {timeout:.0f}s" + (f" (last: {last[-1500:]})" if last else ""), units)
        time.sleep(interval)


def _neutron(s: "Session") -> None:
    units = ("neutron-api", "neutron-rpc-server")
    with _scenario(s, "tenant: network, subnet and port create (ML2, no agents)", units, "neutron") as st:
        osc(s, "demo", "network create verify-net -f value -c id", units=units)
        osc(s, "demo", "subnet create --network verify-net --subnet-range 10.11.12.0/24 verify-subnet -f value -c id",
            units=units)
        port = osc(s, "demo", "port create --network verify-net verify-port -f value -c fixed_ips", units=units)
        if "10.11.12." not in port:
            raise _failed(f"the port got no address of verify-subnet: {port}", units)
        st.detail = f"port {port}"


def _nova_ready(s: "Session") -> None:
    """The flavor, the compute services up, the compute node in placement and mapped to its cell."""
    c = s.c
    with _scenario(s, "admin: flavor create", ("nova-api",), "nova"):
        osc(s, "admin", "flavor create --vcpus 1 --ram 64 --disk 1 verify.tiny -f value -c id", units=("nova-api",))

    with _scenario(s, "admin: compute service list: conductor, scheduler and compute up", NOVA_UNITS, "nova") as st:
        def services_up() -> str | None:
            out = osc(s, "admin", "compute service list -f value -c Binary -c Host -c State", units=NOVA_UNITS)
            up = {line.split()[0] for line in out.splitlines() if line.split()[-1:] == ["up"]}
            wanted = {"nova-conductor", "nova-scheduler", "nova-compute"}
            return " ".join(sorted(up)) if wanted <= up else None

        st.detail = "up: " + _poll(s, "nova-conductor, nova-scheduler and nova-compute report up", services_up,
                                   SERVICE_TIMEOUT, NOVA_UNITS, interval=2)

    with _scenario(s, "placement: the compute node's resource provider and its inventory",
                   ("placement-api", "nova-compute"), "placement") as st:
        def provider() -> str | None:
            script = ("t=$(openstack --os-cloud admin token issue -f value -c id) && "
                      f"curl -sf -H \"X-Auth-Token: $t\" -H 'OpenStack-API-Version: placement 1.20' "
                      f"http://{HOST}:8778/resource_providers?name={c.machine}")
            r = c.run(script, check=False, timeout=120)
            if r.returncode != 0 or c.machine not in r.stdout:
                raise RuntimeError(f"GET /resource_providers?name={c.machine}: {(r.stdout + r.stderr).strip()[-500:]}")
            import json

            rp = json.loads(r.stdout)["resource_providers"][0]["uuid"]
            inv = c.run(script.replace(f"resource_providers?name={c.machine}", f"resource_providers/{rp}/inventories"),
                        check=False, timeout=120)
            if inv.returncode != 0 or "VCPU" not in inv.stdout:
                raise RuntimeError(f"no VCPU inventory on {rp} yet: {inv.stdout.strip()[-500:]}")
            return rp

        st.detail = f"provider {_poll(s, 'the compute node in placement', provider, SERVICE_TIMEOUT, ('placement-api', 'nova-compute'), 2)}"

    with _scenario(s, "nova-manage cell_v2 discover_hosts (as nova)", ("nova-compute",), "nova") as st:
        out = c.run("nova-manage cell_v2 discover_hosts --verbose", user="nova", timeout=300).stdout
        st.detail = tail_of(out, 1)



def _nova_server(s: "Session", label: str = "") -> None:
    with _scenario(s, f"{label}tenant: server create --nic none, ACTIVE (fake driver)", NOVA_UNITS, "nova") as st:
        server = osc(s, "demo", "server create --flavor verify.tiny --image verify-image --nic none verify-server "
                                "-f value -c id", units=NOVA_UNITS)

        def active() -> str | None:
            status = osc(s, "demo", f"server show {server} -f value -c status", units=NOVA_UNITS)
            if status == "ERROR":
                fault = osc(s, "admin", f"server show {server} -f value -c fault", units=NOVA_UNITS)
                raise Fatal(f"server {server} went to ERROR: {fault[-1500:]}", NOVA_UNITS)
            return status if status == "ACTIVE" else None

        _poll(s, f"server {server} ACTIVE", active, SERVER_TIMEOUT, NOVA_UNITS)
        st.detail = f"server {server} ACTIVE"

    with _scenario(s, f"{label}tenant: server delete, gone from server list", NOVA_UNITS, "nova") as st:
        _delete(s, "server", server, "ERROR", NOVA_UNITS)
        st.detail = f"server {server} gone"


def _delete(s: "Session", noun: str, ident: str, error: str, units: tuple[str, ...]) -> None:
    """The tenant deletes a server or a volume, then lists until it is gone (its error status ends the wait)."""
    osc(s, "demo", f"{noun} delete {ident}", units=units, timeout=SERVER_TIMEOUT)

    def gone() -> str | None:
        listed = osc(s, "demo", f"{noun} list -f value -c ID -c Status", units=units)
        if f"{ident} {error}" in listed:
            raise Fatal(f"{noun} {ident} went to {error} while it was deleted", units)
        return None if ident in listed else "gone"

    _poll(s, f"{noun} {ident} deleted", gone, SERVER_TIMEOUT, units)


PRIVSEP_NOVA = """
import shlex
import nova.conf, nova.privsep.path, nova.utils
from oslo_privsep import priv_context
nova.conf.CONF(['--config-file', '/etc/nova/nova.conf'], project='nova')
helper = nova.utils.get_root_helper()
priv_context.init(root_helper=shlex.split(helper))   # as nova-compute does
data, remaining = nova.privsep.path.last_bytes('/etc/shadow', 16)   # root only: 0640 root:shadow
print(f'{helper} privsep-helper: read {len(data)} bytes of /etc/shadow')
"""

PRIVSEP_NEUTRON = """
from oslo_config import cfg
from neutron.common import config
from neutron.conf.agent import common as agent_config
config.register_common_config_options()
agent_config.register_root_helper(cfg.CONF)
cfg.CONF(['--config-file', '/etc/neutron/neutron.conf'], project='neutron')
agent_config.setup_privsep()   # as the agents do: privsep-helper through [agent] root_helper
from neutron.privileged.agent.linux import ip_lib
index = ip_lib.privileged_get_link_id('lo', None)
print(f'{cfg.CONF.AGENT.root_helper} privsep-helper: lo is link {index}')
"""


def _privsep(s: "Session", user: str, script: str) -> str:
    """``script`` in the project's venv as its user: privileged only through sudo, rootwrap and privsep."""
    c = s.c
    denied = c.run("cat /etc/shadow", user=user, check=False, timeout=60)
    if denied.returncode == 0:
        raise _failed(f"{user} can read /etc/shadow without privileges: the check would prove nothing")
    r = c.run(f"/opt/openstack/{user}/bin/python -", user=user, stdin=script, check=False, timeout=120)
    if r.returncode != 0:
        auth = c.run("journalctl --no-pager -q -n 15 -t sudo", check=False, timeout=60).stdout
        raise _failed(f"privsep as {user} exited {r.returncode}:\n{tail_of(r.stdout + r.stderr)}\n--- sudo's log ---\n{auth}")
    return r.stdout.strip().splitlines()[-1]
