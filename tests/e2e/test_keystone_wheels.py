"""keystone 2025.1 from PyPI: lock and wheelhouse, the real thing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.conftest import ROOT, Workspace

pytestmark = pytest.mark.e2e


def test_keystone_lock_is_reproducible_from_pypi(ws: Workspace) -> None:
    committed = (ROOT / "requirements" / "2025.1" / "locks" / "keystone.txt").read_text()
    ws.run("lock", "--release", "2025.1", "--force", "keystone")
    text = (ws.root / "requirements" / "2025.1" / "locks" / "keystone.txt").read_text()
    assert "keystone==27.0.2" in text and "oslo-config==9.7.2" in text
    assert text == committed, "re-locking keystone 2025.1 from PyPI changed the committed lock"


def test_keystone_wheelhouse_installs_keystone_offline(ws: Workspace, tmp_path: Path) -> None:
    ws.run("wheels", "--release", "2025.1", "keystone")
    wh = ws.wheelhouse()
    wheels = json.loads((wh / "manifest.json").read_text())["wheels"]
    names = {w["name"].lower() for w in wheels}
    assert {"keystone", "python-ldap", "cryptography", "sqlalchemy"} <= names
    ldap = next(w for w in wheels if w["name"].lower() == "python-ldap")
    assert ldap["origin"] == "built" and ldap["filename"].endswith("-cp311-cp311-linux_x86_64.whl")

    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    lock = ws.root / "requirements" / "2025.1" / "locks" / "keystone.txt"
    install = (wh / "install" / "keystone.txt").read_text()
    for line in lock.read_text().splitlines():  # every lock pin is in the install requirements
        if "==" in line and not line.startswith("#"):
            name, version = line.split(" ")[0].split("==")
            assert f"\n{canonicalize_name(name)}=={version} --hash=sha256:" in install
    subprocess.run([str(venv / "bin/pip"), "install", "--isolated", "-q", "--no-index", "--require-hashes",
                    "--find-links", str(wh), "-r", str(wh / "install" / "keystone.txt")], check=True, env=env)
    out = subprocess.run([str(venv / "bin/keystone-manage"), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "27.0.2"
