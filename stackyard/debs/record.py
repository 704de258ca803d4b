"""The record kept beside each venv deb (``<file>.deb.json``, stackyard.stage's format).

It names the file's version and sha256 and the inputs digest it was built from;
lintian's warnings (``None``: not linted yet) and the smoke test's verdict are
added as those steps pass. A verdict holds only for the bytes it names, so a
file replaced under the same name is neither linted nor tested.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from stackyard import stage
from stackyard.wheels.cache import sha256_file


@dataclass(frozen=True)
class SmokeVerdict:
    passed: bool
    sha256: str
    checks: tuple[str, ...] = ()


@stage.record("venv-deb")
class DebRecord:
    package: str
    version: str
    sha256: str
    lintian_warnings: tuple[str, ...] | None = None  # None: not linted yet
    smoke: SmokeVerdict | None = None
    inputs: str = ""  # the lock's and the packaging's digests, as the changelog entry records them ("": before 1.0)

    @property
    def linted(self) -> bool:
        return self.lintian_warnings is not None

    @property
    def smoke_passed(self) -> bool:
        return self.smoke is not None and self.smoke.passed and self.smoke.sha256 == self.sha256


def read(deb: Path) -> DebRecord | None:
    return stage.read_record(stage.record_file(deb), DebRecord)


def intact(deb: Path, version: str) -> DebRecord | None:
    """The record of ``deb`` if it names ``version`` and the file's present bytes."""
    record = read(deb)
    return record if record and record.version == version and deb.exists() and record.sha256 == sha256_file(deb) else None


def write(deb: Path, record: DebRecord) -> DebRecord:
    stage.write_record(stage.record_file(deb), record)
    return record


def update(deb: Path, **changes: object) -> DebRecord:
    record = read(deb)
    if record is None:
        raise FileNotFoundError(stage.record_file(deb))
    return write(deb, dataclasses.replace(record, **changes))


def smoke_passed(deb: Path) -> bool:
    """Whether the file at ``deb``, as it is now, passed its smoke test."""
    record = read(deb)
    return bool(record and record.smoke_passed and deb.exists() and sha256_file(deb) == record.sha256)
