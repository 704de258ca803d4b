"""uv and pip-compile lock real OpenStack projects from PyPI into identical files.

This is what lets ``[lock] resolver = "uv"`` (the default) write the committed locks: for the same inputs
(recipe, upper-constraints, index) its files are byte-identical to pip-compile's, pins, hashes, annotations
and the unsafe section included. Each resolver runs in a workspace of its own with an empty cache."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, Workspace

pytestmark = pytest.mark.e2e

PROJECTS = ("keystone", "placement", "glance")


def workspace(root: Path, resolver: str) -> Workspace:
    root.mkdir(parents=True)
    config = (ROOT / "stackyard.toml").read_text()
    if re.search(r"(?m)^\[lock\]", config):
        config = re.sub(r'(?m)^resolver = "[^"]*"', f'resolver = "{resolver}"', config)
    else:
        config += f'\n[lock]\nresolver = "{resolver}"\n'
    (root / "stackyard.toml").write_text(config)
    for tree in ("recipes", "requirements"):
        shutil.copytree(ROOT / tree, root / tree)
    return Workspace(root)


def lock(ws: Workspace) -> dict[str, str]:
    r = ws.run("lock", "--release", "2025.1", "--force", "--json", *PROJECTS)
    assert [row["project"] for row in json.loads(r.stdout)] == list(PROJECTS)
    return {p: (ws.root / "requirements" / "2025.1" / "locks" / f"{p}.txt").read_text() for p in PROJECTS}


def test_uv_writes_the_same_locks_as_pip_compile(tmp_path: Path) -> None:
    uv_ws, pc_ws = workspace(tmp_path / "uv", "uv"), workspace(tmp_path / "pip-compile", "pip-compile")
    by_uv = lock(uv_ws)
    by_pip_compile = lock(pc_ws)
    keystone = by_uv["keystone"]
    assert "keystone==27.0.2" in keystone and "oslo-config==9.7.2" in keystone and "python-ldap==" in keystone
    assert "\n# The following packages are considered to be unsafe in a requirements file:\nsetuptools==" in keystone
    for project in PROJECTS:
        assert by_uv[project] == by_pip_compile[project], f"{project}: uv and pip-compile locks differ"
    # the uv run showed its progress: a line per project with its resolver and seconds
    r = uv_ws.run("lock", "--release", "2025.1", "--force", "keystone")
    assert "keystone 27.0.2: resolving with uv ..." in r.stderr
    assert re.search(r"\[1/1\] cached\s+keystone 27.0.2: unchanged, \d+ packages, uv  \(\d+\.\d+s\)", r.stderr), r.stderr
