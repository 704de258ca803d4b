"""The smoke test's decisions, in a fake root: which checks run for a recipe, the --version check,
leftovers after the purge, the recorded verdict (no process runs: chroot, mount, gpg, mmdebstrap are answered)."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Callable

import pytest

from stackyard import load_check
from stackyard.config import Config, Release
from stackyard.debs.record import DebRecord, write
from stackyard.debs.record import smoke_passed as passed
from stackyard.debs.smoke import SmokeTestError, signed_flat_repo, smoke_test
from stackyard.recipes import Recipe, load_recipe
from stackyard.runner import Call, Completed
from tests.deb_workspace import sha, smoke_runner
from tests.fake_repo import FPR
from tests.fakes import FakeRunner


class RootRunner(FakeRunner):
    """A FakeRunner whose chroot commands are answered by what the shell command contains (the latest match wins)."""

    def __init__(self) -> None:
        super().__init__()
        self.in_root: list[tuple[str, Completed, Callable[[Path], None] | None]] = []

    def on(self, fragment: str, *, returncode: int = 0, stdout: str = "",
           effect: Callable[[Path], None] | None = None) -> RootRunner:
        self.in_root.append((fragment, Completed(returncode, stdout), effect))
        return self

    def commands(self) -> list[str]:
        return [c.argv[-1] for c in self.calls if c.argv[0] == "chroot"]

    def spawn(self, call: Call, sink: object) -> Completed:
        if call.argv[0] != "chroot":
            return super().spawn(call, sink)  # type: ignore[arg-type]
        self.calls.append(call)
        for fragment, done, effect in reversed(self.in_root):
            if fragment in call.argv[-1]:
                if effect is not None:
                    effect(Path(call.argv[1]))
                return done
        return Completed(0)


@pytest.fixture
def runner(config: Config) -> RootRunner:
    fake = RootRunner()
    smoke_runner(config, fake)
    return fake


@pytest.fixture
def deb(config: Config, release: Release) -> Path:
    out = config.paths.output / "debs" / release.id
    out.mkdir(parents=True)
    file = out / "venv-tiny_1.2.0-2025.1.1_amd64.deb"
    file.write_bytes(b"!<arch>\nthe package\n")
    write(file, DebRecord("venv-tiny", "1.2.0-2025.1.1", sha(file.read_bytes()), ("W: x",), inputs="i" * 64))
    return file


def recipe(make_recipe: Callable[..., Path], body: str = "") -> Recipe:
    return load_recipe(make_recipe("tiny", textwrap.dedent("""\
        name: tiny
        source: {pypi: tiny}
        versions: {"2025.1": "1.2.0"}
        console_scripts: [tiny-manage]
        smoke: ["tiny-manage --version"]
        """) + textwrap.dedent(body)))


def test_a_plain_project_is_installed_run_linked_and_purged(config: Config, release: Release, deb: Path,
                                                           runner: RootRunner, make_recipe: Callable[..., Path]) -> None:
    runner.on("tiny-manage --version", stdout="tiny-manage 1.2.0\n")
    result = smoke_test(config, release, recipe(make_recipe), deb, runner=runner)
    assert result.findings == ("apt installs it", "smoke: tiny-manage --version", "every extension module of the venv loads",
                             "/usr/bin/tiny-manage -> /opt/openstack/tiny/bin/tiny-manage", "system user tiny", "purge",
                             "purge leaves nothing behind")
    assert result.package == "venv-tiny" and result.version == "1.2.0-2025.1.1"
    commands = runner.commands()
    assert commands[:2] == ["apt-get update -q", "apt-get install -y -q --no-install-recommends venv-tiny"]
    assert commands[2] == "cd / && runuser -u tiny -- tiny-manage --version"  # as the service user
    assert commands[3] == ("cd / && runuser -u tiny -- /opt/openstack/tiny/bin/python /tmp/stackyard-load-check.py "
                           "--strict /opt/openstack/tiny")
    assert commands[-1] == "SUDO_FORCE_REMOVE=yes apt-get purge -y -q --autoremove venv-tiny"
    assert not any("systemd-analyze" in c or "visudo" in c for c in commands)


def test_the_verdict_is_recorded_beside_the_deb_and_binds_its_bytes(config: Config, release: Release, deb: Path,
                                                                  runner: RootRunner, make_recipe: Callable[..., Path]) -> None:
    runner.on("--version", stdout="1.2.0\n")
    assert not passed(deb)
    result = smoke_test(config, release, recipe(make_recipe), deb, runner=runner)
    record = json.loads((deb.parent / f"{deb.name}.json").read_text())
    assert (record["schema"], record["kind"]) == (1, "venv-deb")
    assert record["smoke"]["passed"] and record["smoke"]["checks"] == list(result.findings)
    assert record["lintian_warnings"] == ["W: x"]  # what the build recorded stays
    assert passed(deb)
    deb.write_bytes(b"!<arch>\nanother build\n")
    assert not passed(deb)  # the verdict was for other bytes


def test_passed_is_false_without_a_readable_record(tmp_path: Path) -> None:
    deb = tmp_path / "venv-x_1_amd64.deb"
    deb.write_bytes(b"x")
    assert not passed(deb)
    (tmp_path / "venv-x_1_amd64.deb.json").write_text("{not json")
    assert not passed(deb)


def test_services_apis_rootwrap_and_privsep_add_their_checks(config: Config, release: Release, deb: Path,
                                                             runner: RootRunner, make_recipe: Callable[..., Path]) -> None:
    runner.on("--version", stdout="1.2.0")
    body = """\
        rootwrap: true
        privsep: true
        services:
          - {name: tiny-worker, command: tiny-worker --config-file /etc/tiny/tiny.conf, description: worker}
        apis:
          - {name: tiny-api, module: "tiny.wsgi:application", port: 8080, description: API}
        """
    result = smoke_test(config, release, recipe(make_recipe, body), deb, runner=runner)
    assert result.findings[5:] == (
        "unit tiny-worker.service", "unit tiny-api.service", "uwsgi ini /etc/tiny/tiny-api-uwsgi.ini",
        "visudo -c /etc/sudoers.d/tiny", "rootwrap.conf exec_dirs starts with the venv's bin", "purge",
        "purge leaves nothing behind")
    commands = runner.commands()
    assert ("test -f /lib/systemd/system/tiny-api.service && systemd-analyze verify /lib/systemd/system/tiny-api.service"
            in commands)
    assert ("grep -qx 'virtualenv = /opt/openstack/tiny' /etc/tiny/tiny-api-uwsgi.ini && "
            "grep -qx 'module = tiny.wsgi:application' /etc/tiny/tiny-api-uwsgi.ini") in commands
    assert "grep -q '^exec_dirs=/opt/openstack/tiny/bin,' /etc/tiny/rootwrap.conf" in commands
    assert any('stat -c %a /etc/sudoers.d/tiny)" = 440' in c for c in commands)  # sudoers must be 0440


def test_privsep_alone_checks_sudoers_but_not_rootwrap(config: Config, release: Release, deb: Path,
                                                       runner: RootRunner, make_recipe: Callable[..., Path]) -> None:
    runner.on("--version", stdout="1.2.0")
    result = smoke_test(config, release, recipe(make_recipe, "privsep: true\n"), deb, runner=runner)
    assert "visudo -c /etc/sudoers.d/tiny" in result.findings
    assert not any("rootwrap" in c for c in result.findings)


def test_a_version_command_must_print_the_upstream_version(config: Config, release: Release, deb: Path,
                                                           runner: RootRunner, make_recipe: Callable[..., Path]) -> None:
    runner.on("--version", stdout="tiny-manage 1.1.9\n")
    with pytest.raises(SmokeTestError, match=r"printed 'tiny-manage 1.1.9', not the upstream version 1.2.0"):
        smoke_test(config, release, recipe(make_recipe), deb, runner=runner)
    assert not passed(deb)


def test_other_smoke_commands_are_judged_by_their_exit_status_only(config: Config, release: Release, deb: Path,
                                                                  runner: RootRunner, make_recipe: Callable[..., Path]) -> None:
    rec = load_recipe(make_recipe("tiny", """\
        name: tiny
        source: {pypi: tiny}
        versions: {"2025.1": "1.2.0"}
        smoke: ["tiny-manage help"]
        """))
    runner.on("tiny-manage help", stdout="usage: whatever\n")
    assert "smoke: tiny-manage help" in smoke_test(config, release, rec, deb, runner=runner).findings
    runner.on("tiny-manage help", returncode=2, stdout="Traceback: ImportError: no module named pymysql\n")
    with pytest.raises(SmokeTestError) as info:
        smoke_test(config, release, rec, deb, runner=runner)
    assert str(info.value).startswith("smoke: tiny-manage help: 'cd / && runuser -u tiny -- tiny-manage help' exited 2:\n"
                                      "Traceback: ImportError")
    assert info.value.hint is not None and info.value.hint.startswith("see ")


def test_a_module_of_the_venv_that_does_not_load_fails_the_test(config: Config, release: Release, deb: Path,
                                                                runner: RootRunner, make_recipe: Callable[..., Path]) -> None:
    seen: list[str] = []
    runner.on("--version", stdout="1.2.0").on("stackyard-load-check.py", returncode=1, stdout=(
        "does not load: lib/python3.11/site-packages/ldap/_ldap.cpython-311-x86_64-linux-gnu.so: "
        "libldap-2.5.so.0: cannot open shared object file\n1 extension modules, 1 that do not load\n"),
        effect=lambda root: seen.append((root / "tmp/stackyard-load-check.py").read_text()))
    with pytest.raises(SmokeTestError) as info:
        smoke_test(config, release, recipe(make_recipe), deb, runner=runner)
    assert str(info.value).startswith("every extension module of the venv loads: ")
    assert "_ldap.cpython-311-x86_64-linux-gnu.so: libldap-2.5.so.0: cannot open shared object file" in str(info.value)
    assert seen == [Path(load_check.__file__).read_text()]  # the checker the root ran is the project's
    assert not passed(deb)


def test_a_package_apt_cannot_install_fails_before_anything_runs(config: Config, release: Release, deb: Path,
                                                                 runner: RootRunner, make_recipe: Callable[..., Path]) -> None:
    runner.on("apt-get install", returncode=100, stdout="E: Unable to locate package venv-tiny")
    with pytest.raises(SmokeTestError, match="apt installs it: .* exited 100"):
        smoke_test(config, release, recipe(make_recipe), deb, runner=runner)
    assert not any("runuser" in c for c in runner.commands())


def test_what_the_purge_leaves_behind_fails_the_test_but_apts_own_state_does_not(
        config: Config, release: Release, deb: Path, runner: RootRunner, make_recipe: Callable[..., Path]) -> None:
    def install(root: Path) -> None:
        for rel in ("opt/openstack/tiny/bin/tiny-manage", "etc/tiny/tiny.conf", "var/lib/dpkg/info/venv-tiny.list",
                    "var/log/tiny/tiny.log"):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text("x")

    def purge(root: Path) -> None:
        shutil.rmtree(root / "opt")  # etc/tiny stays behind; dpkg's database and logs are not the package's

    runner.on("--version", stdout="1.2.0").on("apt-get install", effect=install).on("apt-get purge", effect=purge)
    with pytest.raises(SmokeTestError) as info:
        smoke_test(config, release, recipe(make_recipe), deb, runner=runner)
    assert str(info.value).startswith("purging venv-tiny left 2 paths behind: /etc/tiny, /etc/tiny/tiny.conf")

    def purge_all(root: Path) -> None:
        purge(root)
        shutil.rmtree(root / "etc/tiny")

    runner.on("apt-get purge", effect=purge_all)
    assert smoke_test(config, release, recipe(make_recipe), deb, runner=runner).findings[-1] == "purge leaves nothing behind"


def test_the_test_repository_is_indexed_and_signed_with_the_repository_key(config: Config, tmp_path: Path,
                                                                           runner: RootRunner) -> None:
    from stackyard.repo.signing import ensure_signing_key

    key = ensure_signing_key(config.repo, runner=runner)
    deb = tmp_path / "venv-tiny_1_amd64.deb"
    deb.write_bytes(b"deb")
    into = tmp_path / "flat"
    signed_flat_repo([deb], key, into, runner=runner)
    assert (into / deb.name).read_bytes() == b"deb"
    assert (into / "Packages").read_text() == "Package: venv-x\n"
    assert (into / "Release").read_text() == "Origin: test\n"
    sign = runner.calls[-1]
    assert sign.argv[5:] == ("--yes", "--local-user", FPR, "--clearsign", "--output", str(into / "InRelease"),
                             str(into / "Release"))
    assert [c.cwd for c in runner.calls if c.argv[0] in ("dpkg-scanpackages", "apt-ftparchive")] == [into, into]
