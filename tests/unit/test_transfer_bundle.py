"""A build worker's bundle to the publisher (stackyard.transfer.bundle and receive): only a smoke-tested deb leaves,
the bytes are checked at each hop, and a bundle that fails a check unpacks nothing. Files only: no process."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Callable

import pytest

from stackyard.config import Config, load_config
from stackyard.debs import record as deb_record
from stackyard.debs.dpkg import debs_dir
from stackyard.debs.record import DebRecord, SmokeVerdict
from stackyard.debs.venv_deb import changelog_path
from stackyard.errors import InputError, IntegrityError
from stackyard.recipes import Recipe, load_recipe
from stackyard.transfer import bundle, receive, sidecar, write_sha256
from stackyard.wheels.cache import sha256_file
from stackyard.wheels.wheelhouse import swap_in, write_sums_and_index

VERSION = "1.1-2025.1.1"
CHANGELOG = f"""venv-tinyapp ({VERSION}) bookworm-2025.1; urgency=medium

  * New upstream release 1.1.

 -- Ops <ops@example.org>  Thu, 01 Jan 2026 00:00:00 +0000
"""


@pytest.fixture
def worker(make_config: Callable[..., Config], make_recipe: Callable[..., Path]) -> tuple[Config, Recipe, Path]:
    recipe = load_recipe(make_recipe("tinyapp", 'name: tinyapp\nsource: {pypi: tinyapp}\nversions: {"2025.1": "1.1"}\n'))
    config = make_config()
    release = config.release("2025.1")
    cl = changelog_path(config, release, "venv-tinyapp")
    cl.parent.mkdir(parents=True)
    cl.write_text(CHANGELOG)
    deb = debs_dir(config, release) / f"venv-tinyapp_{VERSION}_amd64.deb"
    deb.write_bytes(b"!<arch>\n the deb's bytes")
    digest = sha256_file(deb)
    deb_record.write(deb, DebRecord("venv-tinyapp", VERSION, digest, (), SmokeVerdict(True, digest, ("tinyapp --version",))))
    return config, recipe, deb


@pytest.fixture
def publisher(tmp_path: Path) -> Config:
    (tmp_path / "publisher").mkdir()
    shutil.copy(tmp_path / "stackyard.toml", tmp_path / "publisher" / "stackyard.toml")
    return load_config(tmp_path / "publisher" / "stackyard.toml")


def test_a_tested_deb_travels_with_its_record_and_changelog_and_arrives_byte_for_byte(
        worker: tuple[Config, Recipe, Path], publisher: Config, tmp_path: Path) -> None:
    config, recipe, deb = worker
    sent = bundle(config, config.release("2025.1"), recipe, tmp_path / "outbox")
    assert sent.path.name == f"venv-tinyapp_{VERSION}.bundle.tar" and sent.deb == deb.name
    assert sidecar(sent.path).read_text() == f"{sent.sha256}  {sent.path.name}\n"
    again = bundle(config, config.release("2025.1"), recipe, tmp_path / "again")
    assert again.sha256 == sent.sha256  # deterministic: the same deb, the same bundle
    got = receive(publisher, publisher.release("2025.1"), sent.path)
    assert (got.package, got.version, got.sha256) == ("venv-tinyapp", VERSION, sent.sha256)
    final = debs_dir(publisher, publisher.release("2025.1"))
    assert (final / deb.name).read_bytes() == deb.read_bytes()
    assert deb_record.smoke_passed(final / deb.name)
    assert changelog_path(publisher, publisher.release("2025.1"), "venv-tinyapp").read_text() == CHANGELOG
    assert not list(final.glob(".incoming-*"))


def test_an_untested_deb_does_not_leave_the_worker(worker: tuple[Config, Recipe, Path], tmp_path: Path) -> None:
    config, recipe, deb = worker
    deb.write_bytes(deb.read_bytes() + b"rebuilt after its smoke test")
    with pytest.raises(InputError, match=f"venv-tinyapp {VERSION} has not passed its smoke test") as info:
        bundle(config, config.release("2025.1"), recipe, tmp_path / "outbox")
    assert "stackyard deb --release 2025.1 tinyapp" in str(info.value)
    assert not (tmp_path / "outbox").exists()


def rewrite(path: Path, change: Callable[[str, bytes], bytes | None], extra: dict[str, bytes] | None = None) -> None:
    """``path`` with each member's bytes changed (None: dropped), ``extra`` added, and its .sha256 made again."""
    out = io.BytesIO()
    with tarfile.open(path) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in src.getmembers():
            data = change(member.name, src.extractfile(member).read())  # type: ignore[union-attr]
            if data is not None:
                member.size = len(data)
                dst.addfile(member, io.BytesIO(data))
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    path.write_bytes(out.getvalue())
    write_sha256(path)


@pytest.mark.parametrize(("change", "extra", "expected"), [
    (lambda name, data: data + b"!" if name.endswith(".deb") else data, None,
     "differs from the deb its smoke record names"),
    (lambda name, data: data, {"../../etc/passwd": b"x"}, "not a bundle of stackyard bundle"),
    (lambda name, data: None if name.startswith("changelogs/") else data, None, "not a bundle of stackyard bundle"),
])
def test_a_bundle_that_fails_a_check_unpacks_nothing(worker: tuple[Config, Recipe, Path], publisher: Config, tmp_path: Path,
                                                      change: Callable[[str, bytes], bytes | None], extra: dict[str, bytes] | None,
                                                      expected: str) -> None:
    config, recipe, _ = worker
    sent = bundle(config, config.release("2025.1"), recipe, tmp_path / "outbox")
    rewrite(sent.path, change, extra)  # its .sha256 made again: the content check, not the sum, must catch it
    with pytest.raises(IntegrityError, match=expected):
        receive(publisher, publisher.release("2025.1"), sent.path)
    final = debs_dir(publisher, publisher.release("2025.1"))
    assert not final.exists() or sorted(p.name for p in final.rglob("*")) == []


def test_a_bundle_damaged_on_the_way_or_without_its_sum_is_refused(worker: tuple[Config, Recipe, Path], publisher: Config,
                                                                     tmp_path: Path) -> None:
    config, recipe, _ = worker
    sent = bundle(config, config.release("2025.1"), recipe, tmp_path / "outbox")
    data = bytearray(sent.path.read_bytes())
    data[700] ^= 0xFF
    sent.path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=rf"sha256 [0-9a-f]{{64}} differs from {sent.sha256}"):
        receive(publisher, publisher.release("2025.1"), sent.path)
    sidecar(sent.path).unlink()
    with pytest.raises(IntegrityError, match="arrived without its sha256"):
        receive(publisher, publisher.release("2025.1"), sent.path)


TINYPURE = "tinypure-1.0-py3-none-any.whl"
TINYAPP = "tinyapp-1.1-py3-none-any.whl"


def wheelhouse_with(config: Config, files: dict[str, bytes]) -> Path:
    """The release's wheelhouse as stackyard.wheels makes it: a generation (wheels, SHA256SUMS, index, manifest) the
    wheelhouse's symlink points at."""
    wheelhouse = config.wheelhouse_dir(config.release("2025.1"))
    tmp = wheelhouse.parent / ".new"
    tmp.mkdir(parents=True)
    entries = []
    for name, data in files.items():
        (tmp / name).write_bytes(data)
        project, version, *_ = name.split("-")
        entries.append({"name": project, "version": version, "filename": name, "sha256": hashlib.sha256(data).hexdigest()})
    write_sums_and_index(tmp, {e["filename"]: e["sha256"] for e in entries})
    (tmp / "manifest.json").write_text(json.dumps({"release": "2025.1", "wheels": entries}))
    swap_in(wheelhouse, tmp, wheelhouse.parent / f"{wheelhouse.name}-first")
    return wheelhouse


def test_the_wheels_a_worker_built_are_merged_into_the_publishers_wheelhouse_as_a_new_generation(
        worker: tuple[Config, Recipe, Path], publisher: Config, tmp_path: Path) -> None:
    config, recipe, _ = worker
    wheelhouse_with(config, {TINYPURE: b"pure", TINYAPP: b"app, built on the worker"})
    central = wheelhouse_with(publisher, {TINYPURE: b"pure"})
    before = central.resolve()
    sent = bundle(config, config.release("2025.1"), recipe, tmp_path / "outbox", wheels=["tinyapp==1.1"])
    receive(publisher, publisher.release("2025.1"), sent.path)
    assert central.resolve() != before and before.exists()  # a new generation; the previous one stays for its readers
    manifest = json.loads((central / "manifest.json").read_text())
    assert {w["filename"]: w.get("merged_from") for w in manifest["wheels"]} == {TINYPURE: None, TINYAPP: sent.path.name}
    assert (central / TINYAPP).read_bytes() == b"app, built on the worker"
    assert hashlib.sha256(b"app, built on the worker").hexdigest() + f"  {TINYAPP}\n" in (central / "SHA256SUMS").read_text()
    assert TINYAPP in (central / "simple" / "tinyapp" / "index.html").read_text()
    merged = central.resolve()
    receive(publisher, publisher.release("2025.1"), sent.path)  # again: the same bytes are there, no new generation
    assert central.resolve() == merged


def test_a_wheel_the_wheelhouse_has_with_other_bytes_is_refused_naming_both_and_nothing_changes(
        worker: tuple[Config, Recipe, Path], publisher: Config, tmp_path: Path) -> None:
    config, recipe, deb = worker
    wheelhouse_with(config, {TINYAPP: b"app, built on the worker"})
    central = wheelhouse_with(publisher, {TINYAPP: b"app, built elsewhere"})
    before = central.resolve()
    sent = bundle(config, config.release("2025.1"), recipe, tmp_path / "outbox", wheels=["tinyapp==1.1"])
    with pytest.raises(IntegrityError, match=f"{TINYAPP} .sha256 [0-9a-f]{{64}}. is tinyapp 1.1, which the release's wheelhouse "
                                             f"{central} has as {TINYAPP} with other bytes"):
        receive(publisher, publisher.release("2025.1"), sent.path)
    assert central.resolve() == before and (central / TINYAPP).read_bytes() == b"app, built elsewhere"
    assert not (debs_dir(publisher, publisher.release("2025.1")) / deb.name).exists()


def test_a_worker_sends_only_wheels_its_wheelhouse_has_with_their_recorded_bytes(
        worker: tuple[Config, Recipe, Path], tmp_path: Path) -> None:
    config, recipe, _ = worker
    with pytest.raises(InputError, match="no wheelhouse here, so no wheels to send"):
        bundle(config, config.release("2025.1"), recipe, tmp_path / "outbox", wheels=["tinyapp==1.1"])
    local = wheelhouse_with(config, {TINYAPP: b"app"})
    with pytest.raises(InputError, match="has no wheel of tinyapp==9.9"):
        bundle(config, config.release("2025.1"), recipe, tmp_path / "outbox", wheels=["tinyapp==9.9"])
    (local / TINYAPP).write_bytes(b"app, damaged")
    with pytest.raises(IntegrityError, match=f"{TINYAPP}: its sha256 is not the"):
        bundle(config, config.release("2025.1"), recipe, tmp_path / "outbox", wheels=["tinyapp==1.1"])
