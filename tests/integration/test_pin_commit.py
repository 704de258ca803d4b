"""``stackyard pin-commit`` with real git: a pin and its lock as a commit on the configuration repository's branch.

The workspace is a clone of a bare "configuration repository"; ``[buildbot]
pins_branch`` names the branch. Two commits made at once (two projects tagged
at the same time, two builds) both land: a push refused because the other one
went first is made again on the new tip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.integration.buildbot_harness import git
from tests.integration.conftest import make_workspace

pytestmark = pytest.mark.integration

BRANCH = "stackyard/pins"


def configuration_repository(tmp_path: Path) -> tuple[Workspace, Path]:
    """A workspace (tinyapp and tinyext for 2025.1, both locked) cloned from a bare repository."""
    ws = make_workspace(tmp_path / "ws", "http://127.0.0.1:9/simple", tmp_path / "cache")
    (ws.root / "recipes" / "tinyext.yaml").write_text('name: tinyext\nsource: {pypi: tinyext}\nversions: {"2025.1": "1.0"}\n')
    ws.config.write_text(ws.config.read_text() + f'[buildbot]\npins_branch = "{BRANCH}"\n')
    locks = ws.root / "requirements" / "2025.1" / "locks"
    locks.mkdir()
    for project in ("tinyapp", "tinyext"):
        (locks / f"{project}.txt").write_text(f"# stackyard lock: {project} 1.0\n{project}==1.0\n")
    bare = tmp_path / "configuration.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    git(ws.root, "init", "-q", "-b", "main")
    git(ws.root, "add", "-A")
    git(ws.root, "commit", "-q", "-m", "the configuration")
    git(ws.root, "remote", "add", "origin", str(bare))
    git(ws.root, "push", "-q", "origin", "main")
    return ws, bare


def tag(ws: Workspace, project: str, version: str) -> None:
    """What a tag build does before pin-commit: the pin moves, the lock changes."""
    ws.run("pin", "--release", "2025.1", project, version)
    (ws.root / "requirements" / "2025.1" / "locks" / f"{project}.txt").write_text(
        f"# stackyard lock: {project} {version}\n{project}=={version}\n")


def start(ws: Workspace, project: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | (env or {})
    return subprocess.Popen([sys.executable, "-m", "stackyard", "--config", str(ws.config), "pin-commit", "--release", "2025.1",
                             project, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(p: subprocess.Popen[str]) -> dict:  # type: ignore[type-arg]
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def show(bare: Path, path: str) -> str:
    return subprocess.run(["git", "-C", str(bare), "show", f"refs/heads/{BRANCH}:{path}"], capture_output=True, text=True,
                          check=True).stdout


def test_two_projects_pinned_at_once_give_two_commits_and_lose_nothing(tmp_path: Path) -> None:
    ws, bare = configuration_repository(tmp_path)
    head = git(ws.root, "rev-parse", "HEAD").strip()
    made = []
    for n in range(1, 5):  # rounds of two at once: whichever pushes second is refused, fetches and pushes again
        tag(ws, "tinyapp", f"1.{n}")
        tag(ws, "tinyext", f"1.{n}")
        results = [finish(p) for p in [start(ws, "tinyapp"), start(ws, "tinyext")]]
        for result in results:
            assert result["branch"] == BRANCH and result["commit"]
            assert result["files"] == [f"recipes/{result['project']}.yaml", f"requirements/2025.1/locks/{result['project']}.txt"]
        made += [r["commit"] for r in results]
        assert f'"2025.1": "1.{n}"' in show(bare, "recipes/tinyapp.yaml") and f"tinyext==1.{n}" in show(
            bare, "requirements/2025.1/locks/tinyext.txt")
    log = git(bare, "log", "--format=%H %s", f"refs/heads/{BRANCH}").splitlines()
    assert sorted(line.split()[0] for line in log[:-1]) == sorted(made)  # every commit made is on the branch, in one line
    assert log[-1].split()[0] == head  # the branch started from the checkout's HEAD
    assert git(bare, "rev-list", "--merges", f"refs/heads/{BRANCH}") == ""
    assert {line.split(" ", 1)[1] for line in log[:2]} <= {"tinyapp 1.4 for 2025.1: pin and lock", "tinyext 1.4 for 2025.1: pin and lock"}
    # the work tree and its index were not touched: the pins are changes of the checkout, not commits of it
    assert git(ws.root, "rev-parse", "HEAD").strip() == head
    assert "recipes/tinyapp.yaml" in git(ws.root, "status", "--porcelain")
    # the same pin again: nothing to commit
    again = finish(start(ws, "tinyapp"))
    assert again["commit"] is None and again["base"] == log[0].split()[0]


def test_a_push_refused_because_another_build_pushed_first_is_made_again_on_the_new_tip(tmp_path: Path) -> None:
    ws, bare = configuration_repository(tmp_path)
    other = tmp_path / "other-build"
    git(tmp_path, "clone", "-q", "-b", "main", str(bare), str(other))
    git(other, "checkout", "-q", "-b", BRANCH)
    (other / "recipes" / "tinyext.yaml").write_text((other / "recipes" / "tinyext.yaml").read_text().replace('"1.0"', '"1.7"'))
    git(other, "commit", "-q", "-am", "tinyext 1.7 for 2025.1: pin and lock")
    # git as the build runs it, except that just before its first push, the other build pushes
    real = shutil.which("git")
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nif [ "$3" = push ] && [ ! -e {tmp_path}/raced ]; then\n  touch {tmp_path}/raced\n'
                       f'  {real} -C {other} push -q origin HEAD:refs/heads/{BRANCH} || exit 99\nfi\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    tag(ws, "tinyapp", "1.1")
    result = finish(start(ws, "tinyapp", {"PATH": f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}"}))
    assert (tmp_path / "raced").exists() and result["attempts"] == 2
    theirs = git(other, "rev-parse", "HEAD").strip()
    assert result["base"] == theirs  # made again on top of the other build's commit
    assert git(bare, "rev-parse", f"refs/heads/{BRANCH}").strip() == result["commit"]
    assert '"2025.1": "1.7"' in show(bare, "recipes/tinyext.yaml") and '"2025.1": "1.1"' in show(bare, "recipes/tinyapp.yaml")


def test_a_file_another_build_changed_since_this_builds_checkout_is_refused_by_name_never_overwritten(tmp_path: Path) -> None:
    ws, bare = configuration_repository(tmp_path)
    since = git(ws.root, "rev-parse", "HEAD").strip()  # the checkout this build's files are made on
    lock = "requirements/2025.1/locks/tinyapp.txt"
    other = tmp_path / "other-build"  # e.g. the publisher's upper-constraints move, which re-locked tinyapp, pushed first
    git(tmp_path, "clone", "-q", "-b", "main", str(bare), str(other))
    git(other, "checkout", "-q", "-b", BRANCH)
    (other / lock).write_text("# stackyard lock: tinyapp 1.0\ntinyapp==1.0\ntinypure==1.1\n")
    git(other, "commit", "-q", "-am", "2025.1: upper-constraints and the locks made from it")
    git(other, "push", "-q", "origin", f"HEAD:refs/heads/{BRANCH}")
    theirs = git(other, "rev-parse", "HEAD").strip()
    tag(ws, "tinyapp", "1.1")  # this build's lock of tinyapp, made on the old checkout: otherwise
    r = ws.run("pin-commit", "--release", "2025.1", "tinyapp", "--since", since, check=False)
    assert r.returncode == 75 and "Traceback" not in r.stderr, r.stderr  # EX_TEMPFAIL: Buildbot builds again (RETRY)
    assert f"{BRANCH} of origin changed {lock} after {since} (this build's checkout)" in r.stderr and "run the build again" in r.stderr
    assert git(bare, "rev-parse", f"refs/heads/{BRANCH}").strip() == theirs  # nothing committed
    # a file the other build did not touch is no conflict, nor one it changed the same way
    tag(ws, "tinyext", "1.1")
    ext = json.loads(ws.run("pin-commit", "--release", "2025.1", "tinyext", "--since", since, "--json").stdout)
    assert ext["commit"] and ext["base"] == theirs
    (ws.root / lock).write_text((other / lock).read_text())
    app = json.loads(ws.run("pin-commit", "--release", "2025.1", "tinyapp", "--since", since, "--json").stdout)
    assert app["commit"] and app["base"] == ext["commit"]
    assert '"2025.1": "1.1"' in show(bare, "recipes/tinyapp.yaml") and "tinypure==1.1" in show(bare, lock)


def test_without_a_git_repository_or_a_branch_it_is_one_clear_error(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", "http://127.0.0.1:9/simple", tmp_path / "cache")
    r = ws.run("pin-commit", "--release", "2025.1", "tinyapp", check=False)
    assert r.returncode == 2 and r.stderr.startswith(f"stackyard: error: {ws.config}: buildbot.pins_branch: not set"), r.stderr
    ws.config.write_text(ws.config.read_text() + f'[buildbot]\npins_branch = "{BRANCH}"\n')
    r = ws.run("pin-commit", "--release", "2025.1", "tinyapp", check=False)
    assert r.returncode == 2 and f"{ws.root} is not in a git repository" in r.stderr and "Traceback" not in r.stderr, r.stderr


def checkout(ws: Workspace, *args: str) -> dict:  # type: ignore[type-arg]
    r = ws.run("checkout", *args, "--json", check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_checkout_brings_a_stale_clone_to_the_pins_branch_or_exactly_to_a_pin_commit(tmp_path: Path) -> None:
    ws, bare = configuration_repository(tmp_path)
    head = git(ws.root, "rev-parse", "HEAD").strip()
    assert checkout(ws) == {"checkout": head, "checkout_branch": BRANCH, "checkout_moved": False}  # no branch yet: HEAD stays
    # another machine commits two pins; this clone is stale and has a leftover edit of an earlier build's pin step
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", "-b", "main", str(bare), str(other))
    git(other, "checkout", "-q", "-b", BRANCH)
    commits = []
    for version in ("1.5", "1.6"):
        (other / "recipes" / "tinyext.yaml").write_text(
            (other / "recipes" / "tinyext.yaml").read_text().replace('"1.0"', f'"{version}"').replace('"1.5"', f'"{version}"'))
        git(other, "commit", "-q", "-am", f"tinyext {version}")
        commits.append(git(other, "rev-parse", "HEAD").strip())
    git(other, "push", "-q", "origin", f"HEAD:refs/heads/{BRANCH}")
    tag(ws, "tinyapp", "9.9")
    got = checkout(ws)
    assert got["checkout"] == commits[1] and got["checkout_moved"]
    assert git(ws.root, "rev-parse", "HEAD").strip() == commits[1]
    assert '"1.6"' in (ws.root / "recipes" / "tinyext.yaml").read_text()
    assert '"9.9"' not in (ws.root / "recipes" / "tinyapp.yaml").read_text()  # the leftover edit did not survive
    assert git(ws.root, "status", "--porcelain", "--untracked-files=no") == ""
    # a tag build's own pin commit, exactly (not the tip)
    assert checkout(ws, "--revision", commits[0])["checkout"] == commits[0]
    assert '"1.5"' in (ws.root / "recipes" / "tinyext.yaml").read_text()
    # the publisher: the tip, which must contain the build's commit
    assert checkout(ws, "--contains", commits[0])["checkout"] == commits[1]
    stray = git(ws.root, "commit-tree", f"{head}^{{tree}}", "-p", head, "-m", "not pushed").strip()
    r = ws.run("checkout", "--contains", stray, check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"{BRANCH} of origin (at {commits[1]}) does not contain {stray}" in r.stderr, r.stderr
    r = ws.run("checkout", "--revision", "0" * 40, check=False)
    assert r.returncode != 0 and f"{'0' * 40}: no such commit" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert git(ws.root, "rev-parse", "HEAD").strip() == commits[1]  # a refused checkout moved nothing
