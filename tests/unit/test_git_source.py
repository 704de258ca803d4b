"""builders.git_source: the settings both upstream pollers take and the change they add (no master, no process)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from builders.poller import TagPoller
from builders.releases_poller import ReleasesPoller


def test_each_poller_takes_exactly_its_settings() -> None:
    TagPoller(name="tags-x", repourl="file:///srv/x.git", project="x", rules=(), pollInterval=30)
    ReleasesPoller(name="releases", repourl="file:///srv/releases.git", branch="master", targets=())
    with pytest.raises(TypeError, match=r"TagPoller: unknown \['branch'\], missing \['rules'\]"):
        TagPoller(name="tags-x", repourl="file:///srv/x.git", project="x", branch="master")


def test_a_change_names_the_tag_release_and_repository() -> None:
    poller = TagPoller(name="tags-x", repourl="file:///srv/x.git", project="x", rules=())
    poller.repourl = "file:///srv/x.git"
    added: list[dict[str, Any]] = []
    master = SimpleNamespace(data=SimpleNamespace(updates=SimpleNamespace(addChange=lambda **kw: added.append(kw))))
    poller.parent = SimpleNamespace(master=master)  # what setServiceParent would give
    poller.add_change(author="x upstream", revision="abc", tag="1.1", project="x", release="2025.1",
                      comments="x 1.1 tagged", properties={"version": "1.1"})
    assert added == [{"author": "x upstream", "revision": "abc", "branch": "refs/tags/1.1", "project": "x",
                      "category": "2025.1", "repository": "file:///srv/x.git", "comments": "x 1.1 tagged", "files": [],
                      "properties": {"version": "1.1"}, "src": "git"}]
