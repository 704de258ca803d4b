"""bindep.txt: the Debian packages needed to build a release's wheels.

A small implementation of bindep's selector rules: platform selectors must
match the target Debian release, other profiles select optional groups
(entries with none are in the default profile).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from stackyard.errors import InputError, ToolError
from stackyard.runner import RUNNER, Runner

APT_TIMEOUT = 1800.0
DEBIAN_VERSIONS = {"bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14"}
LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9+._/-]*)\s*(?:\[(?P<sel>[^\]]*)\])?\s*(?P<version>[<>=!].*)?$")


@dataclass(frozen=True)
class BindepEntry:
    name: str
    selectors: tuple[str, ...]
    line: int


def parse_bindep(text: str, file: Path) -> list[BindepEntry]:
    entries = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = LINE.match(line)
        if not m:
            raise InputError(f"{file}:{lineno}: malformed bindep line {raw.strip()!r}")
        entries.append(BindepEntry(m.group("name"), tuple((m.group("sel") or "").split()), lineno))
    return entries


def platform_atoms(codename: str) -> set[str]:
    atoms = {"platform:dpkg", "platform:debian", f"platform:debian-{codename}"}
    if codename in DEBIAN_VERSIONS:
        atoms.add(f"platform:debian-{DEBIAN_VERSIONS[codename]}")
    return atoms


def selected(entry: BindepEntry, codename: str, profiles: set[str] = frozenset()) -> bool:  # type: ignore[assignment]
    atoms = platform_atoms(codename)
    platform_pos = [s for s in entry.selectors if s.startswith("platform:")]
    platform_neg = [s[1:] for s in entry.selectors if s.startswith("!platform:")]
    profile_pos = [s for s in entry.selectors if not s.startswith(("platform:", "!"))]
    profile_neg = [s[1:] for s in entry.selectors if s.startswith("!") and not s.startswith("!platform:")]
    if any(s in atoms for s in platform_neg):
        return False
    if platform_pos and not any(s in atoms for s in platform_pos):
        return False
    if any(p in profiles for p in profile_neg):
        return False
    if profile_pos:
        return any(p in profiles for p in profile_pos)
    return True


def packages_for(entries: list[BindepEntry], codename: str) -> list[str]:
    """Debian packages of the default profile for ``codename``, in file order."""
    seen: dict[str, None] = {}
    for entry in entries:
        if selected(entry, codename):
            seen.setdefault(entry.name)
    return list(seen)


def missing_packages(packages: list[str], runner: Runner = RUNNER) -> list[str]:
    if not packages:
        return []
    # exits 1 when a package is unknown: that one is missing
    out = runner.run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages], check=False, timeout=120)
    installed = {line.split()[0] for line in out.stdout.splitlines() if line.endswith(" installed")}
    return [p for p in packages if p not in installed]


def ensure_installed(packages: list[str], bindep_file: Path, *, log: Path | None = None, runner: Runner = RUNNER) -> list[str]:
    """Install missing packages with apt-get (as root); returns what was installed.

    Without root, raises naming exactly the packages to install.
    """
    missing = missing_packages(packages, runner)
    if not missing:
        return []
    if os.geteuid() != 0:
        raise ToolError(
            f"{bindep_file}: build dependencies are not installed: {' '.join(missing)}",
            hint=f"sudo apt-get install --no-install-recommends {' '.join(missing)}",
        )
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    what = f"apt-get could not install {' '.join(missing)} (from {bindep_file})"
    result = runner.run(cmd, env=env, log=log, check=False, timeout=APT_TIMEOUT, what=what)
    if result.returncode != 0:  # stale package lists: update them once, then try again
        update = runner.run(["apt-get", "update", "-q"], env=env, log=log, check=False, timeout=APT_TIMEOUT, what=what)
        if update.returncode == 0:
            runner.run(cmd, env=env, log=log, timeout=APT_TIMEOUT, what=what)
            return missing
        raise ToolError(f"{what}: apt-get exited {result.returncode}" + (f" (log: {log})" if log else "") +
                        f"\n{result.stderr.strip()[-2000:]}")
    return missing
