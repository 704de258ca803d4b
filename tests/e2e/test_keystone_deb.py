"""keystone 2025.1 as an operator gets it: venv deb built offline from the
wheelhouse, smoke-tested, published, promoted, and installed by apt from the
signed repository into a clean bookworm root."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stackyard.config import load_config
from stackyard.rootfs import fresh_root, rootfs_tarball
from tests.conftest import Workspace

pytestmark = pytest.mark.e2e

PROJECTS = {"keystone": ("keystone-manage", "27.0.2"), "glance": ("glance-manage", "30.2.0"),
            "placement": ("placement-manage", "13.0.0")}


def test_keystone_glance_placement_install_from_the_published_repository(ws: Workspace, tmp_path: Path) -> None:
    ws.run("wheels", "--release", "2025.1", *PROJECTS)
    built = ws.run("deb", "--release", "2025.1", *PROJECTS)
    for project, (_, version) in PROJECTS.items():
        assert re.search(rf"venv-{project}\s+{re.escape(version)}-2025\.1\.1\s+new\s+\d+\s+passed", built.stdout), built.stdout
    for record in (ws.root / "var/debs/2025.1").glob("venv-*.deb.json"):  # every override scoped and used
        stale = [w for w in json.loads(record.read_text())["lintian_warnings"] if "override" in w]
        assert not stale, (record.name, stale)
    deb = next((ws.root / "var/debs/2025.1").glob("venv-keystone_27.0.2-2025.1.1_amd64.deb"))
    assert deb.stat().st_size < 31_000_000  # no larger than plain dh-virtualenv's (31 MB)
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    assert "/site-packages/keystone/server/" in listing
    assert "/site-packages/keystone/tests/" not in listing  # test suites are dropped (recipe: keep_tests)
    assert "/site-packages/pip/" not in listing and "/bin/pip" not in listing  # nothing installs into it later
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True, check=True).stdout
    assert "python3.11" in depends and "libldap-2.5-0" in depends  # python-ldap's, found by dh_shlibdeps

    ws.run("publish", "--release", "2025.1", *PROJECTS)
    ws.run("promote", "--release", "2025.1", *PROJECTS, "--force", "e2e: an install test; test_control_plane.py verifies")

    config = load_config(ws.config)
    log = tmp_path / "client.log"
    with fresh_root(rootfs_tarball(config.paths.cache, config.codenames["bookworm"], log), log) as root:
        shutil.copytree(ws.root / "var/repo", root.path / "srv/repo", symlinks=True)
        ws.run("apt-config", "--release", "2025.1", "--url", "file:/srv/repo", "--output", str(root.path))
        assert "990 file:/srv/repo bookworm-2025.1/main" in root.run("apt-get update -q && apt-cache policy").stdout
        root.run("apt-get install -y -q " + " ".join(f"venv-{p}" for p in PROJECTS))
        for command, version in PROJECTS.values():
            assert root.run(f"{command} --version").stdout.strip().endswith(version)
