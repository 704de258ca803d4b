"""stackyard.wheels.cache.Cache: content-addressed downloads, built wheels, resolutions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from stackyard.wheels.cache import Cache, Resolved, sha256_file

TARGET = "bookworm-cp311-glibc2.36-x86_64"
SDIST = hashlib.sha256(b"demo-1.0.tar.gz").hexdigest()


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def store_file(cache: Cache, data: bytes, filename: str) -> tuple[str, Path]:
    digest = hashlib.sha256(data).hexdigest()
    path = cache.file_path(digest, filename)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest, path


def make_wheel(tmp_path: Path, data: bytes = b"wheel bytes", name: str = "demo-1.0-cp311-cp311-linux_x86_64.whl") -> Path:
    d = tmp_path / "build-out"
    d.mkdir(exist_ok=True)
    wheel = d / name
    wheel.write_bytes(data)
    return wheel


def test_sha256_file(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * (3 << 20))  # several read chunks
    assert sha256_file(f) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()


def test_file_path_layout(cache: Cache) -> None:
    digest = "ab" + "0" * 62
    assert cache.file_path(digest, "six-1.17.0-py2.py3-none-any.whl") == (
        cache.root / "files" / "sha256" / "ab" / digest / "six-1.17.0-py2.py3-none-any.whl"
    )


def test_cached_file_hit_and_miss(cache: Cache) -> None:
    digest, path = store_file(cache, b"content", "a-1.0.tar.gz")
    assert cache.cached_file(digest, "a-1.0.tar.gz") == (path, False)
    assert cache.cached_file(digest, "other-1.0.tar.gz") == (None, False)
    assert cache.cached_file("0" * 64, "a-1.0.tar.gz") == (None, False)


def test_cached_file_detects_corruption_and_removes_it(cache: Cache) -> None:
    digest, path = store_file(cache, b"content", "a-1.0.tar.gz")
    path.write_bytes(b"tampered")
    assert cache.cached_file(digest, "a-1.0.tar.gz") == (None, True)
    assert not path.exists()
    assert not path.parent.exists()
    assert cache.cached_file(digest, "a-1.0.tar.gz") == (None, False)  # gone: a plain miss now


def test_store_build_and_cached_build_roundtrip(cache: Cache, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path)
    dest, built = cache.store_build(TARGET, SDIST, wheel, 12.3456)
    assert not wheel.exists()  # moved, not copied
    assert dest.parent == cache.built_dir(TARGET, SDIST)
    assert dest.read_bytes() == b"wheel bytes"
    assert built.filename == wheel.name
    assert built.sha256 == hashlib.sha256(b"wheel bytes").hexdigest()
    assert built.seconds == 12.35
    assert json.loads((dest.parent / "wheel.json").read_text())["sha256"] == built.sha256
    assert cache.cached_build(TARGET, SDIST) == ((dest, built), False)


def test_cached_build_miss(cache: Cache) -> None:
    assert cache.cached_build(TARGET, SDIST) == (None, False)


def test_cached_build_detects_a_corrupted_wheel(cache: Cache, tmp_path: Path) -> None:
    dest, _ = cache.store_build(TARGET, SDIST, make_wheel(tmp_path), 1.0)
    dest.write_bytes(b"truncated")
    assert cache.cached_build(TARGET, SDIST) == (None, True)
    assert not cache.built_dir(TARGET, SDIST).exists()
    assert cache.cached_build(TARGET, SDIST) == (None, False)


def test_cached_build_detects_a_missing_wheel(cache: Cache, tmp_path: Path) -> None:
    dest, _ = cache.store_build(TARGET, SDIST, make_wheel(tmp_path), 1.0)
    dest.unlink()
    assert cache.cached_build(TARGET, SDIST) == (None, True)
    assert not cache.built_dir(TARGET, SDIST).exists()


def test_cached_build_treats_a_corrupted_record_as_corruption(cache: Cache, tmp_path: Path) -> None:
    # A damaged wheel.json (truncated write, disk error) must be detected and removed like a
    # damaged wheel, not crash every later run of this package.
    dest, _ = cache.store_build(TARGET, SDIST, make_wheel(tmp_path), 1.0)
    (dest.parent / "wheel.json").write_text('{"filename": "demo-1.0-cp311')
    assert cache.cached_build(TARGET, SDIST) == (None, True)
    assert not cache.built_dir(TARGET, SDIST).exists()


def test_build_keys_differ_by_target_and_sdist(cache: Cache) -> None:
    other_target = "trixie-cp313-glibc2.41-x86_64"
    other_sdist = hashlib.sha256(b"demo-1.1.tar.gz").hexdigest()
    dirs = {
        cache.built_dir(TARGET, SDIST),
        cache.built_dir(other_target, SDIST),
        cache.built_dir(TARGET, other_sdist),
        cache.built_dir(other_target, other_sdist),
    }
    assert len(dirs) == 4
    assert cache.built_dir(TARGET, SDIST) == cache.built_dir(TARGET, SDIST)  # deterministic
    assert cache.built_dir(TARGET, SDIST).parts[-4:-2] == ("built", TARGET)


def test_builds_for_one_target_are_invisible_to_another(cache: Cache, tmp_path: Path) -> None:
    cache.store_build(TARGET, SDIST, make_wheel(tmp_path), 1.0)
    assert cache.cached_build("trixie-cp313-glibc2.41-x86_64", SDIST) == (None, False)
    assert cache.cached_build(TARGET, "f" * 64) == (None, False)


def test_resolved_roundtrip(cache: Cache) -> None:
    r = Resolved("oslo.config", "9.7.2", "oslo.config-9.7.2-py3-none-any.whl", "https://x/oslo.config-9.7.2-py3-none-any.whl", "a" * 64)
    assert cache.get_resolved(TARGET, "oslo-config", "9.7.2") is None
    cache.put_resolved(TARGET, "oslo-config", r)
    assert cache.get_resolved(TARGET, "oslo-config", "9.7.2") == r
    assert cache.get_resolved(TARGET, "oslo-config", "9.7.1") is None
    assert cache.get_resolved("trixie-cp313-glibc2.41-x86_64", "oslo-config", "9.7.2") is None
    assert r.is_wheel
    assert not Resolved("a", "1", "a-1.tar.gz", "u", None).is_wheel
    assert list(cache.resolved_path(TARGET, "oslo-config", "9.7.2").parent.iterdir()) == [
        cache.resolved_path(TARGET, "oslo-config", "9.7.2")
    ]  # no temporary file left behind


def test_resolved_unreadable_is_a_miss(cache: Cache) -> None:
    path = cache.resolved_path(TARGET, "six", "1.17.0")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert cache.get_resolved(TARGET, "six", "1.17.0") is None
    path.write_text('{"name": "six"}')
    assert cache.get_resolved(TARGET, "six", "1.17.0") is None


def test_build_times_merge(cache: Cache) -> None:
    assert cache.build_times() == {}
    cache.record_build_times({"numpy": 120.0, "lxml": 60.0})
    cache.record_build_times({"lxml": 45.5, "pyyaml": 3.0})
    assert cache.build_times() == {"numpy": 120.0, "lxml": 45.5, "pyyaml": 3.0}
