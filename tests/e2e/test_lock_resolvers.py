"""uv and pip-compile lock real OpenStack projects from PyPI into identical files.

This is what lets ``[lock] resolver = "uv"`` (the default) write the committed locks: for the same inputs
(recipe, upper-constraints, index) its files are byte-identical to pip-compile's, pins, hashes, annotations
and the unsafe section included. Each resolver runs in a workspace of its own with an empty cache."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
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


def git_upstream(base: Path, project: str, version: str) -> str:
    """``project``'s upstream as a local git repository: its released sdist (PyPI) committed without what pbr
    generates (PKG-INFO, AUTHORS, ChangeLog, egg-info) and tagged ``version``; its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    subprocess.run([sys.executable, "-m", "pip", "download", "--isolated", "--disable-pip-version-check", "--no-deps",
                    "--no-binary=:all:", "-q", "-d", str(base), f"{project}=={version}"], check=True, env=env)
    (sdist,) = base.glob(f"{project}-{version}.tar.gz")
    work = base / project
    generated = re.compile(r"^(PKG-INFO|AUTHORS|ChangeLog|[^/]+\.egg-info(/.*)?)$")
    with tarfile.open(sdist) as tf:
        for member in tf.getmembers():
            rel = member.name.split("/", 1)[1] if "/" in member.name else ""
            if member.isfile() and not generated.match(rel):
                (work / rel).parent.mkdir(parents=True, exist_ok=True)
                (work / rel).write_bytes(tf.extractfile(member).read())  # type: ignore[union-attr]
    for args in (("init", "-q", "-b", "master"), ("add", "-A"), ("commit", "-q", "-m", f"{project} {version}"), ("tag", version)):
        subprocess.run(["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.org", *args], check=True)
    return work.as_uri()


def test_a_git_source_is_locked_by_uv_into_the_file_pip_compile_writes(tmp_path: Path) -> None:
    """A tag build locks the recipe's git source: uv resolves it (seconds, where pip-compile takes a minute) and
    writes its line as pip-compile does (the recipe's ref under pip-compile's 'cannot hash' warning)."""
    url = git_upstream(tmp_path / "upstream", "keystone", "27.0.2")
    locks = {}
    for resolver in ("uv", "pip-compile"):
        ws = workspace(tmp_path / resolver, resolver)
        recipe = ws.root / "recipes" / "keystone.yaml"
        recipe.write_text(recipe.read_text().replace("  pypi: keystone\n", f"  git: {url}\n"))
        r = ws.run("lock", "--release", "2025.1", "--force", "keystone")
        assert f"resolving with {resolver}" in r.stderr, r.stderr
        locks[resolver] = (ws.root / "requirements" / "2025.1" / "locks" / "keystone.txt").read_text()
    assert f"keystone @ git+{url.replace('file:///', 'file:/')}@27.0.2\n" in locks["uv"], locks["uv"][:3000]
    assert "oslo-config==9.7.2" in locks["uv"]
    assert locks["uv"] == locks["pip-compile"]
