"""Run the charts' jobs and services in containers from the pushed images, then the scenario.

One user-defined bridge network per run (a /24 of its own, ports published on 127.0.0.1 only), every
container, network and volume labelled ``org.stackyard.chart-verify=<run id>`` so that the end of the run,
and ``stackyard chart-verify --clean`` after a killed one, remove exactly what runs made. Names resolve
through each container's /etc/hosts (fixed addresses: the engines here run without iptables, so Docker's
embedded DNS is not relied on).

Order: MariaDB, RabbitMQ and memcached (one image built from Debian's packages on the stackyard base);
keystone (db-init, db-sync with bootstrap, fernet/credential setup, its API); then glance, placement and nova
in parallel (db-init, db-sync, ks-user/service/endpoints, the APIs, nova's conductor, scheduler and compute
with the fake driver, cell-setup, bootstrap); then the scenario from an openstack-client container. A job
that exits non-zero fails the run with ``ChartStepFailed`` naming the chart, the script and its output's tail.
The Docker Engine API goes through the Docker SDK, as stackyard.images.build does.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import docker
import docker.errors
import requests

from stackyard.charts import render as R
from stackyard.config import Config, Release
from stackyard.errors import BuildError, InputError
from stackyard.events import Note, Reporter, discard
from stackyard.images.build import ensure_base, ensure_image, read_record
from stackyard.images.build import render as render_dockerfile
from stackyard.runner import RUNNER, Runner, mask, tail

LABEL = "org.stackyard.chart-verify"
API_TIMEOUT = 240.0
SERVER_TIMEOUT = 240.0
TAIL = 30
# every command run in a container (a chart's job or script, a readiness check, a scenario call) is bounded:
# a job that hangs fails the run naming its chart, its script and its last output (what a Job's
# activeDeadlineSeconds does in the chart); the run's end removes the container it hung in
JOB_TIMEOUT = 600.0
CHECK_TIMEOUT = 30.0
OSC_TIMEOUT = 180.0
# what `openstack volume service list` must show up (cinder-volume needs a backend these kernels cannot give:
# no device-mapper, iSCSI or NFS client)
CINDER_SERVICES = {"cinder-scheduler"}


class ChartStepFailed(BuildError):
    """A chart's script (or the service it starts) failed in its container."""


class _Hung(BuildError):
    """``docker exec`` outlived its timeout (the runner killed the client; the run's cleanup kills the rest)."""


@dataclass(frozen=True)
class Exec:
    """A command's end in a container: its exit status (None: it timed out) and its output, stdout and stderr
    merged in the order they were written."""

    code: int | None
    output: str


@dataclass
class Row:
    """One line of the table: a job, a service or a scenario step."""

    chart: str
    step: str
    kind: str  # job, service, infra, scenario
    container: str = ""
    state: str = ""  # exited 0, running, failed...
    api: str = ""  # "200 after 12.3s" for an API
    seconds: float = 0.0
    detail: str = ""
    script: str = ""


@dataclass
class Outcome:
    run_id: str
    release: str
    charts: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)
    ok: bool = False
    error: str = ""
    seconds: float = 0.0
    images: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> str:
        return json.dumps({**asdict(self), "rows": [asdict(r) for r in self.rows]}, indent=2, sort_keys=True) + "\n"


def _subnet(run_id: str) -> str:
    """A /24 of 10.200-249.x for the run (from its id: two runs on one engine do not collide)."""
    h = int(hashlib.sha256(run_id.encode()).hexdigest(), 16)
    return f"10.{200 + h % 50}.{(h >> 8) % 256}"


def clean(client: docker.DockerClient, run_id: str | None = None, report: Reporter = discard) -> int:
    """Remove the containers, networks and volumes of one run (or of every run): how many."""
    selector = {"label": f"{LABEL}={run_id}" if run_id else LABEL}

    def remove(thing: Any, **kwargs: Any) -> int:
        try:
            thing.remove(**kwargs)
            return 1
        except docker.errors.NotFound:
            return 0

    # a run's job containers go as they finish: one listed and gone before docker-py inspects it is not an error
    containers = client.containers.list(all=True, filters=selector, ignore_removed=True)
    removed = 0
    if containers:  # on a vfs engine (the fallback) each removal deletes a whole copy of its image: at once
        with ThreadPoolExecutor(max_workers=min(8, len(containers))) as pool:
            removed += sum(pool.map(lambda c: remove(c, force=True, v=True), containers))
    removed += sum(remove(n) for n in client.networks.list(filters=selector))
    removed += sum(remove(v, force=True) for v in client.volumes.list(filters=selector))
    if removed:
        report(Note("chart-verify", f"removed {removed} containers, networks and volumes"
                                    + (f" of run {run_id}" if run_id else " of earlier runs")))
    return removed


def ensure_infra(config: Config, release: Release, client: docker.DockerClient, log: Path, report: Reporter, *,
                 runner: Runner = RUNNER) -> str:
    """The MariaDB/RabbitMQ/memcached image on the release's stackyard base (built once per base)."""
    base = ensure_base(config, release, client, log, report, runner=runner)
    dockerfile = render_dockerfile(config, "infra.Dockerfile.j2", base=base, packages=list(R.INFRA_PACKAGES))
    key = hashlib.sha256(dockerfile.encode() + client.images.get(base).id.encode()).hexdigest()[:12]
    tag = f"stackyard-infra:{release.codename}-{key}"
    return ensure_image(client, tag, dockerfile, log, lambda: report(Note(
        "chart-verify", f"building {tag} (mariadb-server, rabbitmq-server, memcached from Debian)")))


class ChartRun:
    def __init__(self, config: Config, release: Release, client: docker.DockerClient, charts_dir: Path,
                 charts: tuple[str, ...], *, report: Reporter = discard, runner: Runner = RUNNER,
                 run_id: str | None = None, password: str = "", job_timeout: float = JOB_TIMEOUT) -> None:
        self.config, self.release, self.client, self.charts_dir = config, release, client, charts_dir
        self.charts, self.report, self.runner = charts, report, runner
        self.run_id = run_id or f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
        self.password = password
        self.job_timeout = job_timeout
        self._execs = itertools.count(1)
        self.dir = config.paths.output / "charts" / release.id / self.run_id
        self.log = config.logs_dir("chart-verify", release) / f"{self.run_id}.log"
        self.net = f"sy-chart-{self.run_id}"
        self.prefix = _subnet(self.run_id)
        self.hosts = R.hosts(charts, self.prefix)
        self.ep = R.Endpoints({"db-root": secrets.token_hex(12), "admin": secrets.token_hex(12),
                               "memcache": secrets.token_hex(16),
                               **{f"db-{c}": secrets.token_hex(12) for c in charts},
                               **{f"rabbit-{c}": secrets.token_hex(12) for c in charts},
                               **{f"ks-{u}": secrets.token_hex(12) for u in ("glance", "placement", "nova",
                                                                             "neutron", "cinder")}})
        self.outcome = Outcome(self.run_id, release.id, charts)
        self.images: dict[str, str] = {}
        self.services: dict[str, Any] = {}  # step name -> container
        self.pods: dict[str, Any] = {}  # job container name -> container
        self.volumes: set[str] = set()
        self.keystone_ready, self.abort = threading.Event(), threading.Event()
        self.identity_lock = threading.Lock()
        # a chart's ks-endpoints job done: its endpoints are in the catalog (what kubernetes-entrypoint waits for
        # before nova's services start: nova-compute exits when placement's endpoint is not there yet)
        self.identity = {c: threading.Event() for c in charts}
        self.lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------------------------------

    def note(self, text: str) -> None:
        self.report(Note("chart-verify", text))
        with self.lock, self.log.open("a") as handle:
            handle.write(f"{time.strftime('%H:%M:%S')} {text}\n")

    def _files(self, name: str, files: tuple[R.File, ...]) -> dict[str, dict[str, str]]:
        """Write ``files`` under the run's directory; their bind mounts (read-only, one per file)."""
        binds = {}
        for f in files:
            host = self.dir / "files" / name / f.path.lstrip("/")
            host.parent.mkdir(parents=True, exist_ok=True)
            host.write_text(f.content)
            host.chmod(f.mode | (0o444 if f.mode != 0o440 else 0))
            binds[str(host)] = {"bind": f.path, "mode": "ro"}
        return binds

    def _create(self, name: str, image: str, command: tuple[str, ...] | list[str], *, user: str = "root",
                env: dict[str, str] | None = None, binds: dict[str, dict[str, str]] | None = None,
                ip: str | None = None, port: int = 0, volumes: dict[str, str] | None = None) -> Any:
        api = self.client.api
        all_binds = dict(binds or {})
        for volume, target in (volumes or {}).items():
            all_binds[volume] = {"bind": target, "mode": "rw"}
        host_config = api.create_host_config(
            binds=all_binds, extra_hosts=self.hosts, port_bindings={port: ("127.0.0.1", None)} if port else None,
            init=True)
        endpoint = api.create_endpoint_config(ipv4_address=ip) if ip else api.create_endpoint_config()
        created = api.create_container(
            image, command=list(command), user=user, environment=env or {}, hostname=name,
            name=f"sy-{self.run_id}-{name}", labels={LABEL: self.run_id, f"{LABEL}.step": name},
            host_config=host_config, ports=[port] if port else None,
            networking_config=api.create_networking_config({self.net: endpoint}))
        container = self.client.containers.get(created["Id"])
        container.start()
        return container

    def _fail(self, row: Row, message: str, output: str) -> ChartStepFailed:
        row.state = row.state or "failed"
        row.detail = message
        with self.lock, self.log.open("a") as handle:
            handle.write(mask(f"--- {row.chart} {row.step} ({row.script}) failed: {message}\n{output}\n",
                              self.ep.passwords.values()))
        text = mask(f"{row.chart}: {row.script} ({row.step}) {message}\n{tail(output, TAIL, 3000)}",
                    self.ep.passwords.values())
        return ChartStepFailed(text, hint=f"see {self.log}")

    def exec_in(self, container: str, argv: list[str] | tuple[str, ...], *, user: str = "root",
                env: dict[str, str] | None = None, timeout: float, what: str) -> Exec:
        """``argv`` in the running ``container`` through ``docker exec`` and the runner, killed after ``timeout``
        seconds. The environment reaches docker by name only (``--env NAME``: values stay off the command line);
        the output streams to a file of its own in the run's directory (0700), the command line masked."""
        env = dict(env or {})
        out = self.dir / "exec" / f"{next(self._execs):03d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', what)[:60]}.log"
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = ["docker", "--host", self.config.images.engine, "exec", "--user", user,
               *(a for name in sorted(env) for a in ("--env", name)), container, *argv]
        secrets = list(self.ep.passwords.values())
        code: int | None
        try:
            code = self.runner.run(cmd, log=out, env=env, stream=True, timeout=timeout, check=False,
                                   secrets=secrets, what=what, package="docker.io", error=_Hung).returncode
        except _Hung:
            code = None
        lines = out.read_text(errors="replace").splitlines()[1:]  # the first is the command line
        if lines and re.fullmatch(r"\[(exit -?\d+|timed out after .*); [\d.]+ s\]", lines[-1]):
            lines = lines[:-1]  # the runner's status line
        return Exec(code, "\n".join(lines) + ("\n" if lines else ""))

    # -- steps ---------------------------------------------------------------------------------------------

    def pod(self, name: str, image: str, files: tuple[R.File, ...], chart: str) -> Any:
        """A job container: kept running (``sleep infinity``) while its jobs run in it one after the other."""
        ip = self.hosts.get(name)
        volumes = self._volumes(R.Step(chart, name, image, "", ()))
        container = self._create(name, self.images[image], ["sleep", "infinity"], binds=self._files(name, files),
                                 ip=ip, volumes=volumes, env={"HOME": "/tmp"})
        self.pods[name] = container
        return container

    def job(self, step: R.Step) -> Row:
        row = Row(step.chart, step.name, "job", script=step.script)
        started = time.monotonic()
        pod = self.pods[R.job_pod(step)]
        self.note(f"{step.chart}: job {step.name} ({step.script}) as {step.user} in {pod.name}")
        row.container = pod.name
        with self.lock:
            self.outcome.rows.append(row)
        done = self.exec_in(pod.name, step.command, user=step.user, env={"HOME": "/tmp", **step.env},
                            timeout=self.job_timeout, what=f"{step.chart} {step.name}")
        code, output = done.code, done.output
        row.seconds = time.monotonic() - started
        row.state = f"exited {code}" if code is not None else "timed out"
        with self.lock, self.log.open("a") as handle:
            handle.write(mask(f"--- {step.chart} {step.name} ({step.script}): "
                              f"{'exit ' + str(code) if code is not None else 'timed out'}, {row.seconds:.1f}s\n"
                              f"{output}\n", self.ep.passwords.values()))
        if code is None:
            raise self._fail(row, f"did not finish within {self.job_timeout:g} s (hung; killed, its container "
                                  f"{pod.name} removed); its last output:", output)
        if code != 0:
            raise self._fail(row, f"exited {code} in {pod.name}", output)
        row.detail = mask(tail(output, 1, 200), self.ep.passwords.values())
        return row

    def _volumes(self, step: R.Step) -> dict[str, str]:
        """Named volumes (labelled like everything of the run): keystone's fernet and credential keys, which the
        chart keeps in secrets its jobs write and its API reads."""
        if not (step.chart == "keystone" and step.image == "keystone"):
            return {}
        wanted = {f"sy-{self.run_id}-keystone-fernet": "/etc/keystone/fernet-keys",
                  f"sy-{self.run_id}-keystone-credential": "/etc/keystone/credential-keys"}
        with self.lock:
            for name in wanted:
                if name not in self.volumes:
                    self.client.volumes.create(name, labels={LABEL: self.run_id})
                    self.volumes.add(name)
        return wanted

    def service(self, step: R.Step) -> Row:
        row = Row(step.chart, step.name, "service", script=step.script)
        started = time.monotonic()
        self.note(f"{step.chart}: service {step.name} ({step.script})")
        container = self._create(step.name, self.images[step.image], step.command, user=step.user,
                                 env=dict(step.env), binds=self._files(step.name, step.files),
                                 ip=self.hosts.get(step.name), port=step.port, volumes=self._volumes(step))
        self.services[step.name] = container
        row.container = container.name
        with self.lock:
            self.outcome.rows.append(row)
        if step.port:
            code = self._wait_api(container, step, row)
            row.api = f"{code} after {time.monotonic() - started:.1f}s"
        container.reload()
        row.state = container.status
        row.seconds = time.monotonic() - started
        if container.status != "running":
            raise self._fail(row, f"is {container.status}", container.logs().decode(errors="replace"))
        return row

    def _wait_api(self, container: Any, step: R.Step, row: Row) -> int:
        deadline = time.monotonic() + API_TIMEOUT
        while True:
            container.reload()
            if container.status != "running":
                raise self._fail(row, f"stopped before its API answered ({container.status})",
                                 container.logs().decode(errors="replace"))
            ports = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{step.port}/tcp") or []
            if ports:
                url = f"http://127.0.0.1:{ports[0]['HostPort']}{step.path}"
                try:
                    return requests.get(url, timeout=10).status_code
                except requests.RequestException:
                    pass
            if time.monotonic() > deadline:
                raise self._fail(row, f"did not answer on port {step.port} within {API_TIMEOUT:.0f}s",
                                 container.logs().decode(errors="replace"))
            time.sleep(1)

    def _await_keystone(self, step: R.Step) -> None:
        while not self.keystone_ready.wait(0.5):
            if self.abort.is_set():
                raise ChartStepFailed(f"{step.chart}: {step.name} not run: keystone did not come up")

    def _await_identity(self, step: R.Step) -> None:
        """A chart's services wait for the endpoints of the charts it needs (nova: glance, placement, neutron)."""
        from stackyard.charts.plan import NEEDS

        for other in NEEDS.get(step.chart, ()):
            if other == "keystone" or other not in self.identity:
                continue
            while not self.identity[other].wait(0.5):
                if self.abort.is_set():
                    raise ChartStepFailed(f"{step.chart}: {step.name} not run: {other}'s endpoints were not made")

    def run_steps(self, steps: list[R.Step]) -> None:
        """Jobs in order; consecutive services together (as a chart's deployments start at once)."""
        i = 0
        while i < len(steps):
            if steps[i].kind != "service":
                if steps[i].image == "openstack-client" and steps[i].chart != "keystone" and steps[i].name != "db-init":
                    self._await_keystone(steps[i])  # kubernetes-entrypoint: the job's dependency on keystone-api
                    with self.identity_lock:  # two charts' "--or-show service" at once: one gets a 409 (a Job retries)
                        self.job(steps[i])
                    if steps[i].name == "ks-user/ks-service/ks-endpoints" and steps[i].chart in self.identity:
                        self.identity[steps[i].chart].set()
                else:
                    self.job(steps[i])
                i += 1
                continue
            j = i
            while j < len(steps) and steps[j].kind == "service":
                j += 1
            group = steps[i:j]
            self._await_identity(group[0])
            if len(group) == 1:
                self.service(group[0])
            else:
                with ThreadPoolExecutor(max_workers=len(group)) as pool:
                    futures = [pool.submit(self.service, step) for step in group]
                for f in futures:
                    f.result()
            i = j

    # -- infrastructure ------------------------------------------------------------------------------------

    def infra(self, image: str) -> None:
        started = time.monotonic()
        salts = {c: secrets.token_bytes(4) for c in self.charts}
        pool = ThreadPoolExecutor(max_workers=3)  # creating a container copies its image on vfs (the fallback): at once
        db_ = pool.submit(self._create, R.DB, image, ["bash", "-c", "install -d -o mysql -g mysql /run/mysqld && exec mariadbd "
                                        "--user=mysql --bind-address=0.0.0.0 --skip-name-resolve "
                                        "--max-connections=1000 --init-file=/etc/mysql/stackyard-init.sql"],
                          binds=self._files(R.DB, (R.File("/etc/mysql/stackyard-init.sql", R.mariadb_init(self.ep)),)),
                          ip=self.hosts[R.DB])
        rabbit_ = pool.submit(self._create, R.RABBIT, image, ["bash", "-c", "chown rabbitmq: /var/lib/rabbitmq && exec runuser -u "
                                                "rabbitmq -- /usr/lib/rabbitmq/bin/rabbitmq-server"],
                              binds=self._files(R.RABBIT, (
                                  R.File("/etc/rabbitmq/definitions.json",
                                         R.rabbit_definitions(self.charts, self.ep, salts)),
                                  R.File("/etc/rabbitmq/rabbitmq.conf", R.RABBIT_CONF))),
                              ip=self.hosts[R.RABBIT], env={"RABBITMQ_NODENAME": "rabbit@rabbitmq",
                                                            "HOME": "/var/lib/rabbitmq"})
        cache_ = pool.submit(self._create, R.MEMCACHED, image, ["memcached", "-u", "memcache", "-l", "0.0.0.0", "-p",
                                                                "11211", "-m", "64"], ip=self.hosts[R.MEMCACHED])
        pool.shutdown(wait=True)
        db, rabbit, cache = db_.result(), rabbit_.result(), cache_.result()
        checks = {R.DB: (db, "mariadb-admin --protocol=socket ping"),
                  R.RABBIT: (rabbit, "runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq rabbitmqctl -n rabbit@rabbitmq "
                                     "await_startup"),
                  R.MEMCACHED: (cache, "bash -c 'exec 3<>/dev/tcp/127.0.0.1/11211 && echo stats >&3 && head -c 20 <&3'")}
        for name, (container, check) in checks.items():
            row = Row("infra", name, "infra", container.name, script=check)
            with self.lock:
                self.outcome.rows.append(row)
            deadline = time.monotonic() + API_TIMEOUT
            while True:
                container.reload()
                if container.status != "running":
                    raise self._fail(row, f"is {container.status}", container.logs().decode(errors="replace"))
                done = self.exec_in(container.name, ["bash", "-c", check], timeout=CHECK_TIMEOUT,
                                    what=f"{name} readiness")
                if done.code == 0:
                    break
                if time.monotonic() > deadline:
                    raise self._fail(row, f"not ready within {API_TIMEOUT:.0f}s: {done.output[-300:]}",
                                     container.logs().decode(errors="replace"))
                time.sleep(1)
            row.state, row.seconds = "running", time.monotonic() - started
            row.api = "ready"
            self.note(f"{name} ready after {row.seconds:.1f}s")

    # -- the scenario --------------------------------------------------------------------------------------

    def osc(self, client: Any, command: str, row: Row, *, check: bool = True) -> str:
        done = self.exec_in(client.name, ["bash", "-c", command], env=R.client_env(self.ep), timeout=OSC_TIMEOUT,
                            what=f"scenario {row.chart}")
        text = done.output.strip()
        if done.code is None:
            raise self._fail(row, f"`{command}` did not finish within {OSC_TIMEOUT:g} s (hung; killed)", text)
        if check and done.code != 0:
            raise self._fail(row, f"`{command}` exited {done.code}", text)
        return text

    def scenario_step(self, name: str, chart: str, action: Callable[[Row], str]) -> None:
        row = Row(chart, name, "scenario", script="scenario")
        started = time.monotonic()
        with self.lock:
            self.outcome.rows.append(row)
        row.detail = action(row)
        row.seconds = time.monotonic() - started
        row.state = "ok"
        self.note(f"scenario: {name}: {row.detail}")

    def poll(self, row: Row, what: str, check: Callable[[], str | None], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            done = check()
            if done is not None:
                return done
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n}\n{tail(c.logs().decode(errors='replace'), 15, 1500)}"
                                 for n, c in self.services.items() if n.startswith(row.chart))
                raise self._fail(row, f"{what}: not within {timeout:.0f}s", logs)
            time.sleep(2)

    def scenario(self) -> None:
        client = self.pods["openstack-client"]

        self.scenario_step("token issue", "keystone",
                           lambda row: f"token of {len(self.osc(client, 'openstack token issue -f value -c id', row))} characters")
        if "glance" in self.charts:
            def glance(row: Row) -> str:
                image = self.osc(client, "head -c 1048576 /dev/urandom > /tmp/verify.img && openstack image create "
                                          "--disk-format raw --container-format bare --public --file /tmp/verify.img "
                                          "verify-image -f value -c id", row)
                sums = self.osc(client, f"openstack image save --file /tmp/verify.out {image} && "
                                        "sha256sum /tmp/verify.img /tmp/verify.out", row).split()
                if len(sums) < 4 or sums[0] != sums[2]:
                    raise self._fail(row, "the downloaded image differs from the uploaded one", " ".join(sums))
                return f"sha256 {sums[0][:12]}... both ways, image {image}"
            self.scenario_step("glance: image upload, download, same sha256", "glance", glance)
        if "neutron" in self.charts:
            def network(row: Row) -> str:  # as the packages' scenario: ML2 with no agent, the server alone
                net = self.osc(client, "openstack network create verify-net -f value -c id", row)
                listed = self.osc(client, "openstack network list -f value -c ID", row)
                if net not in listed:
                    raise self._fail(row, f"network {net} is not listed", listed)
                self.osc(client, "openstack subnet create --network verify-net --subnet-range 10.11.12.0/24 verify-subnet "
                         "-f value -c id", row)
                port = self.osc(client, "openstack port create --network verify-net verify-port -f value -c fixed_ips", row)
                if "10.11.12." not in port:
                    raise self._fail(row, "the port got no address of verify-subnet", port)
                return f"network {net}, port {port}"
            self.scenario_step("neutron: network, subnet and port create", "neutron", network)
        if "placement" in self.charts and "nova" in self.charts:
            def provider(row: Row) -> str:
                def listed() -> str | None:
                    out = self.osc(client, "openstack resource provider list -f value -c uuid -c name", row, check=False)
                    return out if "nova-compute" in out else None
                return "provider " + self.poll(row, "the compute node in placement", listed, SERVER_TIMEOUT)
            self.scenario_step("placement: resource provider of nova-compute listed", "placement", provider)
        if "nova" in self.charts:
            def server(row: Row) -> str:
                sid = self.osc(client, "openstack server create --flavor m1.tiny --image verify-image --nic none "
                                       "verify-server -f value -c id", row)

                def active() -> str | None:
                    status = self.osc(client, f"openstack server show {sid} -f value -c status", row)
                    if status == "ERROR":
                        fault = self.osc(client, f"openstack server show {sid} -f value -c fault", row, check=False)
                        raise self._fail(row, f"server {sid} went to ERROR", fault)
                    return status if status == "ACTIVE" else None
                self.poll(row, f"server {sid} ACTIVE", active, SERVER_TIMEOUT)
                return f"server {sid} ACTIVE (fake driver)"
            self.scenario_step("nova: server create --nic none, ACTIVE", "nova", server)
        if "cinder" in self.charts:
            def volume_services(row: Row) -> str:
                def up() -> str | None:
                    out = self.osc(client, "openstack volume service list -f value -c Binary -c Host -c Status "
                                           "-c State", row, check=False)
                    ups = sorted(line.split()[0] for line in out.splitlines()
                                 if line.split()[-2:] == ["enabled", "up"])
                    return ", ".join(ups) if CINDER_SERVICES <= set(ups) else None
                return "up: " + self.poll(row, "cinder's services up", up, SERVER_TIMEOUT)
            self.scenario_step("cinder: volume service list, services up", "cinder", volume_services)
        # every service still up at the end
        row = Row("all", "services still running", "scenario", script="scenario")
        with self.lock:
            self.outcome.rows.append(row)
        down = []
        for name, c in self.services.items():
            c.reload()
            if c.status != "running":
                down.append(f"{name} {c.status}")
        if down:
            raise self._fail(row, "; ".join(down), "")
        row.state, row.detail = "ok", f"{len(self.services)} containers running"

    # -- the whole run -------------------------------------------------------------------------------------

    def pull(self) -> None:
        """The pushed images, by the digest the push recorded (the engine pulls them from the registry)."""
        for image in (*self.charts, "openstack-client"):
            record = read_record(self.config, self.release, image)
            if record is None or not record.digest:
                raise InputError(f"{image}: no pushed image of {self.release.id}",
                                 hint=f"stackyard image --release {self.release.id} --push "
                                      f"{'python-openstackclient' if image == 'openstack-client' else image}")
            reference = f"{record.repository}@{record.digest}"
            auth = {"username": self.config.images.username, "password": self.password} if self.password else None
            try:
                self.client.images.pull(record.repository, tag=record.digest, auth_config=auth)
            except docker.errors.APIError as exc:
                raise InputError(f"pulling {reference}: {exc.explanation or exc}",
                                 hint="is the registry up? (stackyard services up)") from None
            self.images[image] = reference
        self.outcome.images = dict(self.images)

    def chain(self, chart: str, steps: list[R.Step]) -> None:
        """One chart, as helm installs it with the others at once: its jobs and services in order, those that
        need keystone waiting for it."""
        try:
            for pod, files in R.pod_files(steps).items():
                if pod not in self.pods:
                    self.pod(pod, steps[[R.job_pod(s) for s in steps].index(pod)].image, files, chart)
            self.run_steps(steps)
            if chart == "keystone":
                self.keystone_ready.set()
        except BaseException:
            self.abort.set()
            raise

    def run(self) -> Outcome:
        started = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        try:
            infra = ensure_infra(self.config, self.release, self.client, self.log, self.report, runner=self.runner)
            self.pull()
            self.client.networks.create(
                self.net, driver="bridge", labels={LABEL: self.run_id},
                options={"com.docker.network.bridge.host_binding_ipv4": "127.0.0.1"},
                ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
                    subnet=f"{self.prefix}.0/24", iprange=f"{self.prefix}.128/25", gateway=f"{self.prefix}.1")]))
            self.note(f"network {self.net} ({self.prefix}.0/24), ports published on 127.0.0.1 only")
            steps = {chart: R.chart_steps(self.charts_dir, chart, self.ep) for chart in self.charts}
            client_files = R.pod_files([s for chart_steps in steps.values() for s in chart_steps]).get(
                "openstack-client", ())
            with ThreadPoolExecutor(max_workers=2) as pool:  # the client container while the servers start
                client = pool.submit(self.pod, "openstack-client", "openstack-client", client_files, "keystone")
                self.infra(infra)
                client.result()
            with ThreadPoolExecutor(max_workers=len(self.charts)) as pool:  # every chart at once, as helm does
                futures = [pool.submit(self.chain, c, steps[c]) for c in self.charts]
            for f in futures:  # keystone's failure first: the others' "not run" follow from it
                f.result()
            self.scenario()
            self.outcome.ok = True
        except BuildError as exc:
            self.outcome.error = exc.message
            raise
        finally:
            self.outcome.seconds = time.monotonic() - started
            record = self.config.paths.output / "charts" / self.release.id / "chart-verify.json"
            record.write_text(self.outcome.as_json())
            if os.environ.get("STACKYARD_CHART_KEEP") != "1":
                clean(self.client, self.run_id, self.report)
        return self.outcome
