"""The openstack/releases poller: one change source for every project taken from the index.

Every ``pollInterval`` seconds (or at once on ``POST
/change_hook/poller?poller=openstack-releases``) it fetches the head of the
configured branch of the openstack/releases repository into a shallow bare
repository under the master's directory (only the head is read: no history is
kept), reads the deliverable files of its targets at that commit with one
``git cat-file --batch``, and emits one change per version to build (see
``builders.deliverables``), with the version as the ``version`` property.

An unreachable repository is logged and tried again at the next poll; a
malformed deliverable file is logged with its file and line and skipped. The
master, the other pollers and the other files go on.
"""

from __future__ import annotations

import os

from twisted.internet import defer
from twisted.python import log

from builders.deliverables import PollerState, ReleaseTarget, decide, parse_cat_file_batch, unchanged
from builders.git_source import GitChangeSource

STATE = "releases"
REF = "refs/heads/stackyard-releases"
WORKDIR = "openstack-releases.git"


class ReleasesPoller(GitChangeSource):
    """``ReleasesPoller(name=..., repourl=..., branch=..., targets=..., pollInterval=...)``."""

    SETTINGS = ("repourl", "branch", "targets")
    branch = "master"
    targets: tuple[ReleaseTarget, ...] = ()

    def describe(self) -> str:
        projects = sorted({t.project for t in self.targets})
        return f"ReleasesPoller {self.name} watching {self.repourl} ({self.branch}) for {' '.join(projects)}"

    @property
    def workdir(self) -> str:
        return os.path.join(self.master.basedir, WORKDIR)

    def _git(self, *args: str, stdin: bytes | None = None) -> defer.Deferred:  # type: ignore[type-arg]
        return self.git("-C", self.workdir, *args, stdin=stdin)

    @defer.inlineCallbacks
    def poll(self):  # type: ignore[no-untyped-def,override]
        commit = yield self.fetch_head(self.workdir, REF, self.branch)
        if commit is None:
            return
        state = PollerState.load((yield self.getState(STATE, None)))
        if unchanged(self.targets, commit, state):
            log.msg(f"{self.name}: {self.repourl} {self.branch} at {commit[:12]}: nothing new")
            return
        paths = sorted({p for t in self.targets for p in t.paths})
        rc, out, err = yield self._git("cat-file", "--batch", stdin="".join(f"{commit}:{p}\n" for p in paths).encode())
        if rc != 0:
            log.msg(f"{self.name}: cannot read the deliverables at {commit[:12]}: {err.decode(errors='replace').strip()}")
            return
        decision = decide(self.targets, parse_cat_file_batch(out, paths), commit, state)
        for problem in decision.problems:
            log.msg(f"{self.name}: skipped a malformed deliverable at {commit[:12]}: {problem}")
        if decision.first_seen:
            log.msg(f"{self.name}: first read of {len(decision.first_seen)} deliverable files at {commit[:12]} "
                    f"(their versions are history, not news): {' '.join(decision.first_seen)}")
        for build in decision.builds:
            log.msg(f"{self.name}: {build.project} {build.version} in {build.file} at {commit[:12]} -> "
                    f"{build.project}-{build.release}")
            yield self.add_change(
                author=f"openstack/releases <{self.repourl}>", revision=build.commit, tag=build.version,
                project=build.project, release=build.release, files=[build.file],
                comments=f"{build.project} {build.version} released ({build.file}, openstack/releases {commit[:12]})",
                properties={"version": build.version, "deliverable": build.file, "releases_commit": commit})
        if not decision.builds:
            log.msg(f"{self.name}: {self.repourl} {self.branch} at {commit[:12]}: nothing to build")
        yield self.setState(STATE, decision.state.dump())
