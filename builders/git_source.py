"""What the upstream change sources (builders.poller, builders.releases_poller, builders.requirements_poller)
share: their settings, git run with no prompt and bounded time, a branch's head fetched into a bare repository,
and the change they add for a version to build."""

from __future__ import annotations

import os
from typing import Any, Iterable

from buildbot.changes.base import ReconfigurablePollingChangeSource
from buildbot.util import runprocess
from buildbot.util.state import StateMixin
from twisted.internet import defer
from twisted.python import log


class GitChangeSource(ReconfigurablePollingChangeSource, StateMixin):
    """A polling change source configured by keyword: ``Sub(name=..., repourl=..., <SETTINGS>..., pollInterval=...)``."""

    SETTINGS: tuple[str, ...] = ("repourl",)  # set on every (re)configuration
    WATCHING = "{repourl}"  # what it watches, for describe(): formatted with the settings
    repourl = ""

    def describe(self) -> str:
        return f"{type(self).__name__} {self.name} watching " + self.WATCHING.format(**{k: getattr(self, k) for k in self.SETTINGS})

    def checkConfig(self, pollInterval: int = 300, pollAtLaunch: bool = True,  # type: ignore[override]
                    **settings: Any) -> None:
        unknown = sorted(set(settings) - set(self.SETTINGS))
        missing = sorted(set(self.SETTINGS) - set(settings))
        if unknown or missing:
            raise TypeError(f"{type(self).__name__}: unknown {unknown}, missing {missing}")
        super().checkConfig(name=self.name, pollInterval=pollInterval, pollAtLaunch=pollAtLaunch)

    def reconfigService(self, pollInterval: int = 300, pollAtLaunch: bool = True,  # type: ignore[override]
                        **settings: Any) -> defer.Deferred[None]:
        for key in self.SETTINGS:
            setattr(self, key, settings[key])
        return super().reconfigService(name=self.name, pollInterval=pollInterval, pollAtLaunch=pollAtLaunch)

    def git(self, *args: str, stdin: bytes | None = None, timeout: int = 300) -> defer.Deferred[Any]:
        """``git ARGS``: (exit status, stdout, stderr) as bytes; never asks for a password."""
        return runprocess.run_process(
            self.master.reactor, ["git", *args], env={"GIT_TERMINAL_PROMPT": "0"}, collect_stdout=True,
            collect_stderr=True, io_timeout=120, runtime_timeout=timeout, initial_stdin=stdin,
        )

    @defer.inlineCallbacks
    def fetch_head(self, workdir: str, ref: str, branch: str):  # type: ignore[no-untyped-def]
        """The head of ``branch`` of ``repourl``, fetched shallow into the bare repository ``workdir`` at ``ref``:
        its commit, or None when it cannot be had (logged; the next poll tries again)."""
        if not os.path.isdir(os.path.join(workdir, "objects")):
            rc, _out, err = yield self.git("init", "-q", "--bare", workdir)
            if rc != 0:
                log.msg(f"{self.name}: cannot create {workdir} (git exited {rc}): {err.decode(errors='replace').strip()}")
                return None
        rc, _out, err = yield self.git("-C", workdir, "fetch", "-q", "--depth=1", "--no-tags", self.repourl,
                                       f"+refs/heads/{branch}:{ref}")
        if rc != 0:
            log.msg(f"{self.name}: cannot fetch {branch} of {self.repourl} (git exited {rc}): "
                    f"{err.decode(errors='replace').strip()}; trying again in {self.pollInterval}s")
            return None
        rc, out, err = yield self.git("-C", workdir, "rev-parse", "--verify", f"{ref}^{{commit}}")
        if rc != 0:
            log.msg(f"{self.name}: no commit at {ref} in {workdir}: {err.decode(errors='replace').strip()}")
            return None
        return out.decode().strip()

    def add_change(self, *, author: str, revision: str, tag: str, project: str, release: str, comments: str,
                   properties: dict[str, str], files: Iterable[str] = ()) -> defer.Deferred[Any]:
        """A change of ``project`` at ``tag`` for the builder of ``release`` (its category)."""
        return self.master.data.updates.addChange(
            author=author, revision=revision, branch=f"refs/tags/{tag}", project=project, category=release,
            repository=self.repourl, comments=comments, files=list(files), properties=properties, src="git",
        )
