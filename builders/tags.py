"""Which upstream tags belong to which release: pure functions, no Buildbot.

A tag belongs to release R of a project when it is a final version (OpenStack's
rc/beta tags are not built: ``27.0.0.0rc1`` would sort above ``27.0.0`` in
dpkg), newer than the recipe's pin for R, and of R's series: the same major
version as the pin (OpenStack bumps the major every series), or listed in the
series' openstack/releases deliverable file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

FINAL = re.compile(r"^\d+(\.\d+)*$")


@dataclass(frozen=True)
class SeriesRule:
    release: str  # release id, e.g. "2025.1"
    pinned: str  # the recipe's version for it
    majors: tuple[int, ...]  # major versions of the series

    def matches(self, tag: str) -> bool:
        if not FINAL.match(tag):
            return False
        version = Version(tag)
        return version.major in self.majors and version > Version(self.pinned)


def deliverable_versions(deliverables: Path | None, series: str, project: str) -> tuple[str, ...]:
    """Versions openstack/releases lists for ``project`` in ``series`` (none if no file)."""
    if deliverables is None:
        return ()
    file = deliverables / series / f"{project}.yaml"
    if not file.is_file():
        return ()
    data = yaml.safe_load(file.read_text()) or {}
    return tuple(str(r["version"]) for r in data.get("releases", []) if isinstance(r, dict) and "version" in r)


def series_rule(release: str, pinned: str, listed: tuple[str, ...] = ()) -> SeriesRule:
    majors = {Version(pinned).major}
    for version in listed:
        if FINAL.match(version):
            majors.add(Version(version).major)
    return SeriesRule(release, pinned, tuple(sorted(majors)))


def tag_name(ref: str) -> str | None:
    """``refs/tags/27.0.3`` (or its peeled ``^{}`` line) -> ``27.0.3``; other refs -> None."""
    if not ref.startswith("refs/tags/"):
        return None
    return ref.removeprefix("refs/tags/").removesuffix("^{}")


def parse_ls_remote(output: str) -> dict[str, str]:
    """``git ls-remote --tags`` output -> {tag: commit}; annotated tags resolve to their commit."""
    tags: dict[str, str] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        sha, ref = parts
        name = tag_name(ref)
        if name is None:
            continue
        if ref.endswith("^{}") or name not in tags:  # the peeled line names the commit
            tags[name] = sha
    return tags


@dataclass(frozen=True)
class TagBuild:
    tag: str
    commit: str
    release: str


def new_tag_builds(seen: set[str], current: dict[str, str], rules: tuple[SeriesRule, ...]) -> list[TagBuild]:
    """One build per (new tag, release it belongs to), oldest version first.

    A tag is new when its *name* was not seen before, whatever its commit: an
    rc and the final release tagged on one commit are two tags.
    """
    builds = []
    for tag in sorted(set(current) - seen, key=_sort_key):
        for rule in rules:
            if rule.matches(tag):
                builds.append(TagBuild(tag, current[tag], rule.release))
    return builds


def _sort_key(tag: str) -> tuple[int, Version | str]:
    try:
        return (0, Version(tag))
    except InvalidVersion:
        return (1, tag)
