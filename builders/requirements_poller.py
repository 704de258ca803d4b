"""The upper-constraints poller: one change source per release whose [releases."<id>"] names requirements_git.

Every ``pollInterval`` seconds (or at once on ``POST
/change_hook/poller?poller=requirements-<release>``) it fetches the head of
the release's branch of openstack/requirements (``requirements_branch``,
default ``stable/<release>``) into a shallow bare repository under the
master's directory, lists the blob ids of upper-constraints.txt,
global-requirements.txt and bindep.txt there, and emits one change when one of
them moved (see ``builders.requirements``), with the commit as the
``requirements_commit`` property: the release's wheels builder then refreshes
its inputs from exactly that commit, re-locks every project and rebuilds only
those whose pins moved.

An unreachable repository is logged and tried again at the next poll; the
master and the other pollers go on.
"""

from __future__ import annotations

import os

from twisted.internet import defer
from twisted.python import log

from builders.git_source import GitChangeSource
from builders.requirements import PROJECT, decide, parse_ls_tree
from stackyard.wheels.upstream_requirements import FILES

STATE = "requirements"
REF = "refs/heads/stackyard-requirements"


class RequirementsPoller(GitChangeSource):
    """``RequirementsPoller(name=..., release=..., repourl=..., branch=..., pollInterval=...)``."""

    SETTINGS = ("release", "repourl", "branch")
    release = ""
    branch = ""
    WATCHING = "{repourl} ({branch}) for {release}"

    @property
    def workdir(self) -> str:
        return os.path.join(self.master.basedir, f"{self.name}.git")

    @defer.inlineCallbacks
    def poll(self):  # type: ignore[no-untyped-def,override]
        commit = yield self.fetch_head(self.workdir, REF, self.branch)
        if commit is None:
            return
        rc, out, err = yield self.git("-C", self.workdir, "ls-tree", commit, "--", *FILES)
        if rc != 0:
            log.msg(f"{self.name}: cannot list {commit[:12]}: {err.decode(errors='replace').strip()}")
            return
        decision = decide((yield self.getState(STATE, None)), commit, parse_ls_tree(out.decode()))
        where = f"{self.repourl} {self.branch} at {commit[:12]}"
        if decision.first:
            log.msg(f"{self.name}: first read of {where} (history, not news)")
        elif not decision.changed:
            log.msg(f"{self.name}: {where}: nothing new")
        else:
            log.msg(f"{self.name}: {where}: {' '.join(decision.changed)} changed -> wheels-{self.release}")
            yield self.master.data.updates.addChange(
                author=f"{PROJECT} <{self.repourl}>",
                revision=commit,
                branch=self.branch,
                project=PROJECT,
                category=self.release,
                repository=self.repourl,
                comments=f"{PROJECT} {self.branch} at {commit[:12]}: {', '.join(decision.changed)} changed",
                files=list(decision.changed),
                properties={"requirements_commit": commit},
                src="git",
            )
        yield self.setState(STATE, decision.state)
