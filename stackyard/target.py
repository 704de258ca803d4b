"""What a release builds for: marker environment and compatible wheel tags.

Computed from the release (python, glibc) and architecture, not from the
running interpreter, so a lock or a wheelhouse means the same on any host.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from packaging import tags

if TYPE_CHECKING:
    from stackyard.config import Config, Release


@dataclass(frozen=True)
class Target:
    python: str  # "3.11"
    glibc: str  # "2.36"
    machine: str  # "x86_64"
    codename: str

    @property
    def python_tuple(self) -> tuple[int, int]:
        major, minor = self.python.split(".")
        return int(major), int(minor)

    @property
    def key(self) -> str:
        """Identifies builds for this target (part of cache keys)."""
        return f"{self.codename}-cp{self.python.replace('.', '')}-glibc{self.glibc}-{self.machine}"

    def marker_environment(self) -> dict[str, str]:
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python}.0",
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": f"{self.python}.0",
            "python_version": self.python,
            "sys_platform": "linux",
        }

    def platforms(self) -> list[str]:
        """linux platform tags, most specific first (manylinux_2_N down to 2_5)."""
        major, minor = (int(x) for x in self.glibc.split("."))
        out: list[str] = []
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        for m in range(minor, 4, -1):
            out.append(f"manylinux_{major}_{m}_{self.machine}")
            if m in legacy:
                out.append(f"{legacy[m]}_{self.machine}")
        out.append(f"linux_{self.machine}")
        return out

    @cached_property
    def wheel_tags(self) -> dict[tags.Tag, int]:
        """Every compatible tag mapped to its priority (lower is better)."""
        platforms = self.platforms()
        ordered = list(tags.cpython_tags(self.python_tuple, platforms=platforms))
        ordered += list(tags.compatible_tags(self.python_tuple, "cp" + self.python.replace(".", ""), platforms))
        return {tag: i for i, tag in enumerate(ordered)}

    def wheel_priority(self, filename: str) -> int | None:
        """Priority of a wheel file for this target, or None if incompatible."""
        from packaging.utils import InvalidWheelFilename, parse_wheel_filename

        try:
            _, _, _, file_tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            return None
        best = [self.wheel_tags[t] for t in file_tags if t in self.wheel_tags]
        return min(best) if best else None


def target_for(config: Config, release: Release) -> Target:
    """What ``release`` builds for on ``config``'s architecture."""
    return Target(release.python, release.glibc, config.wheel_machine, release.codename)
