"""venv debs of the tiny fixture project through the whole second stage:
dh-virtualenv, lintian, smoke test in a clean root, reprepro staging and
promotion with a real GPG key, and apt installing from the signed repository."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from stackyard.config import load_config
from stackyard.debs.lintian_overrides import unscoped
from stackyard.rootfs import fresh_root, rootfs_tarball
from tests.conftest import Workspace
from tests.fixtures.index_server import IndexServer
from tests.integration.conftest import make_workspace

pytestmark = pytest.mark.integration


def prepare(ws: Workspace, release: str = "2025.1") -> None:
    ws.run("lock", "--release", release, "tinyapp")
    ws.run("wheels", "--release", release, "tinyapp")


def deb_file(ws: Workspace, version: str, release: str = "2025.1") -> Path:
    return ws.root / "var" / "debs" / release / f"venv-tinyapp_{version}_amd64.deb"


# what an OpenStack service's recipe adds: a WSGI API (uwsgi unit + ini), rootwrap and privsep
# through sudo, checked by the smoke test as the service user
SERVICE_RECIPE = """\
apis:
  - name: tinyapp-api
    module: tinyapp.wsgi:application
    port: 18181
    description: tiny fixture API
rootwrap: true
privsep: true
"""
SERVICE_SMOKE = """\
  - sudo -n tinyapp-rootwrap /etc/tinyapp/rootwrap.conf id -u
  - sudo -n privsep-helper
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, index: IndexServer, shared_cache: Path) -> Workspace:
    ws = make_workspace(tmp_path_factory.mktemp("debs") / "ws", index.url, shared_cache)
    recipe = ws.root / "recipes" / "tinyapp.yaml"
    text = recipe.read_text().replace("console_scripts: [tinyapp]", "console_scripts: [tinyapp, tinyapp-rootwrap]")
    recipe.write_text(text.replace("smoke:\n", "smoke:\n" + SERVICE_SMOKE) + SERVICE_RECIPE)
    prepare(ws)
    r = ws.run("deb", "--release", "2025.1", "tinyapp")
    assert "passed (" in r.stdout, r.stdout + r.stderr
    return ws


@pytest.fixture
def ws(built: Workspace, tmp_path: Path) -> Workspace:
    """A private copy of the built workspace for tests that change things."""
    root = tmp_path / "ws"
    shutil.copytree(built.root, root, symlinks=True)
    return Workspace(root)


def dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], capture_output=True, text=True, check=True).stdout


def test_the_package_layout(built: Workspace) -> None:
    deb = deb_file(built, "1.0-2025.1.1")
    listing = dpkg_deb("-c", str(deb))
    for path in ("./opt/openstack/tinyapp/bin/tinyapp", "./opt/openstack/tinyapp/bin/python",
                 "./lib/systemd/system/tinyapp-service.service", "./etc/tinyapp/tinyapp.conf",
                 "./usr/lib/tmpfiles.d/venv-tinyapp.conf", "./etc/logrotate.d/venv-tinyapp",
                 "./lib/systemd/system/tinyapp-api.service", "./etc/tinyapp/tinyapp-api-uwsgi.ini",
                 "./etc/tinyapp/rootwrap.d/tinyapp.filters", "./opt/openstack/tinyapp/etc/tinyapp/api-paste.ini"):
        assert path in listing, path
    assert re.search(r"-r--r----- root/root .* \./etc/sudoers\.d/tinyapp\n", listing), listing
    assert re.search(r"\./usr/bin/tinyapp -> /opt/openstack/tinyapp/bin/tinyapp", listing)
    assert "tinyext/_speed.cpython-311-x86_64-linux-gnu.so" in listing
    assert ".pyc" not in listing  # byte-code is compiled in postinst
    assert "/site-packages/pip/" not in listing and "/bin/pip" not in listing
    fields = dpkg_deb("-f", str(deb), "Package", "Version", "Depends")
    assert "Version: 1.0-2025.1.1" in fields
    # the extension links nothing but the interpreter; the API needs uwsgi, rootwrap and privsep sudo
    assert "Depends: python3.11, adduser, uwsgi-core, uwsgi-plugin-python3, sudo" in fields
    control = Path(subprocess.run(["mktemp", "-d"], capture_output=True, text=True).stdout.strip())
    subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
    assert sorted((control / "conffiles").read_text().split()) == [
        "/etc/logrotate.d/venv-tinyapp", "/etc/sudoers.d/tinyapp", "/etc/tinyapp/api-paste.ini", "/etc/tinyapp/rootwrap.conf",
        "/etc/tinyapp/rootwrap.d/tinyapp.filters", "/etc/tinyapp/tinyapp-api-uwsgi.ini", "/etc/tinyapp/tinyapp.conf"]
    rootwrap = subprocess.run(f"dpkg-deb --fsys-tarfile {deb} | tar -xO ./etc/tinyapp/rootwrap.conf", shell=True,
                              capture_output=True, text=True, check=True).stdout
    assert "exec_dirs=/opt/openstack/tinyapp/bin,/sbin,/usr/sbin,/bin,/usr/bin" in rootwrap
    shutil.rmtree(control)


def lintian_with_overrides(deb: Path) -> str:
    r = subprocess.run(["lintian", "--display-info", "--show-overrides", "--tag-display-limit", "0", str(deb)],
                       capture_output=True, text=True)
    return r.stdout


def test_every_lintian_override_is_scoped_and_used_and_lintian_reports_no_error(ws: Workspace) -> None:
    deb = deb_file(ws, "1.0-2025.1.1")
    record = json.loads(deb.with_name(f"{deb.name}.json").read_text())
    assert not [w for w in record["lintian_warnings"] if "override" in w], record["lintian_warnings"]
    shipped = subprocess.run(f"dpkg-deb --fsys-tarfile {deb} | tar -xO ./usr/share/lintian/overrides/venv-tinyapp",
                             shell=True, capture_output=True, text=True, check=True).stdout
    lines = [line for line in shipped.splitlines() if line and not line.startswith("#")]
    assert all(unscoped(line) is None for line in lines), lines
    # what this venv has: /opt, its console scripts' interpreter, tinyext's .so (no netaddr, no osprofiler, ...)
    assert sorted(line.split()[1] for line in lines) == [
        "dir-or-file-in-opt", "dir-or-file-in-opt", "unstripped-binary-or-object", "unusual-interpreter"]
    out = lintian_with_overrides(deb)
    assert not re.search(r"(?m)^E: ", out) and "unused-override" not in out and "mismatched-override" not in out, out
    for tag in ("dir-or-file-in-opt", "unstripped-binary-or-object", "unusual-interpreter"):
        assert f"O: venv-tinyapp: {tag} " in out, out  # each override silences what it names
    ws.run("wheels-deb", "--release", "2025.1")
    (wheels,) = (ws.root / "var/debs/2025.1").glob("openstack-wheels-2025.1_*.deb")
    out = lintian_with_overrides(wheels)
    assert not re.search(r"(?m)^[EO]: ", out) and "override" not in out, out  # it needs and ships none


def test_rebuilding_the_same_inputs_gives_the_same_file(ws: Workspace, tmp_path: Path) -> None:
    first = deb_file(ws, "1.0-2025.1.1")
    kept = tmp_path / first.name
    shutil.copy(first, kept)
    shutil.rmtree(ws.root / "var" / "build")
    r = ws.run("deb", "--release", "2025.1", "--no-smoke", "tinyapp")
    assert re.search(r"venv-tinyapp\s+1\.0-2025\.1\.1\s+unchanged\s+\d+\s+passed before", r.stdout), r.stdout
    assert "unchanged, venv-tinyapp_1.0-2025.1.1_amd64.deb stands" in r.stderr and "dpkg-buildpackage" not in r.stderr
    r = ws.run("deb", "--release", "2025.1", "--no-smoke", "--rebuild", "tinyapp")
    assert re.search(r"venv-tinyapp\s+1\.0-2025\.1\.1\s+same\s", r.stdout), r.stdout  # no new changelog entry
    assert first.read_bytes() == kept.read_bytes()  # built again: the same bytes


def test_a_changed_lock_bumps_the_revision_with_a_changelog_entry(ws: Workspace) -> None:
    ws.uc().write_text("tinyext===1.0\ntinypure===1.1\n")
    prepare(ws)
    ws.run("deb", "--release", "2025.1", "--no-smoke", "tinyapp")
    deb = deb_file(ws, "1.0-2025.1.2")
    changelog = subprocess.run(f"dpkg-deb --fsys-tarfile {deb} | tar -xO ./usr/share/doc/venv-tinyapp/changelog.Debian.gz | zcat",
                               shell=True, capture_output=True, text=True, check=True).stdout
    assert changelog.startswith("venv-tinyapp (1.0-2025.1.2) bookworm-2025.1;")
    assert "Rebuild of 1.0 with a changed lock." in changelog and "(1.0-2025.1.1)" in changelog
    subprocess.run(["dpkg", "--compare-versions", "1.0-2025.1.2", "gt", "1.0-2025.1.1"], check=True)


def apt_config(ws: Workspace, release: str, root: Path) -> None:
    """The operator's sources, pin and keyring, written by 'stackyard apt-config --output' into ``root``."""
    for old in (root / "etc/apt/sources.list.d").glob("stackyard-*.sources"):
        old.unlink()
    ws.run("apt-config", "--release", release, "--url", "file:/srv/repo", "--output", str(root))


def test_publish_promote_and_install_from_the_signed_repository_then_upgrade_to_the_next_release(
    ws: Workspace, tmp_path: Path
) -> None:
    out = ws.run("publish", "--release", "2025.1", "tinyapp").stdout
    assert re.search(r"bookworm-2025\.1-staging\s+venv-tinyapp\s+1\.0-2025\.1\.1", out)
    inrelease = ws.root / "var/repo/dists/bookworm-2025.1-staging/InRelease"
    assert "BEGIN PGP SIGNED MESSAGE" in inrelease.read_text()
    r = ws.run("puppet-data", "--release", "2025.1", check=False)  # nothing promoted yet
    assert r.returncode == 2 and "stackyard promote --release 2025.1" in r.stderr
    ws.run("promote", "--release", "2025.1", "--force", "fixture: tinyapp runs no control plane")
    assert re.search(r"bookworm-2025\.1/snapshots/\d{8}T\d{6}Z", "\n".join(
        str(p) for p in (ws.root / "var/repo/dists").glob("bookworm-2025.1/snapshots/*")))
    ws.run("puppet-data", "--release", "2025.1")
    assert "venv-tinyapp: 1.0-2025.1.1" in (ws.root / "var/puppet/2025.1.yaml").read_text()

    prepare(ws, "2025.2")
    ws.run("deb", "--release", "2025.2", "tinyapp")
    ws.run("publish", "--release", "2025.2", "tinyapp")
    ws.run("promote", "--release", "2025.2", "tinyapp", "--force", "fixture: tinyapp runs no control plane")

    config = load_config(ws.config)
    log = tmp_path / "client.log"
    with fresh_root(rootfs_tarball(config.paths.cache, config.codenames["bookworm"], log), log) as root:
        shutil.copytree(ws.root / "var" / "repo", root.path / "srv" / "repo", symlinks=True)
        apt_config(ws, "2025.1", root.path)
        out = root.run(textwrap.dedent("""\
            apt-get update -q
            apt-get install -y -q venv-tinyapp
            dpkg-query -W -f='installed ${Version}\\n' venv-tinyapp
            tinyapp
            """)).stdout
        assert "installed 1.0-2025.1.1" in out and "2+3 = 5" in out
        apt_config(ws, "2025.2", root.path)
        out = root.run(textwrap.dedent("""\
            apt-get update -q
            apt-get install -y -q --only-upgrade venv-tinyapp
            dpkg-query -W -f='upgraded ${Version}\\n' venv-tinyapp
            tinyapp --version
            """)).stdout
        assert "upgraded 1.2-2025.2.1" in out and "tinyapp 1.2" in out


def test_a_recipe_naming_a_missing_console_script_fails_and_publishes_nothing(ws: Workspace) -> None:
    recipe = ws.root / "recipes" / "tinyapp.yaml"
    recipe.write_text(recipe.read_text().replace("console_scripts: [tinyapp, ", "console_scripts: [tinyapp, tinyctl, "))
    shutil.rmtree(ws.root / "var" / "debs" / "2025.1" / "changelogs")
    before = sorted(p.name for p in (ws.root / "var" / "debs" / "2025.1").glob("*.deb"))
    r = ws.run("deb", "--release", "2025.1", "tinyapp", check=False)
    assert r.returncode == 2, r.stderr
    assert "does not provide tinyctl in /opt/openstack/tinyapp/bin" in r.stderr
    assert sorted(p.name for p in (ws.root / "var" / "debs" / "2025.1").glob("*.deb")) == before


def test_a_failing_smoke_test_shows_its_output_and_blocks_publication(ws: Workspace) -> None:
    recipe = ws.root / "recipes" / "tinyapp.yaml"
    recipe.write_text(recipe.read_text().replace("  - tinyapp --version", "  - tinyapp --version\n  - sh -c 'echo kaboom; exit 3'"))
    ws.uc().write_text("tinyext===1.0\ntinypure===1.1\n")  # a new build, so no earlier verdict applies
    prepare(ws)
    r = ws.run("deb", "--release", "2025.1", "tinyapp", check=False)
    assert r.returncode == 5, r.stderr
    assert "kaboom" in r.stderr and "exited 3" in r.stderr
    p = ws.run("publish", "--release", "2025.1", "tinyapp", check=False)
    assert p.returncode == 2 and "has not passed its smoke test" in p.stderr
    assert not (ws.root / "var" / "repo" / "db").exists()


def test_a_wheel_missing_from_the_wheelhouse_is_named_with_its_lock_line(ws: Workspace) -> None:
    wheelhouse = ws.wheelhouse().resolve()
    manifest = wheelhouse / "manifest.json"
    data = json.loads(manifest.read_text())
    data["wheels"] = [w for w in data["wheels"] if w["name"] != "tinypure"]
    manifest.write_text(json.dumps(data))
    r = ws.run("deb", "--release", "2025.1", "--no-smoke", "tinyapp", check=False)
    assert r.returncode == 2, r.stderr
    lock = ws.root / "requirements/2025.1/locks/tinyapp.txt"
    line = next(i for i, text in enumerate(lock.read_text().splitlines(), 1) if text.startswith("tinypure=="))
    assert f"tinypure==1.0 ({lock}:{line}) has no wheel in" in r.stderr


def test_a_wheel_whose_hash_changed_is_refused(ws: Workspace) -> None:
    wheel = next(ws.wheelhouse().resolve().glob("tinypure-*.whl"))
    wheel.unlink()
    wheel.write_bytes(b"tampered")
    r = ws.run("deb", "--release", "2025.1", "--no-smoke", "tinyapp", check=False)
    assert r.returncode == 4 and "sha256 differs from the wheelhouse manifest" in r.stderr


def test_no_signing_key_and_a_stale_reprepro_lock_leave_the_repository_as_it_was(ws: Workspace) -> None:
    ws.run("publish", "--release", "2025.1", "tinyapp")
    inrelease = ws.root / "var/repo/dists/bookworm-2025.1-staging/InRelease"
    before = inrelease.read_bytes()

    config = ws.config.read_text()
    ws.config.write_text(config.replace('path = "var/repo"', 'path = "var/repo"\nsigning_key = "0123456789ABCDEF"'))
    r = ws.run("publish", "--release", "2025.1", "tinyapp", check=False)
    assert r.returncode == 6 and "signing key 0123456789ABCDEF has no secret key" in r.stderr
    ws.config.write_text(config)

    (ws.root / "var/repo/db/lockfile").write_text("")
    r = ws.run("publish", "--release", "2025.1", "tinyapp", check=False)
    assert r.returncode == 6 and f"rm {ws.root / 'var/repo/db/lockfile'}" in r.stderr
    assert inrelease.read_bytes() == before


def test_concurrent_publishes_wait_for_each_other(ws: Workspace) -> None:
    import sys

    cmd = [sys.executable, "-m", "stackyard", "--config", str(ws.config), "publish", "--release", "2025.1", "tinyapp"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [p.communicate() + (p.returncode,) for p in procs]
    assert [rc for _, _, rc in results] == [0, 0, 0], results
    listed = ws.run("publish", "--release", "2025.1", "tinyapp").stdout
    assert listed.count("venv-tinyapp") == 1


def test_changed_packaging_bumps_the_revision(ws: Workspace) -> None:
    recipe = ws.root / "recipes" / "tinyapp.yaml"
    recipe.write_text(recipe.read_text().replace("description: a tiny fixture project", "description: a tiny fixture app"))
    r = ws.run("deb", "--release", "2025.1", "--no-smoke", "tinyapp")
    assert "1.0-2025.1.2" in r.stdout and "new" in r.stdout
    assert "Rebuild of 1.0 with changed packaging." in (ws.root / "var/debs/2025.1/changelogs/venv-tinyapp.changelog").read_text()


def test_publish_takes_the_wheels_deb_along_and_a_failure_part_way_restores_the_indexes(ws: Workspace) -> None:
    ws.run("wheels-deb", "--release", "2025.1")
    out = ws.run("publish", "--release", "2025.1").stdout
    assert "openstack-wheels-2025.1" in out and "venv-tinyapp" in out
    again = ws.run("publish", "--release", "2025.1", "tinyapp").stdout  # the wheels deb is there: not added twice
    assert "published 1 packages" in again, again
    inrelease = ws.root / "var/repo/dists/bookworm-2025.1-staging/InRelease"
    before = inrelease.read_bytes()

    ws.uc().write_text("tinyext===1.0\ntinypure===1.1\n")  # a new, tested venv-tinyapp ...
    prepare(ws)
    ws.run("deb", "--release", "2025.1", "tinyapp")
    ws.run("wheels-deb", "--release", "2025.1")
    wheels_deb = next((ws.root / "var/debs/2025.1").glob("openstack-wheels-2025.1_*.2_*.deb"))
    wheels_deb.write_bytes(b"!<arch>\nnot a package\n")  # ... and the new wheels deb damaged after it
    r = ws.run("publish", "--release", "2025.1", check=False)
    assert r.returncode == 6, r.stderr
    assert inrelease.read_bytes() == before
    listing = ws.run("promote", "--release", "2025.1", "tinyapp", "--force", "fixture: tinyapp runs no control plane").stdout  # staging still has the old one
    assert re.search(r"venv-tinyapp\s+1\.0-2025\.1\.1\s", listing), listing


def test_a_machine_without_the_changelog_continues_after_the_published_version(ws: Workspace) -> None:
    ws.run("publish", "--release", "2025.1", "tinyapp")
    shutil.rmtree(ws.root / "var" / "debs" / "2025.1" / "changelogs")  # a fresh build machine
    r = ws.run("deb", "--release", "2025.1", "--no-smoke", "tinyapp")
    assert "1.0-2025.1.2" in r.stdout
    changelog = (ws.root / "var/debs/2025.1/changelogs/venv-tinyapp.changelog").read_text()
    assert "after the published 1.0-2025.1.1" in changelog


def test_the_api_answers_under_uwsgi_as_its_unit_runs_it_and_sudo_allows_exactly_rootwrap_and_privsep(
    built: Workspace, tmp_path: Path
) -> None:
    deb = deb_file(built, "1.0-2025.1.1")
    config = load_config(built.config)
    log = tmp_path / "root.log"
    with fresh_root(rootfs_tarball(config.paths.cache, config.codenames["bookworm"], log), log) as root:
        shutil.copy(deb, root.path / "tmp" / deb.name)
        root.run(f"apt-get update -q && apt-get install -y -q /tmp/{deb.name}")
        unit = (root.path / "lib/systemd/system/tinyapp-api.service").read_text()
        user = re.search(r"(?m)^User=(\S+)$", unit).group(1)  # type: ignore[union-attr]
        exec_start = re.search(r"(?m)^ExecStart=(.+)$", unit).group(1)  # type: ignore[union-attr]
        assert user == "tinyapp" and exec_start == "/usr/bin/uwsgi --ini /etc/tinyapp/tinyapp-api-uwsgi.ini"
        # the unit's command, as its user (no systemd in this root); the API answers on its port
        out = root.run(textwrap.dedent(f"""\
            cd / && runuser -u {user} -- {exec_start} --daemonize /tmp/uwsgi.log --pidfile /tmp/uwsgi.pid
            for i in $(seq 50); do
                python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:18181/").read().decode())' && break
                sleep 0.2
            done
            pid=$(cat /tmp/uwsgi.pid) && kill -INT "$pid"
            while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
            """)).stdout
        assert f"tinyapp 1.0 api, 2+3 = 5, uid {root.run('id -u tinyapp').stdout.strip()}" in out, out
        # sudo: rootwrap with the venv's exec_dirs, privsep-helper; nothing else
        out = root.run("cd / && runuser -u tinyapp -- sudo -n tinyapp-rootwrap /etc/tinyapp/rootwrap.conf id -u").stdout
        assert out.split("\n")[:3] == ["rootwrap as root", "exec_dirs /opt/openstack/tinyapp/bin", "0"], out
        assert "privsep-helper as root" in root.run("cd / && runuser -u tinyapp -- sudo -n privsep-helper").stdout
        denied = root.run("cd / && runuser -u tinyapp -- sudo -n id -u", check=False)
        assert denied.returncode != 0 and "password is required" in denied.stderr, denied.stdout + denied.stderr
        assert "NOPASSWD: /opt/openstack/tinyapp/bin/tinyapp-rootwrap /etc/tinyapp/rootwrap.conf *" in root.run(
            "sudo -l -U tinyapp").stdout


def test_a_user_that_existed_before_survives_purge_and_statoverrides_survive_an_upgrade(ws: Workspace, tmp_path: Path) -> None:
    old = deb_file(ws, "1.0-2025.1.1")
    ws.uc().write_text("tinyext===1.0\ntinypure===1.1\n")  # version N+1: a changed lock
    prepare(ws)
    ws.run("deb", "--release", "2025.1", "--no-smoke", "tinyapp")
    new = deb_file(ws, "1.0-2025.1.2")
    config = load_config(ws.config)
    log = tmp_path / "root.log"
    with fresh_root(rootfs_tarball(config.paths.cache, config.codenames["bookworm"], log), log) as root:
        for deb in (old, new):
            shutil.copy(deb, root.path / "tmp" / deb.name)
        root.run("apt-get update -q")
        stat = "stat -c '%U:%G %a' /etc/tinyapp /var/lib/tinyapp /var/log/tinyapp"

        # the admin made the user before installing: the package must neither recreate nor remove it
        root.run("adduser --system --group --quiet --no-create-home --uid 990 tinyapp")
        root.run(f"apt-get install -y -q /tmp/{old.name}")
        assert root.run(stat).stdout.split("\n")[:3] == ["root:tinyapp 750", "tinyapp:tinyapp 750", "tinyapp:adm 750"]
        root.run("dpkg-statoverride --update --add root root 0755 /etc/tinyapp && "
                 "dpkg-statoverride --update --add root tinyapp 0770 /var/lib/tinyapp && "
                 "dpkg-statoverride --update --add tinyapp tinyapp 0700 /var/log/tinyapp")
        root.run(f"apt-get install -y -q /tmp/{new.name}")  # the upgrade N -> N+1
        assert root.run("dpkg-query -W -f='${Version}' venv-tinyapp").stdout == "1.0-2025.1.2"
        assert root.run(stat).stdout.split("\n")[:3] == ["root:root 755", "root:tinyapp 770", "tinyapp:tinyapp 700"]
        root.run("dpkg-statoverride --remove /etc/tinyapp && dpkg-statoverride --remove /var/lib/tinyapp && "
                 "dpkg-statoverride --remove /var/log/tinyapp && apt-get purge -y -q venv-tinyapp")
        assert root.run("getent passwd tinyapp").stdout.split(":")[2] == "990"  # not ours to remove
        assert not (root.path / "var/lib/tinyapp").exists() and not (root.path / "var/lib/venv-tinyapp").exists()

        # a user the package made survives the upgrade and goes with the purge
        root.run("deluser --system --quiet tinyapp; delgroup --system --quiet tinyapp || true")
        assert root.run("getent passwd tinyapp; getent group tinyapp", check=False).stdout == ""
        root.run(f"apt-get install -y -q /tmp/{old.name} && apt-get install -y -q /tmp/{new.name}")
        assert root.run("getent passwd tinyapp", check=False).returncode == 0
        root.run("apt-get purge -y -q venv-tinyapp")
        assert root.run("getent passwd tinyapp", check=False).returncode == 2
        assert root.run("getent group tinyapp", check=False).returncode == 2
