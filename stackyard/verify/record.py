"""Verify records, and the promotion gate's decision from them.

Every verify that reached a verdict writes ``var/verify/<release>/record.json``
(and keeps a copy under ``records/<started>.json``): the packages it installed
(name, version, sha256 of the staged .deb), each step's result and seconds,
and whether it passed. ``refusals`` decides which packages may be promoted: a
package at a version (and sha256) may go when the latest verify that
installed exactly that file passed.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from debian.deb822 import Packages

RECORD = "record.json"
HISTORY = "records"
EXEMPT_PREFIXES = ("openstack-wheels-",)  # the wheelhouse deb: build input, nothing runs it


@dataclass(frozen=True)
class PackageRecord:
    name: str
    version: str
    sha256: str
    filename: str = ""  # pool/... in the repository


@dataclass
class StepRecord:
    name: str
    kind: str  # "phase" | "setup" | "unit" | "scenario"
    result: str = "ok"  # "ok" | "failed"
    seconds: float = 0.0
    service: str = ""  # the unit or project it concerns
    state: str = ""  # unit state (active, failed...)
    api: str = ""  # "200 http://..." when an API answered
    detail: str = ""


@dataclass
class VerifyRecord:
    release: str
    distribution: str
    started: str  # UTC, 20250101T120000Z
    projects: list[str]
    packages: list[PackageRecord]
    steps: list[StepRecord] = field(default_factory=list)
    passed: bool = False
    seconds: float = 0.0
    failure: dict[str, str] | None = None  # step, unit, message, journal
    overrides: list[str] = field(default_factory=list)
    peak_memory_bytes: int = 0
    upgrades: list[PackageRecord] = field(default_factory=list)  # what --upgrade moved to, on the running plane
    phases: dict[str, float] = field(default_factory=dict)  # boot+install, start, scenario: seconds

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "VerifyRecord":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["packages"] = [PackageRecord(**p) for p in data.get("packages", [])]
        known["steps"] = [StepRecord(**s) for s in data.get("steps", [])]
        known["upgrades"] = [PackageRecord(**p) for p in data.get("upgrades", [])]
        return cls(**known)


def write_record(workdir: Path, record: VerifyRecord) -> Path:
    history = workdir / HISTORY
    history.mkdir(parents=True, exist_ok=True)
    text = record.to_json()
    kept = history / f"{record.started}.json"
    kept.write_text(text)
    tmp = workdir / f".{RECORD}.tmp"
    tmp.write_text(text)
    os.replace(tmp, workdir / RECORD)
    return workdir / RECORD


def read_records(workdir: Path) -> list[tuple[Path, VerifyRecord]]:
    """Every record kept for a release, oldest first (unreadable ones are skipped)."""
    found: dict[str, tuple[Path, VerifyRecord]] = {}
    for path in [*sorted((workdir / HISTORY).glob("*.json")), workdir / RECORD]:
        try:
            record = VerifyRecord.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        found.setdefault(record.started, (path, record))
    return [found[k] for k in sorted(found)]


def passed_with(workdir: Path, distribution: str, projects: list[str], packages: list[PackageRecord],
                overrides: list[str], upgrades: list[PackageRecord]) -> tuple[Path, VerifyRecord] | None:
    """The latest record, if it passed on ``distribution`` installing exactly ``packages`` (versions and sha256)
    for the same projects, settings and upgrades: a verify of the very same bits need not run again."""
    records = read_records(workdir)
    if not records:
        return None
    path, latest = records[-1]
    same = (latest.passed and latest.distribution == distribution and sorted(latest.projects) == sorted(projects)
            and latest.packages == packages and latest.overrides == overrides and latest.upgrades == upgrades)
    return (path, latest) if same else None


def read_packages_index(dist_dir: Path, component: str, architecture: str) -> dict[str, PackageRecord]:
    """name -> the package in a distribution's Packages index (reprepro keeps one version per name)."""
    binary = dist_dir / component / f"binary-{architecture}"
    for name, opener in (("Packages", open), ("Packages.gz", gzip.open), ("Packages.xz", lzma.open)):
        path = binary / name
        if path.exists():
            with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
                return {p["Package"]: PackageRecord(p["Package"], p["Version"], p.get("SHA256", ""), p.get("Filename", ""))
                        for p in Packages.iter_paragraphs(fh, use_apt_pkg=False)}
    return {}


def _describe(path: Path, record: VerifyRecord) -> str:
    if record.passed:
        return f"{path} passed"
    failure = record.failure or {}
    where = failure.get("unit") or failure.get("step") or "?"
    return f"{path} failed at {where}"


def refusals(workdir: Path, wanted: Mapping[str, PackageRecord | str]) -> dict[str, str]:
    """Which of ``wanted`` (name -> the staged package, or just its version) may not be promoted, and why.

    A package may go when the latest record that installed it at that version
    (and, when both are known, that sha256) passed."""
    records = read_records(workdir)
    out: dict[str, str] = {}
    for name, staged in sorted(wanted.items()):
        if name.startswith(EXEMPT_PREFIXES):
            continue
        version = staged if isinstance(staged, str) else staged.version
        sha256 = "" if isinstance(staged, str) else staged.sha256
        matching = []
        others = set()
        for path, record in records:
            for p in record.packages:
                if p.name != name:
                    continue
                if p.version == version and (not sha256 or not p.sha256 or p.sha256 == sha256):
                    matching.append((path, record))
                else:
                    others.add(p.version)
        if not matching:
            seen = f" (verified: {', '.join(sorted(others))})" if others else ""
            where = workdir / RECORD
            out[name] = f"{name} {version}: no verify record has it{seen}; {where}" + ("" if where.exists() else " is missing")
            continue
        path, latest = matching[-1]
        if not latest.passed:
            out[name] = f"{name} {version}: its latest verify {_describe(path, latest)}"
    return out


def promotion_note(release: str, packages: Mapping[str, str], force: str | None, workdir: Path,
                   snapshot: str) -> dict[str, Any]:
    """What ``promote`` writes beside a snapshot: what went, on which verify records, or the reason it was forced."""
    verified: dict[str, str] = {}
    for name, version in packages.items():
        for _path, record in reversed(read_records(workdir)):
            if record.passed and any(p.name == name and p.version == version for p in record.packages):
                verified[name] = f"verify {record.started} ({record.distribution})"
                break
    return {"release": release, "snapshot": snapshot, "packages": dict(sorted(packages.items())),
            "verified": verified, "forced": force}
