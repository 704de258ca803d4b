"""Which moves of openstack/requirements' branch start a release's wheels builder: pure functions, no Buildbot.

The requirements poller (``builders.requirements_poller``) reads, at the
branch's head, the blob ids of the files a release takes from
openstack/requirements (upper-constraints, global-requirements, bindep). A
new head that changes one of them is one change (one wheels build, which
re-locks every project and rebuilds those whose pins moved); a new head that
changes none of them (docs, tooling) is nothing. The first read is history,
not news.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stackyard.wheels.upstream_requirements import FILES

PROJECT = "openstack/requirements"  # the changes' project (a recipe name has no slash: no recipe's builders take them)


def parse_ls_tree(output: str) -> dict[str, str]:
    """``git ls-tree <commit> -- FILES`` -> {path: blob id}."""
    blobs = {}
    for line in output.splitlines():
        meta, sep, path = line.partition("\t")
        parts = meta.split()
        if sep and len(parts) == 3 and parts[1] == "blob":
            blobs[path] = parts[2]
    return blobs


@dataclass(frozen=True)
class RequirementsDecision:
    changed: tuple[str, ...]  # the watched files whose content moved (empty: nothing to build)
    first: bool  # the first read: recorded, not built
    state: dict[str, object] = field(default_factory=dict)  # what to remember: the commit and the blob ids


def decide(state: dict[str, object] | None, commit: str, blobs: dict[str, str]) -> RequirementsDecision:
    new_state: dict[str, object] = {"commit": commit, "blobs": {name: blobs.get(name, "") for name in FILES}}
    if not state:
        return RequirementsDecision((), True, new_state)
    seen = state.get("blobs") or {}
    assert isinstance(seen, dict)
    changed = tuple(name for name in FILES if seen.get(name, "") != blobs.get(name, ""))
    return RequirementsDecision(changed, False, new_state)
