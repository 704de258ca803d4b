"""The operator's path on clean bookworm roots: the files 'stackyard apt-config' writes are
honoured by apt (pins against another release's distribution, per-project pins), and
Debian's puppet 7 with Debian's puppetlabs-apt installs from 'stackyard puppet-data'
with 'include stackyard'.

The packages are small real .debs named after the services (what is in them does not
matter to apt's choice), published and promoted by stackyard's reprepro with its GPG key.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stackyard.config import load_config
from stackyard.repo.apt import AptRepository
from stackyard.rootfs import BASE_PACKAGES, Root, fresh_root, rootfs_tarball
from tests.conftest import ROOT, Workspace
from tests.fixtures.index_server import IndexServer
from tests.integration.conftest import make_workspace
from tests.readme import block

pytestmark = pytest.mark.integration

REPO_IN_ROOT = "/srv/repo"
VERSIONS = {"2025.1": {"keystone": "27.0.2-2025.1.1", "nova": "31.0.0-2025.1.1"},
            "2025.2": {"keystone": "28.0.2-2025.2.1", "nova": "32.0.0-2025.2.1"}}


def fake_deb(into: Path, name: str, version: str) -> Path:
    tree = into / f"{name}-{version}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(textwrap.dedent(f"""\
        Package: {name}
        Version: {version}
        Architecture: all
        Maintainer: stackyard tests <tests@stackyard.example.org>
        Section: net
        Priority: optional
        Description: stand-in for {name} {version}
        """))
    (tree / "usr/share/doc" / name).mkdir(parents=True)
    (tree / "usr/share/doc" / name / "VERSION").write_text(version + "\n")
    deb = into / f"{name}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(tree), str(deb)], check=True, capture_output=True)
    return deb


def release_packages(ws: Workspace, tmp: Path, versions: dict[str, dict[str, str]]) -> None:
    """Publish and promote venv-<project> at ``versions`` with stackyard's own repository code."""
    config = load_config(ws.config)
    repo = AptRepository(config)
    for rid, projects in versions.items():
        release = config.release(rid)
        repo.publish(release, [fake_deb(tmp, f"venv-{p}", v) for p, v in projects.items()])
        repo.promote(release, [], force="fixture packages: nothing to run")


@pytest.fixture(scope="module")
def operator_ws(tmp_path_factory: pytest.TempPathFactory, index: IndexServer, shared_cache: Path) -> Workspace:
    base = tmp_path_factory.mktemp("operator")
    ws = make_workspace(base / "ws", index.url, shared_cache)
    release_packages(ws, base, VERSIONS)
    return ws


def in_root(ws: Workspace, root: Root) -> None:
    shutil.copytree(ws.root / "var" / "repo", root.path / REPO_IN_ROOT.lstrip("/"), symlinks=True)


def policy(root: Root, package: str) -> tuple[str, str]:
    """(candidate, the policy output) of ``package``."""
    out = root.run(f"apt-cache policy {package}").stdout
    return re.search(r"Candidate: (\S+)", out).group(1), out  # type: ignore[union-attr]


def installed(root: Root, package: str) -> str:
    return root.run(f"dpkg-query -W -f='${{Version}}' {package}").stdout


def test_apt_config_pins_the_release_and_moves_exactly_the_projects_the_operator_moved(
    operator_ws: Workspace, tmp_path: Path
) -> None:
    ws = operator_ws
    config = load_config(ws.config)
    log = tmp_path / "root.log"
    with fresh_root(rootfs_tarball(config.paths.cache, config.codenames["bookworm"], log), log) as root:
        in_root(ws, root)
        # both releases configured, no pin: apt would take the newest (2025.2) everywhere
        for rid in ("2025.1", "2025.2"):
            ws.run("apt-config", "--release", rid, "--url", f"file:{REPO_IN_ROOT}", "--output", str(root.path))
        (root.path / "etc/apt/preferences.d/stackyard.pref").unlink()
        root.run("apt-get update -q")
        assert policy(root, "venv-keystone")[0] == VERSIONS["2025.2"]["keystone"]

        # the pin apt-config writes for 2025.1 makes 2025.1 the candidate, over Debian's 500 too
        written = ws.run("apt-config", "--release", "2025.1", "--url", f"file:{REPO_IN_ROOT}",
                         "--output", str(root.path)).stdout
        assert str(root.path / "etc/apt/preferences.d/stackyard.pref") in written
        assert str(root.path / "usr/share/keyrings/stackyard-archive-keyring.gpg") in written
        root.run("apt-get update -q")
        candidate, out = policy(root, "venv-keystone")
        assert candidate == VERSIONS["2025.1"]["keystone"], out
        assert re.search(r"990 file:/srv/repo bookworm-2025.1/main", out), out
        assert re.search(r"500 http://deb.debian.org/debian bookworm/main", root.run("apt-cache policy").stdout)
        root.run("apt-get install -y -q venv-keystone venv-nova")
        assert installed(root, "venv-keystone") == VERSIONS["2025.1"]["keystone"]
        assert installed(root, "venv-nova") == VERSIONS["2025.1"]["nova"]

        # keystone from 2025.2, nova stays: a plain upgrade moves exactly keystone
        ws.run("apt-config", "--release", "2025.1", "--project", "keystone=2025.2", "--url", f"file:{REPO_IN_ROOT}",
               "--output", str(root.path))
        pref = (root.path / "etc/apt/preferences.d/stackyard.pref").read_text()
        assert pref.index("Package: venv-keystone") < pref.index("Package: *")
        root.run("apt-get update -q")
        upgrade = root.run("apt-get upgrade -y -q").stdout
        assert installed(root, "venv-keystone") == VERSIONS["2025.2"]["keystone"]
        assert installed(root, "venv-nova") == VERSIONS["2025.1"]["nova"], upgrade
        assert "1 upgraded" in upgrade


def test_apt_config_and_puppet_data_refuse_bad_requests_with_one_line(operator_ws: Workspace) -> None:
    ws = operator_ws
    r = ws.run("apt-config", "--release", "2025.1", "--project", "keystone=sid-2025.2", check=False)
    assert r.returncode == 2 and "unknown codename 'sid'" in r.stderr and "[codenames.bookworm]" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 2  # the error and its fix
    r = ws.run("apt-config", "--release", "2025.1", "--project", "keystone", check=False)
    assert r.returncode == 2 and "expected PROJECT=RELEASE" in r.stderr
    r = ws.run("puppet-data", "--release", "2025.1", "--project", "glance=2025.2", check=False)
    assert r.returncode == 2 and "venv-glance is not published in bookworm-2025.2" in r.stderr

    empty = make_workspace(ws.root.parent / "empty", "http://127.0.0.1:9/simple", ws.root / "unused-cache")
    with empty.config.open("a") as f:
        f.write('[codenames.trixie]\npython = "3.13"\nglibc = "2.41"\n')
    r = empty.run("apt-config", "--release", "2025.1", "--project", "keystone=trixie-2025.2", check=False)
    assert r.returncode == 2 and "release 2025.2 is built for bookworm, not trixie" in r.stderr
    assert '[releases."2025.2"] codename' in r.stderr
    r = empty.run("puppet-data", "--release", "2025.1", check=False)
    assert r.returncode == 2, r.stderr
    assert "nothing is published in bookworm-2025.1 for 2025.1" in r.stderr
    assert "stackyard promote --release 2025.1" in r.stderr
    r = empty.run("apt-config", "--release", "2025.1")
    assert "warning: bookworm-2025.1 has no package yet" in r.stderr
    assert "Suites: bookworm-2025.1" in r.stdout


PUPPET_PACKAGES = (*BASE_PACKAGES, "gnupg", "puppet", "puppet-module-puppetlabs-apt")
SITE = "include stackyard\n"
HIERA = textwrap.dedent("""\
    ---
    version: 5
    defaults:
      datadir: /srv/hieradata
      data_hash: yaml_data
    hierarchy:
      - name: stackyard
        path: stackyard.yaml
    """)


def puppet_apply(root: Root) -> tuple[int, str]:
    r = root.run("puppet apply --detailed-exitcodes --color=false --hiera_config=/srv/hiera.yaml "
                 "--modulepath=/srv/modules:/usr/share/puppet/modules /srv/site.pp", check=False)
    assert r.returncode in (0, 2), r.stdout + r.stderr  # 0: nothing changed, 2: changes applied
    return r.returncode, r.stdout + r.stderr


def test_puppet_installs_the_exact_versions_and_moving_the_data_upgrades_exactly_that_package(
    operator_ws: Workspace, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(operator_ws.root, ws.root, symlinks=True)
    config = load_config(ws.config)
    log = tmp_path / "root.log"
    tarball = rootfs_tarball(config.paths.cache, config.codenames["bookworm"], log, PUPPET_PACKAGES)
    data = "srv/hieradata/stackyard.yaml"
    with fresh_root(tarball, log) as root:
        in_root(ws, root)
        shutil.copytree(ROOT / "puppet", root.path / "srv/modules")
        (root.path / "srv/site.pp").write_text(SITE)
        (root.path / "srv/hiera.yaml").write_text(HIERA)
        out = ws.run("puppet-data", "--release", "2025.1", "--url", f"file:{REPO_IN_ROOT}", "--output",
                     str(root.path / data)).stdout
        assert "2 packages of 2025.1" in out
        code, out = puppet_apply(root)
        assert code == 2, out
        assert installed(root, "venv-keystone") == VERSIONS["2025.1"]["keystone"]
        assert installed(root, "venv-nova") == VERSIONS["2025.1"]["nova"]
        candidate, policy_out = policy(root, "venv-keystone")
        assert candidate == VERSIONS["2025.1"]["keystone"] and "990 file:/srv/repo bookworm-2025.1" in policy_out

        code, out = puppet_apply(root)
        assert code == 0, f"the second run changed something:\n{out}"

        # a new revision of keystone is promoted; new data moves exactly that package
        newer = "27.0.2-2025.1.2"
        release_packages(ws, tmp_path, {"2025.1": {"keystone": newer}})
        shutil.rmtree(root.path / REPO_IN_ROOT.lstrip("/"))
        in_root(ws, root)
        ws.run("puppet-data", "--release", "2025.1", "--url", f"file:{REPO_IN_ROOT}", "--output", str(root.path / data))
        assert f"venv-keystone: {newer}" in (root.path / data).read_text()
        code, out = puppet_apply(root)
        assert code == 2, out
        changed = re.findall(r"Package\[([^\]]+)\]/ensure", out)
        assert changed == ["venv-keystone"], out
        assert installed(root, "venv-keystone") == newer
        assert installed(root, "venv-nova") == VERSIONS["2025.1"]["nova"]


def test_the_readme_operator_commands_work_as_written(operator_ws: Workspace, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(operator_ws.root, ws.root, symlinks=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {
        "STACKYARD_CONFIG": str(ws.config), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run(["bash", "-c", block("operator")], cwd=ws.root, env=env, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Package: *\nPin: release o=stackyard,n=bookworm-2025.1\nPin-Priority: 990" in r.stdout
    assert (ws.root / "var/hosts/compute/etc/apt/sources.list.d/stackyard-2025.1.sources").exists()
    assert "venv-keystone: 28.0.2-2025.2.1" in (ws.root / "var/puppet/2025.1.yaml").read_text()

    config = load_config(ws.config)
    log = tmp_path / "root.log"
    with fresh_root(rootfs_tarball(config.paths.cache, config.codenames["bookworm"], log), log) as root:
        inside = root.path / str(ws.root).lstrip("/")  # the host sees the repository at the URL apt-config wrote
        shutil.copytree(ws.root / "var", inside / "var", symlinks=True)
        out = root.run(f"cd {ws.root} && bash -c {shlex.quote(block('host'))}").stdout
        candidate = re.search(r"Candidate: (\S+)", out).group(1)  # type: ignore[union-attr]
        assert candidate == VERSIONS["2025.2"]["keystone"], out
        assert re.search(r"28\.0\.2-2025\.2\.1 995\n", out), out  # the project's pin, above 2025.1's 990
