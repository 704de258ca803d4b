"""The embedded services' decisions without starting them: where they run, the password, the TLS files, the
registry's configuration, a running engine left alone, stale pid files."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Callable, Iterator

import pytest

from stackyard.config import Config
from stackyard.errors import ToolError
from stackyard.images import services as local_services
from stackyard.runner import Call
from tests.fakes import FakeRunner

DEAD_PID = int(Path("/proc/sys/kernel/pid_max").read_text())  # pids are below pid_max: never a live process


@pytest.mark.parametrize("images, engine_local, registry_local", [
    ("", True, True),  # the embedded default: a socket under the output directory, a registry on loopback
    ('engine = "unix:///run/docker.sock"\nregistry = "localhost:5000"', False, True),
    ('engine = "tcp://docker.example:2375"\nregistry = "registry.example:5000"', False, False),
])
def test_only_what_the_configuration_places_here_is_local(make_config: Callable[..., Config], images: str,
                                                          engine_local: bool, registry_local: bool) -> None:
    config = make_config(extra=f"[images]\n{images}\n")
    assert local_services.engine_is_local(config) == engine_local
    assert local_services.registry_is_local(config) == registry_local


def test_external_services_are_left_alone(make_config: Callable[..., Config]) -> None:
    config = make_config(extra='[images]\nengine = "tcp://docker.example:2375"\nregistry = "registry.example"\n')
    assert local_services.up(config) == [local_services.ServiceStatus("dockerd", "external", "tcp://docker.example:2375"),
                                         local_services.ServiceStatus("registry", "external", "registry.example")]
    assert [s.state for s in local_services.down(config)] == ["external", "external"]


def test_the_embedded_registry_needs_a_ca_path(make_config: Callable[..., Config]) -> None:
    config = make_config(extra='[images]\nca_cert = ""\n')
    with pytest.raises(ToolError, match=r"the embedded registry needs \[images\] ca_cert"):
        local_services.start_registry(config)


@pytest.fixture
def listening(config: Config) -> Iterator[Path]:
    """A unix socket where the embedded engine's is, accepting connections (as a running dockerd's does)."""
    sock = config.images.engine_socket
    assert sock is not None
    sock.parent.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(sock))
        server.listen(1)
        yield sock


def test_a_running_engine_is_not_started_again(config: Config, listening: Path) -> None:
    state = local_services.services_dir(config) / "docker"
    state.mkdir(parents=True)
    (state / "dockerd.pid").write_text(f"{os.getpid()}\n")  # a live process
    assert local_services.start_engine(config) == local_services.ServiceStatus("dockerd", "running", config.images.engine)


def test_a_stale_pid_file_means_not_running(tmp_path: Path) -> None:
    (tmp_path / "dockerd.pid").write_text(f"{DEAD_PID}\n")
    assert local_services._pid(tmp_path / "dockerd.pid") is None
    assert not local_services._stop("dockerd", tmp_path)  # nothing to stop
    assert not (tmp_path / "dockerd.pid").exists()
    (tmp_path / "x.pid").write_text("garbage")
    assert local_services._pid(tmp_path / "x.pid") is None
    assert local_services._pid(tmp_path / "missing.pid") is None


def test_the_registry_password_comes_from_the_environment_or_a_private_file(config: Config,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STACKYARD_REGISTRY_PASSWORD", raising=False)
    password = local_services.registry_password(config.images)
    file = config.images.password_file
    assert len(password) >= 32 and file.read_text() == password + "\n"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert local_services.registry_password(config.images) == password  # made once
    monkeypatch.setenv("STACKYARD_REGISTRY_PASSWORD", "from-env")
    assert local_services.registry_password(config.images) == "from-env"


def openssl(call: Call) -> None:
    """What each openssl call writes."""
    argv = list(call.argv)
    for flag in ("-keyout", "-out"):
        if flag in argv:
            Path(argv[argv.index(flag) + 1]).write_text(flag)


def test_tls_makes_a_ca_once_and_a_server_certificate_for_loopback(tmp_path: Path) -> None:
    fake = FakeRunner().reply("openssl", effect=openssl)
    tls, ca = tmp_path / "tls", tmp_path / "registry" / "ca.crt"
    cert, key = local_services.ensure_tls(tls, ca, runner=fake)
    assert (cert, key) == (tls / "server.crt", tls / "server.key")
    assert [c.argv[1:3] for c in fake.calls] == [("req", "-x509"), ("req", "-newkey"), ("x509", "-req")]
    assert (tls / "server.ext").read_text() == "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    assert local_services.ensure_tls(tls, ca, runner=fake) == (cert, key) and len(fake.calls) == 3  # all there: nothing runs
    cert.unlink()
    local_services.ensure_tls(tls, ca, runner=fake)
    assert [c.argv[1] for c in fake.calls[3:]] == ["req", "x509"]  # the CA stays, the certificate is made again
    (tls / "ca.key").unlink()
    local_services.ensure_tls(tls, ca, runner=fake)
    assert [c.argv[1:3] for c in fake.calls[5:]] == [("req", "-x509"), ("req", "-newkey"), ("x509", "-req")]  # new CA: new cert


def test_the_registry_configuration_serves_tls_with_htpasswd_on_its_address(config: Config, tmp_path: Path) -> None:
    text = local_services.registry_config(config, tmp_path / "htpasswd", tmp_path / "server.crt", tmp_path / "server.key")
    storage = local_services.services_dir(config) / "registry" / "storage"
    assert f"rootdirectory: {storage}\n" in text
    assert f"http:\n  addr: 127.0.0.1:5443\n  tls:\n    certificate: {tmp_path / 'server.crt'}\n    key: {tmp_path / 'server.key'}\n" in text
    assert f"auth:\n  htpasswd:\n    realm: stackyard\n    path: {tmp_path / 'htpasswd'}\n" in text


def test_a_registry_without_a_port_is_on_443(make_config: Callable[..., Config]) -> None:
    config = make_config(extra='[images]\nregistry = "localhost"\n')
    assert local_services._registry_address(config.images) == ("localhost", 443)


def test_the_engine_trusts_the_registry_ca_through_certs_d(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_services, "CERTS_D", tmp_path / "certs.d")
    (tmp_path / "ca.crt").write_text("CA")
    target = local_services.trust_ca("127.0.0.1:5443", tmp_path / "ca.crt")
    assert target == tmp_path / "certs.d" / "127.0.0.1:5443" / "ca.crt" and target.read_text() == "CA"


def test_the_storage_driver_is_auto_unless_configured(make_config: Callable[..., Config]) -> None:
    assert make_config().images.storage_driver == "auto"
    assert make_config(extra='[images]\nstorage_driver = "vfs"\n').images.storage_driver == "vfs"


def test_an_unknown_storage_driver_names_file_key_and_choices(make_config: Callable[..., Config]) -> None:
    from stackyard.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        make_config(extra='[images]\nstorage_driver = "btrfs"\n')
    assert "stackyard.toml: images.storage_driver: 'btrfs' is not one of auto, overlay2, vfs" in str(info.value)


def test_each_storage_driver_has_its_own_data_root(tmp_path: Path) -> None:
    """An overlay2 engine never opens the layers a vfs engine wrote (vfs keeps the historical 'data')."""
    sock = tmp_path / "docker.sock"
    commands = {d: local_services.dockerd_command(sock, tmp_path, d) for d in ("overlay2", "vfs")}
    roots = {d: cmd[cmd.index("--data-root") + 1] for d, cmd in commands.items()}
    assert roots == {"overlay2": str(tmp_path / "data-overlay2"), "vfs": str(tmp_path / "data")}
    assert [cmd[cmd.index("--storage-driver") + 1] for cmd in commands.values()] == ["overlay2", "vfs"]


def test_dockerds_fatal_line_is_the_fallback_reason(tmp_path: Path) -> None:
    log = tmp_path / "dockerd.log"
    log.write_text("old run\nfailed to start daemon: old\n")
    offset = log.stat().st_size
    with log.open("a") as handle:
        handle.write('time="x" level=error msg="failed to mount overlay: invalid argument" storage-driver=overlay2\n'
                     "failed to start daemon: error initializing graphdriver: driver not supported\n")
    assert local_services._dockerd_failure(log, offset) == (
        "failed to start daemon: error initializing graphdriver: driver not supported")
    log.write_text('time="x" level=error msg="boom"\n')
    assert local_services._dockerd_failure(log, 0) == 'time="x" level=error msg="boom"'


def test_an_unknown_driver_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="unknown storage driver 'zfs'"):
        local_services.start_dockerd(tmp_path / "docker.sock", tmp_path, "zfs")
    assert not (tmp_path / "dockerd.log").exists()
