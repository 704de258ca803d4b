"""The embedded default's services: a Docker engine and a private registry.

``stackyard services up`` (``make up``) and the test fixtures start them from
here, bound to loopback, with their state under ``<output>/services``:

- dockerd with the flags these machines need (overlay2 storage where the
  kernel and file system allow it, else vfs: ``[images] storage_driver``; no
  iptables, no bridge: builds and containers use host networking), on the
  socket ``[images] engine`` names;
- Debian's ``docker-registry`` on ``[images] registry`` with TLS (a CA
  generated here, trusted by the engine through /etc/docker/certs.d) and an
  htpasswd file of bcrypt entries for ``[images] username``; the password is
  generated once into ``[images] password_file``.

Either is started only where the configuration points at this machine: an
external engine or registry is left alone.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from stackyard.config import Config, ImageSettings
from stackyard.errors import ToolError
from stackyard.runner import RUNNER, Result, Runner

LOOPBACK = ("127.0.0.1", "localhost")
CERTS_D = Path("/etc/docker/certs.d")


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # "started", "running", "stopped", "external"
    detail: str


def services_dir(config: Config) -> Path:
    return config.paths.output / "services"


def _tool(cmd: list[str], what: str, *, log: Path | None = None, runner: Runner = RUNNER, stdin: str | None = None,
          secrets: tuple[str, ...] = ()) -> Result:
    return runner.run(cmd, log=log, stdin=stdin, secrets=secrets, timeout=120, what=what)


# -- secrets and TLS ---------------------------------------------------------

def registry_password(images: ImageSettings) -> str:
    """The registry password: the environment's, else the password file's (created on first use)."""
    if os.environ.get("STACKYARD_REGISTRY_PASSWORD"):
        return os.environ["STACKYARD_REGISTRY_PASSWORD"]
    file = images.password_file
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
    return file.read_text().strip()


def ensure_tls(directory: Path, ca_cert: Path, *, log: Path | None = None, runner: Runner = RUNNER) -> tuple[Path, Path]:
    """A CA (at ``ca_cert``) and a server certificate for 127.0.0.1/localhost signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, cert, key = directory / "ca.key", directory / "server.crt", directory / "server.key"
    if not (ca_cert.exists() and ca_key.exists()):
        ca_cert.parent.mkdir(parents=True, exist_ok=True)
        _tool(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj",
               "/CN=stackyard registry CA", "-keyout", str(ca_key), "-out", str(ca_cert)], "make the registry CA",
              log=log, runner=runner)
        cert.unlink(missing_ok=True)
    if not cert.exists():
        csr = directory / "server.csr"
        ext = directory / "server.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        _tool(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
               "-out", str(csr)], "make the registry key", log=log, runner=runner)
        _tool(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
               "-CAcreateserial", "-days", "3650", "-extfile", str(ext), "-out", str(cert)], "sign the registry certificate",
              log=log, runner=runner)
    return cert, key


def htpasswd_line(username: str, password: str, *, runner: Runner = RUNNER) -> str:
    """``username:<bcrypt>``; the password goes to htpasswd on stdin, never on its command line (nor in a log)."""
    return _tool(["htpasswd", "-niB", username], "hash the registry password", stdin=password + "\n", secrets=(password,),
                 runner=runner).stdout.strip()


def trust_ca(registry: str, ca_cert: Path) -> Path:
    """Make the engine trust the registry's CA (dockerd reads /etc/docker/certs.d/<host:port>/)."""
    target = CERTS_D / registry / "ca.crt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(ca_cert.read_bytes())
    return target


# -- daemons -------------------------------------------------------------------

def _pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None


def _start(name: str, cmd: list[str], state: Path, ready: Callable[[], bool], timeout: float = 60) -> None:
    state.mkdir(parents=True, exist_ok=True)
    log = state / f"{name}.log"
    proc = RUNNER.start(cmd, log, what=f"start {name}")
    (state / f"{name}.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise ToolError(f"{name} exited {proc.returncode} while starting:\n{tail}", hint=f"see {log}")
        if ready():
            return
        time.sleep(0.2)
    _stop(name, state)
    raise ToolError(f"{name} did not become ready within {timeout:.0f} s", hint=f"see {log}")


def _stop(name: str, state: Path) -> bool:
    pidfile = state / f"{name}.pid"
    pid = _pid(pidfile)
    if pid is not None:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(150):
            if _pid(pidfile) is None:
                break
            try:
                os.waitpid(pid, os.WNOHANG)  # reap it when it is our own child (tests)
            except ChildProcessError:
                pass
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return pid is not None


def _connects(path: Path | None = None, address: tuple[str, int] | None = None) -> bool:
    family = socket.AF_UNIX if path else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        try:
            s.connect(str(path) if path else address)  # type: ignore[arg-type]
            return True
        except OSError:
            return False


def _registry_address(images: ImageSettings) -> tuple[str, int]:
    host, _, port = images.registry.partition(":")
    return host, int(port or 443)


def engine_is_local(config: Config) -> bool:
    socket_path = config.images.engine_socket
    return socket_path is not None and socket_path.is_relative_to(config.paths.output)


def registry_is_local(config: Config) -> bool:
    return _registry_address(config.images)[0] in LOOPBACK


STORAGE_DRIVERS = ("overlay2", "vfs")


@dataclass(frozen=True)
class Dockerd:
    driver: str  # the storage driver the engine runs with
    fallback: str = ""  # why overlay2 was not used ("" when it was, or when vfs was asked for)


def data_root(state: Path, driver: str) -> Path:
    """One data root per storage driver: an engine never reads layers another driver wrote (vfs keeps the
    historical ``data``, so an existing vfs engine's images stay)."""
    return state / ("data" if driver == "vfs" else f"data-{driver}")


def dockerd_command(sock: Path, state: Path, driver: str) -> list[str]:
    return ["dockerd", "--storage-driver", driver, "--iptables=false", "--ip6tables=false", "--bridge=none",
            "--host", f"unix://{sock}", "--data-root", str(data_root(state, driver)),
            "--exec-root", str(state / "exec"), "--pidfile", str(state / "docker.pid")]


def reported_driver(sock: Path) -> str:
    """The storage driver ``docker info`` reports for the engine on ``sock``."""
    import docker

    client = docker.DockerClient(base_url=f"unix://{sock}", version="auto", timeout=60)
    try:
        return str(client.info().get("Driver", ""))
    finally:
        client.close()


def _dockerd_failure(log: Path, offset: int) -> str:
    """What dockerd said when it failed to start (its log since ``offset``): the fatal line, else the last error."""
    time.sleep(0.5)  # let it finish writing
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    fatal = [line for line in lines if line.startswith("failed to start daemon")]
    errors = [line for line in lines if "level=error" in line or "level=fatal" in line]
    return ((fatal or errors or [""])[-1]).strip()[:300]


def _unmount(path: Path) -> None:
    """A dockerd that fails to start can leave its data root bind-mounted on itself."""
    if str(path) in _mounts_under(path):  # a bind mount of the same file system: os.path.ismount() misses it
        RUNNER.run(["umount", str(path)], timeout=60, what="unmount a failed engine's data root", check=False)


def start_dockerd(sock: Path, state: Path, driver: str = "auto") -> Dockerd:
    """dockerd on the unix socket ``sock``, its data, exec root and log under ``state``.

    ``driver``: "overlay2", "vfs", or "auto" (overlay2 when the engine comes up with it and ``docker info``
    reports it, else vfs, with the reason in ``Dockerd.fallback``). vfs copies every layer in full: image
    builds and container creation cost minutes there; overlay2 shares the layers."""
    if driver not in ("auto", *STORAGE_DRIVERS):
        raise ToolError(f"unknown storage driver {driver!r}", hint="[images] storage_driver is auto, overlay2 or vfs")
    sock.parent.mkdir(parents=True, exist_ok=True)
    reason = ""
    if driver in ("auto", "overlay2"):
        sock.unlink(missing_ok=True)
        log = state / "dockerd.log"
        offset = log.stat().st_size if log.exists() else 0
        try:
            _start("dockerd", dockerd_command(sock, state, "overlay2"), state, lambda: _connects(path=sock))
            reported = reported_driver(sock)
            if reported == "overlay2":
                return Dockerd("overlay2")
            reason = f"docker info reports storage driver {reported!r}"
        except Exception as exc:  # it did not come up, or opened its socket and then died (docker info fails)
            reason = _dockerd_failure(log, offset) or f"{type(exc).__name__}: {exc}"
        _stop("dockerd", state)
        _unmount(data_root(state, "overlay2"))
        if driver == "overlay2":
            raise ToolError(f"dockerd does not run with storage driver overlay2 here: {reason}",
                            hint="set [images] storage_driver = \"auto\" (falls back to vfs) or \"vfs\"")
        reason = f"overlay2 not usable here ({reason}): vfs instead"
    sock.unlink(missing_ok=True)
    _start("dockerd", dockerd_command(sock, state, "vfs"), state, lambda: _connects(path=sock))
    return Dockerd("vfs", reason)


def _mounts_under(path: Path) -> list[str]:
    lines = Path("/proc/self/mounts").read_text().splitlines()
    points = [line.split()[1] for line in lines if len(line.split()) > 1]
    return [m for m in points if m == str(path) or m.startswith(f"{path}/")]


def stop_dockerd(state: Path) -> bool:
    """Stop it, then undo what it left mounted under ``state`` (its exec root's network namespace file)."""
    stopped = _stop("dockerd", state)
    for mount in sorted((m for m in _mounts_under(state) if m != str(state)), reverse=True):  # not state itself
        RUNNER.run(["umount", mount], timeout=60, what="unmount what a stopped engine left", check=False)
    return stopped


def start_engine(config: Config) -> ServiceStatus:
    sock = config.images.engine_socket
    if not engine_is_local(config) or sock is None:
        return ServiceStatus("dockerd", "external", config.images.engine)
    state = services_dir(config) / "docker"
    if _pid(state / "dockerd.pid") and _connects(path=sock):
        return ServiceStatus("dockerd", "running", config.images.engine)
    started = start_dockerd(sock, state, config.images.storage_driver)
    detail = f"{config.images.engine} ({started.driver} storage)"
    return ServiceStatus("dockerd", "started", detail + (f"; {started.fallback}" if started.fallback else ""))


def registry_config(config: Config, htpasswd: Path, cert: Path, key: Path) -> str:
    host, port = _registry_address(config.images)
    storage = services_dir(config) / "registry" / "storage"
    return (
        "version: 0.1\n"
        "log:\n  level: info\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {host}:{port}\n  tls:\n    certificate: {cert}\n    key: {key}\n"
        f"auth:\n  htpasswd:\n    realm: stackyard\n    path: {htpasswd}\n"
    )


def start_registry(config: Config) -> ServiceStatus:
    images = config.images
    if not registry_is_local(config):
        return ServiceStatus("registry", "external", images.registry)
    if images.ca_cert is None:
        raise ToolError("the embedded registry needs [images] ca_cert to write its CA to",
                        hint=f"set ca_cert = \"var/registry/ca.crt\" in {config.file}")
    state = services_dir(config) / "registry"
    host, port = _registry_address(images)
    if _pid(state / "registry.pid") and _connects(address=(host, port)):
        return ServiceStatus("registry", "running", images.registry)
    cert, key = ensure_tls(state / "tls", images.ca_cert, log=state / "setup.log")
    htpasswd = state / "htpasswd"
    htpasswd.write_text(htpasswd_line(images.username, registry_password(images)) + "\n")
    conf = state / "config.yml"
    conf.write_text(registry_config(config, htpasswd, cert, key))
    trust_ca(images.registry, images.ca_cert)
    _start("registry", ["docker-registry", "serve", str(conf)], state, lambda: _connects(address=(host, port)))
    return ServiceStatus("registry", "started", f"https://{images.registry} (user {images.username})")


def up(config: Config) -> list[ServiceStatus]:
    return [start_engine(config), start_registry(config)]


def down(config: Config) -> list[ServiceStatus]:
    out = []
    for name, sub, local in (("registry", "registry", registry_is_local(config)), ("dockerd", "docker", engine_is_local(config))):
        if not local:
            out.append(ServiceStatus(name, "external", ""))
            continue
        stopped = _stop(name, services_dir(config) / sub)  # dockerd's images stay in its data root
        out.append(ServiceStatus(name, "stopped" if stopped else "not running", ""))
    if registry_is_local(config):
        trusted = CERTS_D / config.images.registry / "ca.crt"
        trusted.unlink(missing_ok=True)
        if trusted.parent.exists() and not any(trusted.parent.iterdir()):
            trusted.parent.rmdir()
    return out
