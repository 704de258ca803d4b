"""A tag build's new pin (and its lock) as a commit on the configuration repository (``stackyard pin-commit``).

The configuration repository is the git repository holding stackyard.toml.
The commit is made without touching its work tree or index (a private index
file, ``git hash-object``, ``git commit-tree``), on top of the tip of the
branch the operator names (``[buildbot] pins_branch``) at ``pins_remote``,
and pushed there. A push refused because another build pushed first (two
projects tagged at once) fetches the new tip and makes the commit again on
top of it: both commits land, none is lost. Nothing to change (the branch
already has these files) is no commit.

A build that checked the branch out first (scale-out) names that commit
(``since``): a file of its commit that another build changed on the branch
since then is a conflict, never overwritten (two builds that re-locked the same
project from different inputs); the build is run again on the new tip.
``stackyard requirements commit`` does the same for a release's upstream inputs
and every lock the wheels build re-locked.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from stackyard.config import Config, Release
from stackyard.errors import ConfigError, ConflictError, FetchError, InputError
from stackyard.recipes import Recipe
from stackyard.runner import RUNNER, Runner
from stackyard.wheels.lock import lock_path
from stackyard.wheels.upstream_requirements import FILES, read_source

ATTEMPTS = 8  # pushes refused by a concurrent push before giving up
MAINTAINER = re.compile(r"^\s*(?P<name>[^<]+?)\s*<(?P<email>[^>]+)>\s*$")


@dataclass(frozen=True)
class PinCommit:
    project: str  # "": the release's requirements and locks (stackyard requirements commit)
    release: str
    version: str
    branch: str
    remote: str
    commit: str | None  # None: the branch already had these files
    base: str | None  # the branch's tip the commit was made on (None: the branch was new)
    files: tuple[str, ...]  # paths in the repository
    attempts: int


def _identity(config: Config) -> dict[str, str]:
    m = MAINTAINER.match(config.deb.maintainer)
    name, email = (m["name"], m["email"]) if m else ("stackyard", "stackyard@localhost")
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email,
            "GIT_TERMINAL_PROMPT": "0"}


def _branch(config: Config) -> tuple[str, str]:
    """([buildbot] pins_branch, pins_remote): builders.settings validates them when the master loads the file."""
    settings = config.table("buildbot").data
    branch, remote = str(settings.get("pins_branch", "")), str(settings.get("pins_remote", "origin"))
    if not branch:
        raise ConfigError(f"{config.file}: buildbot.pins_branch: not set; name the branch pins are pushed to")
    return branch, remote


def _toplevel(config: Config, runner: Runner, doing: str) -> Path:
    root = config.paths.root
    top_r = runner.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"], check=False, timeout=60,
                       what=f"finding the git repository of {root}")
    if top_r.returncode != 0:
        raise InputError(f"{root} is not in a git repository: {doing}",
                         hint=f"run from a clone of the configuration repository, or unset buildbot.pins_branch in {config.file}")
    return Path(top_r.stdout.strip())


def commit_pin(config: Config, release: Release, recipe: Recipe, *, message_suffix: str = "", since: str | None = None,
               runner: Runner = RUNNER) -> PinCommit:
    files = [recipe.file.resolve(), lock_path(config, release, recipe.name).resolve()]
    version = recipe.version(release.id)
    message = f"{recipe.name} {version} for {release.id}: pin and lock" + (f"\n\n{message_suffix}" if message_suffix else "")
    return _commit_files(config, release, recipe.name, version, files, message, since, runner)


def commit_requirements(config: Config, release: Release, *, since: str | None = None, runner: Runner = RUNNER) -> PinCommit:
    """The release's upstream inputs (upper-constraints and the rest, their SOURCE) and its locks, as the wheels build
    left them, committed to the pins branch: the build workers check that out before they rebuild a project."""
    directory = config.requirements_dir(release)
    files = sorted(f.resolve() for f in (*(directory / name for name in (*FILES, "SOURCE")), *directory.glob("locks/*.txt"))
                   if f.is_file())
    if not files:
        raise InputError(f"{directory}: no requirements to commit", hint=f"stackyard requirements update --release {release.id}")
    source = read_source(directory)
    made_from = f" ({source.commit[:12]})" if source and source.commit else ""
    message = f"{release.id}: upper-constraints{made_from} and the locks made from it"
    return _commit_files(config, release, "", "", files, message, since, runner)


def _commit_files(config: Config, release: Release, project: str, version: str, files: list[Path], message: str,
                  since: str | None, runner: Runner) -> PinCommit:
    branch, remote = _branch(config)
    top = _toplevel(config, runner, "a pin cannot become a commit")
    for file in files:
        if not file.exists():
            raise InputError(f"{file}: missing", hint=f"stackyard lock --release {release.id} {project}")
    rel = tuple(str(f.relative_to(top)) for f in files)
    env = _identity(config)
    git = ["git", "-C", str(top)]
    tracking = f"refs/stackyard/pin-commit/{os.getpid()}-{uuid.uuid4().hex[:8]}"  # this run's own: builds at once share the checkout
    blobs = {path: runner.run([*git, "hash-object", "-w", "--", path], env=env, timeout=60,
                              what=f"storing {path}").stdout.strip() for path in rel}
    what = Commit(project, release.id, version, message, since)
    try:
        return _commit(config, what, git, env, remote, branch, tracking, blobs, runner)
    finally:
        runner.run([*git, "update-ref", "-d", tracking], env=env, check=False, timeout=60, what="forgetting the fetched tip")


def _fetch_tip(config: Config, git: list[str], env: dict[str, str], remote: str, branch: str, tracking: str,
               runner: Runner) -> str | None:
    """``branch`` of ``remote`` fetched into the ref ``tracking``: its tip, or None when the remote has no such branch."""
    fetched = runner.run([*git, "fetch", "-q", "--no-tags", "--no-write-fetch-head", remote, f"+refs/heads/{branch}:{tracking}"],
                         env=env, check=False, timeout=300, what=f"fetching {branch} of {remote}")
    if fetched.returncode == 0:
        return runner.run([*git, "rev-parse", "--verify", f"{tracking}^{{commit}}"], env=env, timeout=60,
                          what="reading the branch's tip").stdout.strip()
    if "couldn't find remote ref" in fetched.output:
        return None
    raise FetchError(f"cannot fetch {branch} of {remote}: {fetched.output.strip()[-1000:]}",
                     hint=f"check buildbot.pins_remote and pins_branch in {config.file}")


@dataclass(frozen=True)
class Commit:
    project: str
    release: str
    version: str
    message: str
    since: str | None  # the commit the files were made from (the build's checkout): changes after it are conflicts


def _conflicts(git: list[str], env: dict[str, str], since: str, tip: str, blobs: dict[str, str], runner: Runner) -> list[str]:
    """The files another commit changed between ``since`` and ``tip`` that this commit would change otherwise."""
    moved = runner.run([*git, "diff", "--name-only", "--no-renames", since, tip, "--", *blobs], env=env, timeout=60,
                       what=f"what changed since {since}").stdout.split()
    if not moved:
        return []
    listed = runner.run([*git, "ls-tree", tip, "--", *moved], env=env, timeout=60, what="reading the tip's files").stdout
    at_tip = {line.split("\t", 1)[1]: line.split()[2] for line in listed.splitlines() if "\t" in line}
    return [path for path in moved if at_tip.get(path) != blobs[path]]


def _commit(config: Config, what: Commit, git: list[str], env: dict[str, str], remote: str, branch: str,
            tracking: str, blobs: dict[str, str], runner: Runner) -> PinCommit:
    rel = tuple(blobs)
    for attempt in range(1, ATTEMPTS + 1):
        base = _fetch_tip(config, git, env, remote, branch, tracking, runner)  # None: a new branch, on top of HEAD
        if what.since and base and base != what.since:
            conflicts = _conflicts(git, env, what.since, base, blobs, runner)
            if conflicts:
                raise ConflictError(f"{branch} of {remote} changed {', '.join(conflicts)} after {what.since} (this build's "
                                    f"checkout), otherwise than this build did; nothing was committed",
                                    hint="run the build again: it checks out the new tip (Buildbot does, exit status 75)")
        parent = base or runner.run([*git, "rev-parse", "--verify", "HEAD^{commit}"], env=env, timeout=60,
                                    what="reading HEAD").stdout.strip()
        with tempfile.TemporaryDirectory(prefix="stackyard-pin-") as tmp:
            index_env = env | {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
            runner.run([*git, "read-tree", parent], env=index_env, timeout=60, what="reading the branch's tree")
            for path, blob in blobs.items():
                runner.run([*git, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}"], env=index_env, timeout=60,
                           what=f"adding {path}")
            tree = runner.run([*git, "write-tree"], env=index_env, timeout=60, what="writing the tree").stdout.strip()
        parent_tree = runner.run([*git, "rev-parse", f"{parent}^{{tree}}"], env=env, timeout=60, what="reading a tree").stdout.strip()
        if tree == parent_tree and base is not None:
            return PinCommit(what.project, what.release, what.version, branch, remote, None, base, rel, attempt)
        commit = runner.run([*git, "commit-tree", tree, "-p", parent, "-m", what.message], env=env, timeout=60,
                            what="making the commit").stdout.strip()
        pushed = runner.run([*git, "push", "-q", remote, f"{commit}:refs/heads/{branch}"], env=env, check=False, timeout=300,
                            what=f"pushing to {branch} of {remote}")
        if pushed.returncode == 0:
            return PinCommit(what.project, what.release, what.version, branch, remote, commit, base, rel, attempt)
        if not any(word in pushed.output for word in ("non-fast-forward", "fetch first", "rejected", "stale info",
                                                      "cannot lock ref", "failed to update ref")):
            raise FetchError(f"cannot push to {branch} of {remote}: {pushed.output.strip()[-1000:]}",
                             hint=f"check buildbot.pins_remote and its write access ({config.file})")
    raise ConflictError(f"{branch} of {remote} moved under each of {ATTEMPTS} pushes; {what.message.splitlines()[0]!r} was not recorded",
                        hint="run the build again (Buildbot does, exit status 75)")


@dataclass(frozen=True)
class Checkout:
    commit: str  # what the work tree is now
    branch: str
    remote: str
    moved: bool  # HEAD was another commit before


def checkout(config: Config, *, revision: str | None = None, contains: str | None = None,
             runner: Runner = RUNNER) -> Checkout:
    """Scale-out: every machine builds from the configuration repository as the pins branch has it, never from a
    stale clone. The work tree is checked out (detached, tracked files forced: a pin step's edits of an earlier
    build do not survive) at ``revision`` exactly (a tag build's own pin commit), else at the tip of
    ``pins_branch`` of ``pins_remote``, which must contain ``contains`` when given (the publisher, for a pin commit
    a build worker made: the tip only moves forward, so builds at once on one machine never move it back). No
    branch yet (no pin committed): HEAD stays."""
    branch, remote = _branch(config)
    top = _toplevel(config, runner, "there is no revision to check out")
    env = _identity(config)
    git = ["git", "-C", str(top)]
    tracking = f"refs/stackyard/checkout/{os.getpid()}-{uuid.uuid4().hex[:8]}"
    head = runner.run([*git, "rev-parse", "--verify", "HEAD^{commit}"], env=env, timeout=60, what="reading HEAD").stdout.strip()
    try:
        tip = _fetch_tip(config, git, env, remote, branch, tracking, runner)
        if revision:
            found = runner.run([*git, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], env=env, check=False,
                               timeout=60, what=f"finding {revision}")
            if found.returncode != 0:
                raise InputError(f"{revision}: no such commit in {top} nor on {branch} of {remote}",
                                 hint="the build's pin_commit property names a commit pushed there; was it rewritten?")
            target = found.stdout.strip()
        elif tip is None:
            if contains:
                raise InputError(f"{branch} of {remote} does not exist, so it does not contain {contains}",
                                 hint=f"check buildbot.pins_remote and pins_branch in {config.file}")
            target = head
        else:
            target = tip
            if contains:
                known = runner.run([*git, "merge-base", "--is-ancestor", contains, tip], env=env, check=False, timeout=60,
                                   what=f"is {contains} on {branch}?")
                if known.returncode != 0:
                    raise InputError(f"{branch} of {remote} (at {tip}) does not contain {contains}",
                                     hint="the branch was rewritten after the build pushed its pin commit; run the build again")
        runner.run([*git, "checkout", "-q", "-f", "--detach", target], env=env, timeout=300, what=f"checking out {target}")
    finally:
        runner.run([*git, "update-ref", "-d", tracking], env=env, check=False, timeout=60, what="forgetting the fetched tip")
    return Checkout(target, branch, remote, target != head)
