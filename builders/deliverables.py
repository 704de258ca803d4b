"""Which openstack/releases commits start which builds: pure functions, no Buildbot, no processes.

OpenStack publishes every release of every service in openstack/releases,
``deliverables/<series>/<deliverable>.yaml`` (each version with the commit it
tags). The releases poller (``builders.releases_poller``) reads, at the head of
the configured branch, the deliverable files of the *targets*: every recipe
taken from the index (``source: {pypi: ...}``) times every configured release
it has a version for. A recipe's deliverable is the file named after the
recipe or after its distribution (``placement`` or ``openstack-placement``).

A version starts ``<project>-<release>`` when it is new in the file since the
last poll (the first sight of a file is history, not news), final (no rc, beta
or alpha), newer than the recipe's pin, and was never started before. What was
seen lives in the master's database (``PollerState``), so a restart neither
loses nor repeats a version. A malformed file is reported (file and line) and
skipped: what was seen of it stays, the other files go on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

FINAL = re.compile(r"^\d+(\.\d+)*$")  # OpenStack's final versions; 27.0.0.0rc1, 1.0.0.0b1, 1.0.0.0a1 are not


class DeliverableError(Exception):
    """A deliverable file that cannot be read: ``deliverables/epoxy/keystone.yaml:12: <problem>``."""

    def __init__(self, file: str, line: int, problem: str) -> None:
        super().__init__(f"{file}:{line}: {problem}")
        self.file, self.line, self.problem = file, line, problem


@dataclass(frozen=True)
class DeliverableRelease:
    version: str
    commit: str | None  # the hash of the (first) repository it tags
    line: int


def _key(node: yaml.MappingNode, name: str) -> yaml.Node | None:
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == name:
            return v
    return None


def parse_deliverable(text: str, file: str) -> tuple[DeliverableRelease, ...]:
    """The ``releases`` of a deliverable file; raises DeliverableError naming the file and line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise DeliverableError(file, mark.line + 1 if mark else 1, f"not YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise DeliverableError(file, 1, f"not YAML: {exc}") from None
    if root is None:
        return ()
    if not isinstance(root, yaml.MappingNode):
        raise DeliverableError(file, root.start_mark.line + 1, "must be a mapping (series deliverable)")
    releases = _key(root, "releases")
    if releases is None or (isinstance(releases, yaml.ScalarNode) and releases.value in ("", "~", "null")):
        return ()
    if not isinstance(releases, yaml.SequenceNode):
        raise DeliverableError(file, releases.start_mark.line + 1, "releases: must be a list")
    out = []
    for i, item in enumerate(releases.value):
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.MappingNode):
            raise DeliverableError(file, line, f"releases[{i}]: must be a mapping with a version")
        version = _key(item, "version")
        if not isinstance(version, yaml.ScalarNode) or not version.value:
            raise DeliverableError(file, line, f"releases[{i}]: no version")
        try:
            Version(version.value)
        except InvalidVersion:
            raise DeliverableError(file, version.start_mark.line + 1,
                                   f"releases[{i}].version: {version.value!r} is not a version (PEP 440)") from None
        commit = None
        projects = _key(item, "projects")
        if isinstance(projects, yaml.SequenceNode) and projects.value and isinstance(projects.value[0], yaml.MappingNode):
            hash_ = _key(projects.value[0], "hash")
            commit = hash_.value if isinstance(hash_, yaml.ScalarNode) and hash_.value else None
        out.append(DeliverableRelease(version.value, commit, line))
    return tuple(out)


@dataclass(frozen=True)
class ReleaseTarget:
    """A project builder the releases poller drives: ``<project>-<release>``."""

    project: str  # the recipe's name
    release: str  # release id, e.g. "2025.1"
    series: str  # e.g. "epoxy"
    pinned: str  # the recipe's version for the release when the master read it
    deliverables: tuple[str, ...]  # deliverable names that are this recipe's (its name, its distribution)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(f"deliverables/{self.series}/{d}.yaml" for d in self.deliverables)

    def builds(self, version: str) -> bool:
        """Whether ``version`` (new in a deliverable file) is one to build: final and newer than the pin."""
        return bool(FINAL.match(version)) and Version(version) > Version(self.pinned)


def release_target(project: str, distribution: str, release: str, series: str, pinned: str) -> ReleaseTarget:
    names = tuple(dict.fromkeys([project, str(canonicalize_name(distribution))]))
    return ReleaseTarget(project, release, series, pinned, names)


@dataclass(frozen=True)
class ReleaseBuild:
    project: str
    release: str
    version: str
    commit: str | None  # the project commit the version tags (from the deliverable)
    file: str  # the deliverable file it is listed in

    @property
    def key(self) -> str:
        return f"{self.project} {self.release} {self.version}"


@dataclass
class PollerState:
    """What the poller saw, kept in the master's database (JSON)."""

    commit: str | None = None  # the releases commit read last
    versions: dict[str, list[str]] = field(default_factory=dict)  # file -> versions it listed ([]: no file)
    started: list[str] = field(default_factory=list)  # "project release version" already started

    @classmethod
    def load(cls, data: Any) -> "PollerState":
        if not isinstance(data, dict):
            return cls()
        versions = data.get("versions") if isinstance(data.get("versions"), dict) else {}
        return cls(data.get("commit") if isinstance(data.get("commit"), str) else None,
                   {str(k): [str(v) for v in vs] for k, vs in versions.items() if isinstance(vs, list)},
                   [str(s) for s in data.get("started", []) if isinstance(s, str)])

    def dump(self) -> dict[str, Any]:
        return {"commit": self.commit, "versions": self.versions, "started": self.started}


@dataclass(frozen=True)
class Decision:
    builds: tuple[ReleaseBuild, ...]  # oldest version first
    state: PollerState
    problems: tuple[str, ...]  # malformed files: "file:line: problem"
    first_seen: tuple[str, ...]  # files read for the first time (their versions are history)


def _sort_key(version: str) -> Version:
    return Version(version)


def decide(targets: tuple[ReleaseTarget, ...], files: dict[str, str | None], commit: str, state: PollerState) -> Decision:
    """The builds a releases commit starts, given the text of each target's files at that commit (None: absent)."""
    paths = sorted({p for t in targets for p in t.paths})
    versions: dict[str, list[str]] = {}
    listed: dict[str, dict[str, DeliverableRelease]] = {}
    problems, first_seen = [], []
    for path in paths:
        text = files.get(path)
        try:
            releases = parse_deliverable(text, path) if text is not None else ()
        except DeliverableError as exc:
            problems.append(str(exc))
            if path in state.versions:
                versions[path] = state.versions[path]  # keep what was seen; the file is read again when it changes
            continue
        listed[path] = {r.version: r for r in releases}
        versions[path] = sorted(listed[path], key=_sort_key)
        if path not in state.versions:
            first_seen.append(path)
    started = list(state.started)
    builds = []
    for target in targets:
        new: dict[str, ReleaseBuild] = {}
        for path in target.paths:
            if path not in listed or path not in state.versions:
                continue
            for version in set(listed[path]) - set(state.versions[path]):
                release = listed[path][version]
                if target.builds(version):
                    new.setdefault(version, ReleaseBuild(target.project, target.release, version, release.commit, path))
        for version in sorted(new, key=_sort_key):
            build = new[version]
            if build.key not in started:
                started.append(build.key)
                builds.append(build)
    # a started version at or below its target's pin can never start again: forget it
    pins = {(t.project, t.release): t.pinned for t in targets}
    kept = []
    for key in started:
        project, release, version = key.split(" ")
        pinned = pins.get((project, release))
        if pinned is None or Version(version) > Version(pinned):
            kept.append(key)
    return Decision(tuple(builds), PollerState(commit, versions, kept), tuple(problems), tuple(first_seen))


def unchanged(targets: tuple[ReleaseTarget, ...], commit: str, state: PollerState) -> bool:
    """Whether polling ``commit`` can start nothing: it was read already, for the same files."""
    return state.commit == commit and all(p in state.versions for t in targets for p in t.paths)


def parse_cat_file_batch(output: bytes, paths: list[str]) -> dict[str, str | None]:
    """``git cat-file --batch`` output for ``<commit>:<path>`` lines -> {path: text, or None if missing}."""
    files: dict[str, str | None] = {}
    pos = 0
    for path in paths:
        end = output.index(b"\n", pos)
        header = output[pos:end].decode(errors="replace").split()
        pos = end + 1
        if len(header) == 3 and header[1] == "blob":
            size = int(header[2])
            files[path] = output[pos:pos + size].decode(errors="replace")
            pos += size + 1  # the content is followed by a newline
        else:  # "<object> missing" (or a tree: not a file)
            files[path] = None
            if len(header) == 3:
                pos += int(header[2]) + 1
    return files
