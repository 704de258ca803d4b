"""The README's wheelhouse commands, exactly as written, against keystone's real wheelhouse."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.readme import block

pytestmark = pytest.mark.e2e


def test_the_readme_wheelhouse_install_works_with_pip_and_uv(ws: Workspace) -> None:
    ws.run("wheels", "--release", "2025.1", "keystone")  # a no-op when the keystone tests made it
    for venv in ("/tmp/keystone", "/tmp/keystone-uv"):  # the README's paths
        shutil.rmtree(venv, ignore_errors=True)
    # as 'make' runs it: the machine's pip configuration is off, uv is the one 'make deps' installs
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))} | {
        "PIP_CONFIG_FILE": os.devnull, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    try:
        r = subprocess.run(["bash", "-c", block("wheelhouse")], cwd=ws.root, env=env, capture_output=True, text=True,
                           check=False)
        assert r.returncode == 0, r.stdout + r.stderr[-5000:]
        for venv in ("/tmp/keystone", "/tmp/keystone-uv"):
            out = subprocess.run([f"{venv}/bin/keystone-manage", "--version"], capture_output=True, text=True, check=True)
            assert out.stdout.strip() == "27.0.2", venv
    finally:
        for venv in ("/tmp/keystone", "/tmp/keystone-uv"):
            shutil.rmtree(venv, ignore_errors=True)
