"""A real Buildbot master and worker around a fixture workspace, and a REST client for it."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.conftest import ROOT, Workspace
from tests.fixtures import projects

INTERNAL_STEPS = {"worker_preparation", "locks_acquire"}
BIN = Path(sys.executable).parent
SHARED_RELEASES = ROOT.parent / "shared" / "openstack-releases"
FINISHED = {0: "success", 1: "warnings", 2: "failure", 3: "skipped", 4: "exception", 5: "retry", 6: "cancelled"}


def git(repo: Path, *args: str) -> str:
    env = os.environ | {"GIT_AUTHOR_NAME": "upstream", "GIT_AUTHOR_EMAIL": "up@example.org", "GIT_COMMITTER_NAME": "upstream",
                        "GIT_COMMITTER_EMAIL": "up@example.org", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
                        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


@dataclass
class Upstream:
    """tinyapp's upstream: a working copy and the bare repository the recipe points at."""

    work: Path
    bare: Path
    name: str = "tinyapp"

    def sdist(self, version: str) -> Path:
        """The source the next release commits (tinyapp's; a subclass may make another project's)."""
        return projects.tinyapp(self.work.parent, version)

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def release(self, version: str, *tags: str) -> None:
        """Commit the project's ``version`` source and push it with ``tags`` (one push per tag)."""
        sdist = self.sdist(version)
        with tarfile.open(sdist) as tf:
            for member in tf.getmembers():
                rel = member.name.split("/", 1)[1]
                if member.isfile() and rel != "PKG-INFO":
                    (self.work / rel).parent.mkdir(parents=True, exist_ok=True)
                    (self.work / rel).write_bytes(tf.extractfile(member).read())  # type: ignore[union-attr]
        sdist.unlink()
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", f"{self.name} {version}")
        git(self.work, "push", "-q", "origin", "HEAD:refs/heads/master")
        for tag in tags:
            self.tag(tag)

    def tag(self, tag: str) -> None:
        git(self.work, "tag", tag)
        git(self.work, "push", "-q", "origin", f"refs/tags/{tag}")


def notifying_repo(work: Path, bare: Path, notify: str) -> tuple[Path, Path]:
    """A work tree pushing to a bare repository whose post-receive hook POSTs ``notify`` (the change hook)."""
    work.mkdir(parents=True)
    git(work, "init", "-q", "-b", "master")
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    hook = bare / "hooks" / "post-receive"
    hook.write_text(f"#!{sys.executable}\nimport urllib.request\n"
                    f"urllib.request.urlopen(urllib.request.Request({notify!r}, method='POST'), timeout=10).read()\n")
    hook.chmod(0o755)
    git(work, "remote", "add", "origin", str(bare))
    return work, bare


def make_upstream(root: Path, notify: str) -> Upstream:
    """A git repository holding tinyapp 1.0 (tag 1.0); pushes POST ``notify`` (the change hook)."""
    work, bare = notifying_repo(root / "tinyapp-work", root / "tinyapp.git", notify)
    up = Upstream(work, bare)
    up.release("1.0", "1.0")
    return up


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), children first listed after their parents."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def kill_tree(pid: int) -> None:
    """A machine lost at once: the process and everything it started, SIGKILL."""
    for p in [pid, *descendants(pid)]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Api:
    """Buildbot's REST API (``/api/v2``) with an optional login."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + "/"
        self.http = requests.Session()

    def login(self, user: str, password: str) -> None:
        r = self.http.get(self.url + "auth/login", auth=(user, password), timeout=30)
        r.raise_for_status()
        me = self.get("../config")  # /config holds the logged-in user
        assert me["user"].get("username") == user, me["user"]

    def get(self, path: str, **params: Any) -> Any:
        r = self.http.get(self.url + "api/v2/" + path if not path.startswith("../") else self.url + path[3:], params=params, timeout=30)
        r.raise_for_status()
        return r.json()

    def builder_id(self, name: str) -> int:
        (builder,) = [b for b in self.get("builders")["builders"] if b["name"] == name]
        return int(builder["builderid"])

    def builds(self, builder: str | None = None) -> list[dict[str, Any]]:
        if builder is None:
            return list(self.get("builds")["builds"])
        return list(self.get(f"builders/{self.builder_id(builder)}/builds")["builds"])

    def force(self, scheduler: str, builder: str, **properties: str) -> requests.Response:
        body = {"jsonrpc": "2.0", "method": "force", "id": 1,
                "params": {"builderid": str(self.builder_id(builder)), "reason": "forced by the test", **properties}}
        return self.http.post(self.url + f"api/v2/forceschedulers/{scheduler}", json=body, timeout=30)

    def wait_build(self, builder: str, number: int, timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [b for b in self.builds(builder) if b["number"] == number and b["complete"]]
            if done:
                return done[0]
            time.sleep(2)
        raise AssertionError(f"build {builder} #{number} did not finish in {timeout}s; builds: {self.builds(builder)}")

    def steps(self, build: dict[str, Any]) -> dict[str, str]:
        """The build's own steps (not Buildbot's worker_preparation, locks_acquire) and how they ended."""
        return {s["name"]: FINISHED.get(s["results"], "not run") if s["complete"] else "not run"
                for s in self.get(f"builds/{build['buildid']}/steps")["steps"] if s["name"] not in INTERNAL_STEPS}

    def step(self, build: dict[str, Any], name: str) -> dict[str, Any]:
        """One step of the build as the REST API gives it (results, state_string, started_at, complete_at ...)."""
        (s,) = [s for s in self.get(f"builds/{build['buildid']}/steps")["steps"] if s["name"] == name]
        return s  # type: ignore[no-any-return]

    def step_logs(self, build: dict[str, Any], step: str) -> dict[str, str]:
        """Every log of a step by name ("stdio", a tool's log file, "4 Warnings" ...): its text. A stream log's lines
        ("stdio", a followed file) lose the one-character prefix Buildbot stores them with (o: stdout, e: stderr, h: header)."""
        s = self.step(build, step)
        out = {}
        for entry in self.get(f"steps/{s['stepid']}/logs")["logs"]:
            chunks = self.get(f"logs/{entry['logid']}/contents")["logchunks"]
            text = "".join(c["content"] for c in chunks)
            if entry["type"] == "s":
                text = "".join(line[1:] for line in text.splitlines(keepends=True))
            out[entry["name"]] = text
        return out

    def step_log(self, build: dict[str, Any], step: str, *, started: bool = False) -> str:
        """The step's stdio; ``started``: of a running step, whose log Buildbot may not have made yet ("" until then)."""
        s = self.step(build, step)
        try:
            chunks = self.get(f"steps/{s['stepid']}/logs/stdio/contents")["logchunks"]
        except requests.HTTPError as exc:
            if started and exc.response is not None and exc.response.status_code == 404:
                return ""
            raise
        return "".join(c["content"] for c in chunks)

    def properties(self, build: dict[str, Any]) -> dict[str, Any]:
        (props,) = self.get(f"builds/{build['buildid']}/properties")["properties"]
        return {k: v[0] for k, v in props.items()}


@dataclass
class ReleasesRepo:
    """A local openstack/releases: a working copy and the bare repository the releases poller fetches."""

    work: Path
    bare: Path

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def write(self, path: str, text: str) -> None:
        (self.work / path).parent.mkdir(parents=True, exist_ok=True)
        (self.work / path).write_text(text)

    def read(self, path: str) -> str:
        return (self.work / path).read_text()

    def commit(self, message: str) -> str:
        """Commit every change and push it (the post-receive hook polls); the new commit's hash."""
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", "HEAD:refs/heads/master")
        return git(self.work, "rev-parse", "HEAD").strip()


def deliverable(project: str, *versions: str) -> str:
    """An openstack/releases deliverable file listing ``versions`` of ``project`` (each with a made-up commit)."""
    head = (f"---\nlaunchpad: {project}\nrelease-model: cycle-with-rc\nteam: {project}\ntype: service\n"
            f"repository-settings:\n  openstack/{project}: {{}}\nreleases:\n")
    return head + "".join(
        f"  - version: {v}\n    projects:\n      - repo: openstack/{project}\n"
        f"        hash: {hashlib.sha1(f'{project} {v}'.encode()).hexdigest()}\n" for v in versions)


def make_releases_repo(root: Path, notify: str, copy: tuple[str, ...], files: dict[str, str]) -> ReleasesRepo:
    """openstack/releases with ``copy`` (paths of ../shared/openstack-releases) and ``files``; pushes POST ``notify``."""
    work, bare = notifying_repo(root / "releases-work", root / "releases.git", notify)
    repo = ReleasesRepo(work, bare)
    for path in copy:
        repo.write(path, (SHARED_RELEASES / path).read_text())
    for path, text in files.items():
        repo.write(path, text)
    repo.commit("the deliverables of the test")
    return repo


@dataclass
class Master:
    ws: Workspace
    upstream: Upstream | None
    api: Api
    url: str
    log: Path
    admin_password: str
    configuration: Path | None = None  # the bare configuration repository pins are committed to, if any

    @property
    def basedir(self) -> Path:
        return self.log.parent

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {
            "STACKYARD_CONFIG": str(self.ws.config), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}

    def wait_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_text(errors="replace"):
                return
            time.sleep(0.5)
        raise AssertionError(f"{text!r} not in {self.log} after {timeout}s:\n{self.log.read_text()[-3000:]}")

    def staging(self, release: str = "2025.1") -> str:
        return subprocess.run(["reprepro", "-b", str(self.ws.root / "var" / "repo"), "list", f"bookworm-{release}-staging"],
                              capture_output=True, text=True, check=True).stdout


def ctl(ws: Workspace, action: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"STACKYARD_CONFIG": str(ws.config)}
    return subprocess.run([sys.executable, "-m", "builders.ctl", action, "--config", str(ws.config)],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def buildbot_table(web_port: int, worker_port: int, poll_interval: int = 3600, images: bool = False, releases_repo: str = "",
                   wait_attempts: int = 3, wait_delay: int = 1, pins_branch: str = "") -> str:
    """[buildbot] for a test master; no openstack/releases poller unless ``releases_repo`` is given, no pin commits
    unless ``pins_branch`` is."""
    return textwrap.dedent(f"""
        [buildbot]
        pins_branch = "{pins_branch}"
        web_port = {web_port}
        worker_port = {worker_port}
        poll_interval = {poll_interval}
        images = {str(images).lower()}
        requirements_update = false
        verify = false
        releases_repo = "{releases_repo}"
        wait_attempts = {wait_attempts}
        wait_delay = {wait_delay}
        [[buildbot.workers]]
        name = "local"
        max_builds = 2
        [[buildbot.users]]
        name = "admin"
        """)


def configuration_repository(root: Path, bare: Path) -> None:
    """Make the workspace at ``root`` a clone of a new bare "configuration repository" (branch main, remote origin)."""
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the configuration")
    git(root, "remote", "add", "origin", str(bare))
    git(root, "push", "-q", "origin", "main")
