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

from twisted.internet import defer
from twisted.python import log

from builders.git_source import GitChangeSource
from builders.tags import SeriesRule, new_tag_builds, parse_ls_remote

STATE = "seen_tags"


class TagPoller(GitChangeSource):
    """``TagPoller(name=..., repourl=..., project=..., rules=..., pollInterval=...)``."""

    SETTINGS = ("repourl", "project", "rules")
    project = ""
    rules: tuple[SeriesRule, ...] = ()
    WATCHING = "tags of {repourl}"

    @defer.inlineCallbacks
    def poll(self):  # type: ignore[no-untyped-def,override]
        rc, out, err = yield self.git("ls-remote", "--tags", self.repourl)
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
            yield self.add_change(author=f"{self.project} upstream <{self.repourl}>", revision=build.commit, tag=build.tag,
                                  project=self.project, release=build.release, properties={"version": build.tag},
                                  comments=f"{self.project} {build.tag} tagged upstream (release {build.release})")
        yield self.setState(STATE, sorted(set(seen) | set(current)))
