from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT, Workspace
from tests.fixtures import projects
from tests.fixtures.index_server import IndexServer

# what a fixture index must also hold so pip can build sdist metadata offline from PyPI
BUILD_TOOLS = ["setuptools==75.8.0", "wheel==0.45.1"]


@pytest.fixture(scope="session")
def index(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("index")
    files = root / "files"
    files.mkdir()
    projects.tinyext(files)
    projects.tinypure(files)
    projects.tinypure(files, "1.1")
    projects.tinyapp(files)
    projects.tinyapp(files, "1.1", requires="tinyext>=2.0")
    projects.tinyapp(files, "1.2")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--isolated", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:", "-q",
         "-d", str(files), *BUILD_TOOLS],
        check=True, env=env,
    )
    with IndexServer(root) as server:
        yield server


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the session: the build environment is made once."""
    return tmp_path_factory.mktemp("cache")


def make_workspace(root: Path, index_url: str, cache: Path) -> Workspace:
    (root / "recipes").mkdir(parents=True)
    shutil.copytree(ROOT / "recipes" / "debian", root / "recipes" / "debian")  # the project's debian/ templates
    req = root / "requirements" / "2025.1"
    (root / "stackyard.toml").write_text(textwrap.dedent(f"""\
        [paths]
        output = "var"
        cache = "{cache}"
        [index]
        url = "{index_url}"
        tools_url = "https://pypi.org/simple"
        retries = 2
        timeout = 20
        [codenames.bookworm]
        python = "3.11"
        glibc = "2.36"
        [releases."2025.1"]
        series = "epoxy"
        codename = "bookworm"
        upstream = "{req}"
        [releases."2025.2"]
        series = "flamingo"
        codename = "bookworm"
        upstream = "{req}"
        [repo]
        path = "var/repo"
        gnupg_home = "{cache}/gnupg"
        """))
    for rid in ("2025.1", "2025.2"):
        d = root / "requirements" / rid
        d.mkdir(parents=True, exist_ok=True)
        (d / "upper-constraints.txt").write_text("tinyext===1.0\ntinypure===1.0\n")
        (d / "global-requirements.txt").write_text("tinyext\ntinypure\n")
        (d / "bindep.txt").write_text("gcc [platform:dpkg]\nlibc6-dev [platform:dpkg]\nnot-a-package [platform:rpm]\n")
        (d / "SOURCE").write_text("0123456789abcdef0123456789abcdef01234567 2026-08-13\n")
    (root / "recipes" / "tinyapp.yaml").write_text(textwrap.dedent("""\
        name: tinyapp
        description: a tiny fixture project
        source:
          pypi: tinyapp
        versions:
          "2025.1": "1.0"
          "2025.2": "1.2"
        console_scripts: [tinyapp]
        services:
          - name: tinyapp-service
            command: tinyapp-service
            description: tiny fixture service
        smoke:
          - tinyapp --version
        """))
    return Workspace(root)


@pytest.fixture
def workspace(tmp_path: Path, index: IndexServer, shared_cache: Path) -> Workspace:
    return make_workspace(tmp_path / "ws", index.url, shared_cache)
