"""The stages' tool calls through a fake runner: what they run, and that every failure is a StackyardError."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from builders import ctl
from stackyard import rootfs
from stackyard.config import Codename, Config, Release
from stackyard.errors import IntegrityError, ToolError
from stackyard.events import Outcome
from stackyard.images import services as local_services
from stackyard.repo import signing
from stackyard.repo.apt import AptRepository
from stackyard.runner import Call
from stackyard.target import Target
from stackyard.wheels import bindep
from stackyard.wheels.sdist_build import BuildEnv
from stackyard.wheels.wheelhouse import ItemResult, publish_wheelhouse
from tests.fakes import FakeRunner

FPR = "0123456789ABCDEF0123456789ABCDEF01234567"
SECRET_KEYS = f"sec:u:3072:1:89ABCDEF01234567:1700000000:::u:::scESC:::+:::23::0:\nfpr:::::::::{FPR}:\n"


def test_htpasswd_gets_the_password_on_stdin_never_on_its_command_line() -> None:
    fake = FakeRunner().reply("htpasswd", stdout="admin:$2y$05$abcdefghijklmnopqrstuv\n")
    assert local_services.htpasswd_line("admin", "s3cret-pw", runner=fake) == "admin:$2y$05$abcdefghijklmnopqrstuv"
    (call,) = fake.calls
    assert call.argv == ("htpasswd", "-niB", "admin")
    assert call.stdin == "s3cret-pw\n" and not any("s3cret-pw" in a for a in call.argv)


def test_a_failing_openssl_is_a_tool_error_with_the_setup_log(tmp_path: Path) -> None:
    fake = FakeRunner().reply("openssl", returncode=1, stderr="unable to write key\n")
    log = tmp_path / "setup.log"
    with pytest.raises(ToolError) as info:
        local_services.ensure_tls(tmp_path / "tls", tmp_path / "ca.crt", log=log, runner=fake)
    assert str(info.value).splitlines() == [f"make the registry CA: openssl exited 1 (log: {log})", "unable to write key"]


def test_the_signing_key_is_made_and_exported_without_binary_output(config: Config) -> None:
    gpg = ("gpg", "--batch", "--no-tty", "--homedir", str(config.repo.gnupg_home))
    fake = FakeRunner().reply(*gpg, "--with-colons", stdout="")  # no key yet ...
    fake.reply(*gpg, "--passphrase", effect=lambda call: fake.reply(*gpg, "--with-colons", stdout=SECRET_KEYS))  # ... made
    fake.reply(*gpg, "--armor", stdout="-----BEGIN PGP")
    key = signing.ensure_signing_key(config.repo, runner=fake)
    assert key.fingerprint == FPR
    assert [c.argv[5] for c in fake.calls] == ["--with-colons", "--passphrase", "--with-colons", "--yes", "--armor"]
    assert fake.calls[3].argv[5:] == ("--yes", "--output", str(key.keyring), "--export", FPR)
    assert key.armored.read_text() == "-----BEGIN PGP"


def test_a_gpg_export_failure_is_a_tool_error_not_a_traceback(config: Config) -> None:
    fake = FakeRunner().reply("gpg", "--batch", "--no-tty", "--homedir", str(config.repo.gnupg_home), "--with-colons",
                              stdout=SECRET_KEYS)
    fake.reply("gpg", "--batch", "--no-tty", "--homedir", str(config.repo.gnupg_home), "--yes", returncode=2,
               stderr="gpg: WARNING: unsafe ownership on homedir\n")
    with pytest.raises(ToolError, match=r"gpg --yes --output failed: gpg exited 2"):
        signing.ensure_signing_key(config.repo, runner=fake)


def test_reprepro_runs_with_the_signing_home_and_fails_naming_the_repo_log(config: Config, release: Release, tmp_path: Path) -> None:
    fake = FakeRunner().reply("gpg", "--batch", "--no-tty", "--homedir", str(config.repo.gnupg_home), "--with-colons",
                              stdout=SECRET_KEYS)
    fake.reply("reprepro", returncode=254, stderr="Error parsing conf/distributions, line 3\n")
    deb = tmp_path / "venv-x_1.0_amd64.deb"
    deb.write_bytes(b"!<arch>\n")
    repo = AptRepository(config, runner=fake)
    with pytest.raises(ToolError) as info:
        repo.publish(release, [deb])
    assert str(info.value).splitlines()[0] == f"reprepro export failed: reprepro exited 254 (log: {repo.log})"
    call = next(c for c in fake.calls if c.argv[0] == "reprepro")
    assert call.env["GNUPGHOME"] == str(config.repo.gnupg_home) and call.env["PIP_CONFIG_FILE"] == os.devnull
    assert not (config.repo.path / "conf" / "distributions").exists()  # the failed write was rolled back


def test_bindep_installs_after_an_apt_update_and_only_then(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    fake = FakeRunner().reply("dpkg-query", stdout="gcc install ok installed\n", returncode=1)
    attempts: list[int] = []
    fake.reply("apt-get", "install", returncode=100, stderr="E: Unable to locate package swig\n",
               effect=lambda call: attempts.append(1))
    fake.reply("apt-get", "update", effect=lambda call: fake.reply("apt-get", "install"))
    assert bindep.ensure_installed(["gcc", "swig"], tmp_path / "bindep.txt", runner=fake) == ["swig"]
    assert [c.argv[:2] for c in fake.calls] == [("dpkg-query", "-W"), ("apt-get", "install"), ("apt-get", "update"),
                                               ("apt-get", "install")]
    assert all(c.env["DEBIAN_FRONTEND"] == "noninteractive" for c in fake.calls[1:])


def test_bindep_names_the_packages_when_apt_cannot_install_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    fake = FakeRunner().reply("dpkg-query", returncode=1)
    fake.reply("apt-get", "install", returncode=100, stderr="E: Unable to locate package swig\n")
    fake.reply("apt-get", "update", returncode=100, stderr="E: no network\n")
    with pytest.raises(ToolError) as info:
        bindep.ensure_installed(["swig"], tmp_path / "bindep.txt", runner=fake)
    assert str(info.value).splitlines() == [f"apt-get could not install swig (from {tmp_path / 'bindep.txt'}): apt-get exited 100",
                                            "E: Unable to locate package swig"]


def _tarball(path: Path) -> Path:
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("etc")
        info.type = tarfile.DIRTYPE
        tf.addfile(info)
        data = b"ok\n"
        f = tarfile.TarInfo("etc/hostname")
        f.size = len(data)
        tf.addfile(f, io.BytesIO(data))
    return path


def test_a_failed_mount_is_a_tool_error_and_the_root_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Path] = []
    real_mkdtemp = rootfs.tempfile.mkdtemp
    monkeypatch.setattr(rootfs.tempfile, "mkdtemp", lambda **kw: made.append(Path(real_mkdtemp(dir=tmp_path, **kw))) or str(made[-1]))
    fake = FakeRunner().reply("mount", "-t", "sysfs", returncode=32, stderr="mount: permission denied\n")
    log = tmp_path / "smoke.log"
    with pytest.raises(ToolError, match=r"mounting sysfs in the test root: mount exited 32"):
        with rootfs.fresh_root(_tarball(tmp_path / "root.tar"), log, runner=fake):
            pass
    assert [c.argv[0] for c in fake.calls] == ["mount", "mount", "umount"]  # proc mounted, sysfs failed, proc unmounted
    assert not made[0].exists()


def test_commands_in_the_root_get_its_own_environment(tmp_path: Path) -> None:
    fake = FakeRunner().reply("chroot", returncode=3, stdout="kaboom\n")
    root = rootfs.Root(tmp_path, tmp_path / "smoke.log", fake)
    r = root.run("tinyapp --version", check=False)
    assert r.returncode == 3 and r.stdout == "kaboom\n"
    (call,) = fake.calls
    assert call.argv == ("chroot", str(tmp_path), "/bin/sh", "-c", "tinyapp --version")
    assert call.env["PATH"].startswith("/usr/local/sbin") and call.env["DEBIAN_FRONTEND"] == "noninteractive"
    assert "HOSTNAME" not in call.env and "VIRTUAL_ENV" not in call.env  # nothing from the host
    with pytest.raises(ToolError, match=r"in the test root: 'false' exited 3:\nkaboom"):
        root.run("false")


def test_a_failed_mmdebstrap_leaves_no_tarball(tmp_path: Path) -> None:
    def partial(call: Call) -> None:
        Path(call.argv[-2]).write_bytes(b"partial")

    fake = FakeRunner().reply("mmdebstrap", returncode=1, stdout="E: cannot reach the mirror\n", effect=partial)
    log = tmp_path / "smoke.log"
    codename = Codename("bookworm", "3.11", "2.36", "http://deb.debian.org/debian")
    with pytest.raises(ToolError) as info:
        rootfs.rootfs_tarball(tmp_path / "cache", codename, log, runner=fake)
    assert str(info.value).splitlines() == [
        f"mmdebstrap could not make a bookworm root from http://deb.debian.org/debian: mmdebstrap exited 1 (log: {log})",
        "E: cannot reach the mirror"]
    assert list((tmp_path / "cache" / "rootfs").iterdir()) == []


def test_a_failed_wheel_build_is_a_tool_error_with_its_log(tmp_path: Path, bookworm: Target) -> None:
    fake = FakeRunner().reply(str(tmp_path / "cache" / "buildenv"), returncode=1, stdout="error: command 'gcc' failed\n")
    env = BuildEnv(tmp_path / "cache", "/usr/bin/python3", bookworm, "https://i/simple", "https://t/simple", runner=fake)
    env.path.mkdir(parents=True)
    (env.path / ".ready").write_text("")
    sdist = tmp_path / "tinyext-1.0.tar.gz"
    sdist.write_bytes(b"")
    log = tmp_path / "logs" / "tinyext-1.0.log"
    fake.reply(str(env.python), returncode=1, stdout="error: command 'gcc' failed\n")
    with pytest.raises(ToolError) as info:
        env.build(str(sdist), log, isolated=False)
    assert str(info.value).splitlines() == [f"building a wheel from tinyext-1.0.tar.gz failed: python exited 1 (log: {log})",
                                            "error: command 'gcc' failed"]
    (call,) = fake.calls
    assert call.env["CFLAGS"] == "-g0" and "PYTHONPATH" not in call.env and call.env["PIP_NO_INPUT"] == "1"
    assert log.read_text().endswith("error: command 'gcc' failed\n[exit 1; 0.0 s]\n")
    fake.reply(str(env.python), "-c", stdout=json.dumps({"Setuptools": "75.8.0"}))
    assert env.installed() == {"setuptools": "75.8.0"}


def test_publishing_a_wheelhouse_with_an_unhashed_wheel_is_an_integrity_error(tmp_path: Path, release: Release,
                                                                                bookworm: Target) -> None:
    items = [ItemResult("six", "1.16.0", Outcome.FETCHED, 0.1, frozenset(), filename="six-1.16.0-py2.py3-none-any.whl")]
    with pytest.raises(IntegrityError, match="no sha256 recorded for six-1.16.0-py2.py3-none-any.whl"):
        publish_wheelhouse(tmp_path / "wh", release, bookworm, items, {})
    assert not (tmp_path / ".generations").exists()


def test_the_worker_password_goes_into_buildbot_tac_not_onto_a_command_line(tmp_path: Path) -> None:
    wdir = tmp_path / "workers" / "local"

    def create(call: Call) -> None:  # what buildbot-worker create-worker writes
        wdir.mkdir(parents=True)
        (wdir / "buildbot.tac").write_text(f"workername = 'local'\npasswd = {call.argv[-1]!r}\nkeepalive = 600\n")

    fake = FakeRunner().reply("buildbot-worker", "create-worker", effect=create)
    assert ctl.needs_password(wdir)
    ctl.create_worker(wdir, "localhost:9989", "local", "pw'with-quote", {}, tmp_path / "ctl.log", runner=fake)
    (call,) = fake.calls
    assert "pw'with-quote" not in " ".join(call.argv) and call.argv[-1] == ctl.PLACEHOLDER
    tac = wdir / "buildbot.tac"
    assert "passwd = \"pw'with-quote\"\n" in tac.read_text() and stat.S_IMODE(tac.stat().st_mode) == 0o600
    assert not ctl.needs_password(wdir)
    assert "pw'with-quote" not in (tmp_path / "ctl.log").read_text()
