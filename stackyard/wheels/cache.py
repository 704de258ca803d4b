"""The content-addressed cache shared by every run of every release.

- ``files/sha256/<ab>/<digest>/<filename>``: downloads, stored under their own digest.
- ``built/<target>/<key>/``: wheels built from an sdist, keyed by the sdist's
  digest, the target and the builder version; ``wheel.json`` records the
  built wheel's digest so that a corrupted entry is detected.
- ``resolved/<target>/<name>-<version>.json``: which file of a pinned release
  fits the target, so a warm run asks the index nothing for unchanged pins.

Every read is verified against the digest; a mismatch deletes the entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

BUILDER_VERSION = 3  # bump when build flags or the build environment change


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Resolved:
    """The file chosen for one pin on one target."""

    name: str
    version: str
    filename: str
    url: str
    sha256: str | None

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


@dataclass(frozen=True)
class BuiltWheel:
    filename: str
    sha256: str
    seconds: float


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root

    # downloads ---------------------------------------------------------
    def file_path(self, sha256: str, filename: str) -> Path:
        return self.root / "files" / "sha256" / sha256[:2] / sha256 / filename

    def cached_file(self, sha256: str, filename: str) -> tuple[Path | None, bool]:
        """(path, corrupt): the verified cached file, or None; corrupt if one was removed."""
        path = self.file_path(sha256, filename)
        if not path.exists():
            return None, False
        if sha256_file(path) == sha256:
            return path, False
        shutil.rmtree(path.parent, ignore_errors=True)
        return None, True

    # built wheels ------------------------------------------------------
    def built_dir(self, target_key: str, sdist_sha256: str) -> Path:
        key = hashlib.sha256(f"{BUILDER_VERSION}\0{target_key}\0{sdist_sha256}".encode()).hexdigest()
        return self.root / "built" / target_key / key[:2] / key

    def cached_build(self, target_key: str, sdist_sha256: str) -> tuple[tuple[Path, BuiltWheel] | None, bool]:
        d = self.built_dir(target_key, sdist_sha256)
        meta = d / "wheel.json"
        if not meta.exists():
            return None, False
        try:
            built = BuiltWheel(**json.loads(meta.read_text()))
        except (ValueError, TypeError):
            built = None
        if built is not None:
            wheel = d / built.filename
            if wheel.exists() and sha256_file(wheel) == built.sha256:
                return (wheel, built), False
        shutil.rmtree(d, ignore_errors=True)
        return None, True

    def store_build(self, target_key: str, sdist_sha256: str, wheel: Path, seconds: float) -> tuple[Path, BuiltWheel]:
        d = self.built_dir(target_key, sdist_sha256)
        d.mkdir(parents=True, exist_ok=True)
        dest = d / wheel.name
        shutil.move(str(wheel), dest)
        built = BuiltWheel(wheel.name, sha256_file(dest), round(seconds, 2))
        tmp = d / f"wheel.json.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(asdict(built)))
        os.replace(tmp, d / "wheel.json")
        return dest, built

    # resolutions -------------------------------------------------------
    def resolved_path(self, target_key: str, key: str, version: str) -> Path:
        return self.root / "resolved" / target_key / f"{key}-{version}.json"

    def get_resolved(self, target_key: str, key: str, version: str) -> Resolved | None:
        path = self.resolved_path(target_key, key, version)
        try:
            return Resolved(**json.loads(path.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def put_resolved(self, target_key: str, key: str, resolved: Resolved) -> None:
        path = self.resolved_path(target_key, key, resolved.version)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(asdict(resolved)))
        os.replace(tmp, path)

    # build history (scheduling: longest builds first) ------------------
    def build_times(self) -> dict[str, float]:
        try:
            return dict(json.loads((self.root / "build-times.json").read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def record_build_times(self, times: dict[str, float]) -> None:
        merged = self.build_times() | times
        path = self.root / "build-times.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(merged, sort_keys=True, indent=0))
        os.replace(tmp, path)
