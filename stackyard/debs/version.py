"""Debian versions of venv packages, and when the revision moves.

``<upstream>-<release>.<n>``: the upstream version mapped to Debian
(pre-releases sort before the release with ``~``), then the OpenStack
release, then a counter. So a newer upstream sorts higher, the same upstream
in a later release sorts higher, and a rebuild whose lock changed bumps
``n``. A rebuild with nothing changed keeps the version (and the file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import Version

INPUT_LINE = re.compile(r"(\w+) sha256:\s+([0-9a-f]{64})")


def debian_upstream(pep440: str) -> str:
    v = Version(pep440)
    release = list(v.release)
    while len(release) > 3 and release[-1] == 0:  # 27.0.0.0rc1 is 27.0.0rc1 (OpenStack's rc tags)
        release.pop()
    out = ".".join(str(p) for p in release)
    if v.epoch:
        out = f"{v.epoch}:{out}"
    if v.pre:
        out += f"~{v.pre[0]}{v.pre[1]}"
    if v.post is not None:
        out += f"+post{v.post}"
    if v.dev is not None:
        out += f"~~dev{v.dev}"
    if v.local:
        out += f"+{v.local}"
    return out


@dataclass(frozen=True)
class VersionDecision:
    version: str
    changed: bool  # a new changelog entry is needed
    reason: str


def decide(previous_version: str | None, previous_inputs: dict[str, str], upstream: str, release_id: str,
           inputs: dict[str, str]) -> VersionDecision:
    """The version to build, given the newest changelog entry and the digests of
    the inputs (``lock``: the project's lock; ``packaging``: recipe and templates)."""
    base = f"{debian_upstream(upstream)}-{release_id}."
    if previous_version is None or not previous_version.startswith(base):
        return VersionDecision(base + "1", True, f"New upstream release {upstream} for OpenStack {release_id}.")
    n = int(previous_version[len(base):])
    changed = sorted(k for k in inputs if previous_inputs.get(k) != inputs[k])
    if not changed:
        return VersionDecision(previous_version, False, "")
    what = " and ".join({"lock": "a changed lock", "packaging": "changed packaging"}.get(k, k) for k in changed)
    return VersionDecision(f"{base}{n + 1}", True, f"Rebuild of {upstream} with {what}.")


def recorded_inputs(changes: list[str]) -> dict[str, str]:
    """The input digests a changelog entry records."""
    return dict(INPUT_LINE.findall("\n".join(changes)))


def input_lines(inputs: dict[str, str]) -> list[str]:
    lines = []
    for name in sorted(inputs):
        lines += [f"  * {name} sha256:", f"    {inputs[name]}"]
    return lines
