"""Parsing upper-constraints and lock files.

upper-constraints uses ``name===version`` (arbitrary equality) and repeats a
name with environment markers for different pythons; for a target only the
lines whose markers hold apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from stackyard.errors import InputError
from stackyard.target import Target


@dataclass(frozen=True)
class Pin:
    name: str  # as written upstream
    version: str
    line: int
    marker: str = ""

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)

    def as_constraint(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Constraints:
    file: Path
    pins: dict[str, Pin]  # canonical name -> pin that applies to the target

    def get(self, name: str) -> Pin | None:
        return self.pins.get(canonicalize_name(name))

    def without(self, names: set[str]) -> "Constraints":
        drop = {canonicalize_name(n) for n in names}
        return Constraints(self.file, {k: v for k, v in self.pins.items() if k not in drop})


PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*===?\s*(?P<version>[^\s;]+)\s*(?:;\s*(?P<marker>.+))?$")


def parse_constraints(text: str, file: Path, target: Target) -> Constraints:
    """Pins applying to ``target``; a malformed line raises naming file:line."""
    env = target.marker_environment()
    pins: dict[str, Pin] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        m = PIN.match(line)
        if not m:
            raise InputError(
                f"{file}:{lineno}: malformed constraint {raw.strip()!r}",
                hint="each line must be 'name===version' with an optional '; marker'",
            )
        marker = m.group("marker") or ""
        if marker:
            try:
                if not Marker(marker).evaluate(env):
                    continue
            except InvalidMarker as exc:
                raise InputError(f"{file}:{lineno}: invalid environment marker {marker!r}: {exc}") from None
        pin = Pin(m.group("name"), m.group("version"), lineno, marker)
        previous = pins.get(pin.key)
        if previous and previous.version != pin.version:
            raise InputError(
                f"{file}:{lineno}: {pin.name} is pinned to {pin.version} here and to {previous.version} "
                f"on line {previous.line} for the same target (python {target.python})",
                hint="make the environment markers of the two lines exclusive",
            )
        pins[pin.key] = pin
    return Constraints(file, pins)


def load_constraints(file: Path, target: Target) -> Constraints:
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise InputError(f"{file}: not found", hint="run 'stackyard requirements update' for this release") from None
    return parse_constraints(text, file, target)


@dataclass(frozen=True)
class LockEntry:
    name: str
    version: str  # "" for a direct reference
    hashes: tuple[str, ...]  # "sha256:<hex>"
    line: int
    url: str | None = None  # direct reference (local path or git+URL@ref)

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)


def parse_lock(text: str, file: Path) -> list[LockEntry]:
    """A pip-compile ``--generate-hashes`` output: pinned names with their hashes."""
    entries: list[LockEntry] = []
    logical: list[tuple[int, str]] = []
    buf, start = "", 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.split("#", 1)[0].rstrip() if not raw.lstrip().startswith("--hash") else raw.rstrip()
        if not buf:
            start = lineno
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        if buf.strip():
            logical.append((start, buf.strip()))
        buf = ""
    for lineno, line in logical:
        parts = line.split()
        req_text = " ".join(p for p in parts if not p.startswith("--hash"))
        hashes = tuple(p.split("=", 1)[1] for p in parts if p.startswith("--hash"))
        if req_text.startswith("-"):
            continue  # options such as --index-url are not requirements
        try:
            req = Requirement(req_text)
        except InvalidRequirement as exc:
            raise InputError(f"{file}:{lineno}: malformed lock line: {exc}") from None
        if req.url:
            entries.append(LockEntry(req.name, "", hashes, lineno, req.url))
            continue
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator not in ("==", "==="):
            raise InputError(f"{file}:{lineno}: {req.name} is not pinned with '=='", hint="regenerate the lock with 'stackyard lock'")
        entries.append(LockEntry(req.name, specs[0].version, hashes, lineno))
    return entries


def load_lock(file: Path) -> list[LockEntry]:
    try:
        return parse_lock(file.read_text(), file)
    except FileNotFoundError:
        raise InputError(f"{file}: no lock", hint="run 'stackyard lock' for this release and project first") from None
