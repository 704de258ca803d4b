"""Refreshing a release's upstream inputs (upper-constraints, global-requirements, bindep).

Source is a local openstack/requirements checkout (a directory) or a base URL
(``.../raw/branch/stable/2025.1``). Every file is validated before any is
replaced, so a bad source leaves the previous inputs in place.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stackyard.config import Config, Release
from stackyard.errors import FetchError, InputError
from stackyard.http import Http
from stackyard.runner import RUNNER, Runner
from stackyard.target import target_for
from stackyard.wheels import bindep
from stackyard.wheels.constraints import parse_constraints

FILES = ("upper-constraints.txt", "global-requirements.txt", "bindep.txt")


@dataclass(frozen=True)
class UpstreamSource:
    origin: str
    commit: str
    date: str

    def render(self) -> str:
        return (
            "repository: openstack/requirements\n"
            f"commit: {self.commit}\n"
            f"date: {self.date}\n"
            f"from: {self.origin}\n"
        )


def read_source(directory: Path) -> UpstreamSource | None:
    file = directory / "SOURCE"
    if not file.exists():
        return None
    fields: dict[str, str] = {}
    text = file.read_text()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    if "commit" not in fields:  # upstream-style "sha date" one-liner
        parts = text.split()
        if len(parts) >= 2:
            return UpstreamSource(origin=str(directory), commit=parts[0], date=parts[1])
        return None
    return UpstreamSource(fields.get("from", str(directory)), fields["commit"], fields.get("date", ""))


def _from_directory(path: Path, runner: Runner = RUNNER) -> tuple[dict[str, str], UpstreamSource]:
    contents = {}
    for name in FILES:
        file = path / name
        if not file.is_file():
            raise InputError(f"{path}: has no {name}", hint="point --from at an openstack/requirements checkout")
        contents[name] = file.read_text()
    source = read_source(path)
    if (path / ".git").exists():
        git = ["git", "-C", str(path), "log", "-1", "--format=%H %cs"]
        out = runner.run(git, check=False, timeout=60, what=f"reading the commit of {path}")  # not a git tree: SOURCE says
        if out.returncode == 0 and out.stdout.strip():
            commit, date = out.stdout.split()
            source = UpstreamSource(str(path), commit, date)
    if source is None:
        source = UpstreamSource(str(path), "unknown", dt.date.today().isoformat())
    return contents, UpstreamSource(str(path), source.commit, source.date)


def _from_url(base: str, http: Http) -> tuple[dict[str, str], UpstreamSource]:
    contents = {name: http.get_text(f"{base.rstrip('/')}/{name}") for name in FILES}
    commit = "unknown"
    try:
        remote = read_source_text(http.get_text(f"{base.rstrip('/')}/SOURCE"))
        commit = remote or commit
    except FetchError:
        pass
    return contents, UpstreamSource(base, commit, dt.date.today().isoformat())


def git_cache(config: Config, url: str) -> Path:
    """The bare repository an openstack/requirements URL is fetched into (kept: later fetches are incremental)."""
    import hashlib

    return config.paths.cache / "git" / f"requirements-{hashlib.sha256(url.encode()).hexdigest()[:16]}.git"


def _from_git(config: Config, url: str, branch: str, revision: str | None,
              runner: Runner = RUNNER) -> tuple[dict[str, str], UpstreamSource]:
    """The files of ``branch`` of the git repository ``url`` at ``revision`` (default: the branch's head), which
    must be on that branch. Fetched into a bare repository of the cache: no work tree, nothing else read."""
    bare = git_cache(config, url)
    if not (bare / "objects").is_dir():
        bare.parent.mkdir(parents=True, exist_ok=True)
        runner.run(["git", "init", "-q", "--bare", str(bare)], timeout=60, what=f"creating {bare}")
    git = ["git", "-C", str(bare)]
    ref = f"refs/stackyard/{branch}"
    runner.run([*git, "fetch", "-q", "--no-tags", url, f"+refs/heads/{branch}:{ref}"], env={"GIT_TERMINAL_PROMPT": "0"},
               timeout=900, what=f"fetching {branch} of {url}", error=FetchError,
               hint=f"check the releases' requirements_git and requirements_branch in {config.file}")
    commit = ref
    if revision:
        found = runner.run([*git, "rev-parse", "-q", "--verify", f"{revision}^{{commit}}"], check=False, timeout=60,
                           what=f"looking up {revision}")
        on_branch = found.returncode == 0 and runner.run(
            [*git, "merge-base", "--is-ancestor", found.stdout.strip(), ref], check=False, timeout=60,
            what=f"is {revision} on {branch}").returncode == 0
        if not on_branch:
            raise InputError(f"{url}: {revision} is not a commit of {branch}",
                             hint="give a commit of the branch, or no --revision for its head")
        commit = found.stdout.strip()
    contents = {}
    for name in FILES:
        shown = runner.run([*git, "show", f"{commit}:{name}"], check=False, timeout=60, what=f"reading {name}")
        if shown.returncode != 0:
            raise InputError(f"{url} {branch} at {commit}: has no {name}",
                             hint="point requirements_git at an openstack/requirements repository")
        contents[name] = shown.stdout
    sha, date = runner.run([*git, "log", "-1", "--format=%H %cs", commit], timeout=60, what="reading the commit").stdout.split()
    return contents, UpstreamSource(f"{url} {branch}", sha, date)


def read_source_text(text: str) -> str | None:
    parts = text.split()
    return parts[0] if parts else None


def update_requirements(config: Config, release: Release, origin: str, http: Http, *, runner: Runner = RUNNER,
                        git_branch: str | None = None, revision: str | None = None) -> UpstreamSource:
    """From ``origin``: a raw base URL, a checkout, or (``git_branch`` given) a git repository URL whose branch is
    read at ``revision`` (default: its head)."""
    if git_branch is not None:
        contents, source = _from_git(config, origin, git_branch, revision, runner)
    elif revision:
        raise InputError(f"--revision {revision}: only a git source has revisions",
                         hint=f"set [releases.\"{release.id}\"] requirements_git in {config.file}")
    elif "://" in origin and not origin.startswith("file://"):
        contents, source = _from_url(origin, http)
    else:
        path = Path(origin.removeprefix("file://")).resolve()
        if not path.is_dir():
            raise InputError(f"{origin}: not a directory or URL", hint="give an openstack/requirements checkout or its raw URL")
        contents, source = _from_directory(path, runner)

    target = target_for(config, release)
    parse_constraints(contents["upper-constraints.txt"], Path(origin) / "upper-constraints.txt", target)
    bindep.parse_bindep(contents["bindep.txt"], Path(origin) / "bindep.txt")

    directory = config.requirements_dir(release)
    directory.mkdir(parents=True, exist_ok=True)
    contents["SOURCE"] = source.render()
    for name, text in contents.items():
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, directory / name)
    return source
