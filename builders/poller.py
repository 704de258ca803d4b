"""A change source that emits one change per new upstream *tag*.

Buildbot's GitPoller follows commits: a new tag on a commit it has already
seen (OpenStack tags an rc and then the final release on the same commit)
produces no change. This poller compares tag *names* from ``git ls-remote
--tags`` with the names it saw last time (kept in the master's database, so a
restart neither loses nor repeats them) and emits one change per new tag and
release the tag belongs to, with the tag as the ``version`` property.

An unreachable repository is logged and tried again at the next interval (or
at once through ``/change_hook/poller``); the master keeps running.
"""

from __future__ import annotations

from buildbot.changes.base import ReconfigurablePollingChangeSource
from buildbot.util import runprocess
from buildbot.util.state import StateMixin
from twisted.internet import defer
from twisted.python import log

from builders.tags import SeriesRule, new_tag_builds, parse_ls_remote

STATE = "seen_tags"


class TagPoller(ReconfigurablePollingChangeSource, StateMixin):
    """``TagPoller(name=..., repourl=..., project=..., rules=..., pollInterval=...)``."""

    repourl = ""
    project = ""
    rules: tuple[SeriesRule, ...] = ()

    def checkConfig(self, repourl: str, project: str, rules: tuple[SeriesRule, ...],  # type: ignore[override]
                    pollInterval: int = 300, pollAtLaunch: bool = True) -> None:
        super().checkConfig(name=self.name, pollInterval=pollInterval, pollAtLaunch=pollAtLaunch)

    def reconfigService(self, repourl: str, project: str, rules: tuple[SeriesRule, ...],  # type: ignore[override]
                        pollInterval: int = 300, pollAtLaunch: bool = True) -> defer.Deferred[None]:
        self.repourl, self.project, self.rules = repourl, project, rules
        return super().reconfigService(name=self.name, pollInterval=pollInterval, pollAtLaunch=pollAtLaunch)

    def describe(self) -> str:
        return f"TagPoller {self.name} watching tags of {self.repourl}"

    @defer.inlineCallbacks
    def poll(self):  # type: ignore[no-untyped-def,override]
        result = yield runprocess.run_process(
            self.master.reactor, ["git", "ls-remote", "--tags", self.repourl],
            env={"GIT_TERMINAL_PROMPT": "0"}, collect_stdout=True, collect_stderr=True, io_timeout=120, runtime_timeout=300,
        )
        rc, out, err = result
        if rc != 0:
            log.msg(f"{self.name}: cannot list the tags of {self.repourl} (git exited {rc}): "
                    f"{err.decode(errors='replace').strip()}; trying again in {self.pollInterval}s")
            return
        current = parse_ls_remote(out.decode())
        seen = yield self.getState(STATE, None)
        if seen is None:  # the first poll: what exists now is history, not news
            log.msg(f"{self.name}: {len(current)} existing tags in {self.repourl}")
            yield self.setState(STATE, sorted(current))
            return
        new = sorted(set(current) - set(seen))
        if new:
            log.msg(f"{self.name}: new tags in {self.repourl}: {' '.join(new)}")
        for build in new_tag_builds(set(seen), current, self.rules):
            log.msg(f"{self.name}: new tag {build.tag} ({build.commit}) -> {self.project} {build.release}")
            yield self.master.data.updates.addChange(
                author=f"{self.project} upstream <{self.repourl}>",
                revision=build.commit,
                branch=f"refs/tags/{build.tag}",
                project=self.project,
                category=build.release,
                repository=self.repourl,
                comments=f"{self.project} {build.tag} tagged upstream (release {build.release})",
                files=[],
                properties={"version": build.tag},
                src="git",
            )
        yield self.setState(STATE, sorted(set(seen) | set(current)))
