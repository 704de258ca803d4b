"""openstack-wheels-<release>: where the wheels go and with which architecture, and when the version moves."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from debian.changelog import Changelog

from stackyard.config import Config, Release
from stackyard.debs.wheels_deb import build_wheels_deb
from stackyard.errors import InputError
from stackyard.runner import Call
from tests.fakes import FakeRunner


def wheelhouse(config: Config, release: Release, *filenames: str, source_date: str | None = "2025-06-01") -> Path:
    path = config.wheelhouse_dir(release)
    (path / "simple").mkdir(parents=True, exist_ok=True)
    for f in filenames:
        (path / f).write_bytes(f.encode())
    (path / "manifest.json").write_text(json.dumps({"wheels": [{"filename": f} for f in filenames]}))
    (path / "SHA256SUMS").write_text("".join(f"{len(f):064x}  {f}\n" for f in filenames))
    if source_date:
        requirements = config.requirements_dir(release)
        requirements.mkdir(parents=True, exist_ok=True)
        (requirements / "SOURCE").write_text(f"commit: abc\ndate: {source_date}\n")
    return path


class Builds(FakeRunner):
    """Answers dpkg-buildpackage with the .deb it would make and keeps the debian/ it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.trees: list[dict[str, str]] = []
        self.reply("dpkg-buildpackage", effect=self.build)
        self.reply("lintian", stdout="W: openstack-wheels-2025.1: some-tag\n")

    def build(self, call: Call) -> None:
        src = Path(call.cwd or ".")
        files = {str(p.relative_to(src)): p.read_text() for p in (src / "debian").rglob("*") if p.is_file()}
        files["payload"] = " ".join(sorted(p.name for p in (src / "wheelhouse").iterdir()))
        self.trees.append(files)
        changelog = Changelog(files["debian/changelog"])
        arch = next(line.split()[1] for line in files["debian/control"].splitlines() if line.startswith("Architecture:"))
        (src.parent / f"{changelog.package}_{changelog.version}_{arch}.deb").write_bytes(b"deb")


def test_pure_wheels_go_to_usr_share_as_architecture_all(config: Config, release: Release) -> None:
    wheelhouse(config, release, "six-1.17.0-py2.py3-none-any.whl", "pbr-6.1.0-py2.py3-none-any.whl")
    fake = Builds()
    result = build_wheels_deb(config, release, runner=fake)
    assert (result.record.package, result.record.version, result.record.architecture, result.record.wheels) == (
        "openstack-wheels-2025.1", "20250601.1", "all", 2)
    assert result.file == config.paths.output / "debs" / "2025.1" / "openstack-wheels-2025.1_20250601.1_all.deb"
    assert result.file.exists() and result.record.lintian_warnings == ("W: openstack-wheels-2025.1: some-tag",)
    tree = fake.trees[0]
    assert tree["debian/openstack-wheels-2025.1.install"] == "wheelhouse/* usr/share/openstack-wheels/2025.1/\n"
    assert tree["debian/source/format"] == "3.0 (native)\n"
    assert "Architecture: all\n" in tree["debian/control"]
    assert tree["payload"] == "SHA256SUMS manifest.json pbr-6.1.0-py2.py3-none-any.whl simple six-1.17.0-py2.py3-none-any.whl"
    changelog = Changelog(tree["debian/changelog"])
    assert changelog.date == "Sun, 01 Jun 2025 00:00:00 +0000"
    assert "Wheelhouse of OpenStack 2025.1: 2 wheels, upper-constraints of 20250601." in "\n".join(changelog[0].changes())
    assert fake.calls[0].env["SOURCE_DATE_EPOCH"] == "1748736000"


def test_one_compiled_wheel_makes_it_architecture_specific_under_usr_lib(config: Config, release: Release) -> None:
    wheelhouse(config, release, "six-1.17.0-py2.py3-none-any.whl",
               "MarkupSafe-3.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    fake = Builds()
    result = build_wheels_deb(config, release, runner=fake)
    assert result.record.architecture == "amd64" and result.file.name.endswith("_amd64.deb")
    assert fake.trees[0]["debian/openstack-wheels-2025.1.install"] == "wheelhouse/* usr/lib/openstack-wheels/2025.1/\n"


def test_the_version_moves_only_when_the_wheelhouse_or_its_date_does(config: Config, release: Release) -> None:
    wheelhouse(config, release, "six-1.17.0-py2.py3-none-any.whl")
    first = build_wheels_deb(config, release, runner=Builds())
    assert first.record.version == "20250601.1" and not first.unchanged
    fake = Builds()
    again = build_wheels_deb(config, release, runner=fake)  # unchanged: same version, that file stands
    assert again.unchanged and again.record.version == "20250601.1" and again.file == first.file and fake.calls == []
    rebuilt = build_wheels_deb(config, release, rebuild=True, runner=fake)
    assert not rebuilt.unchanged and rebuilt.record.version == "20250601.1" and [c.argv[0] for c in fake.calls] == [
        "dpkg-buildpackage", "lintian"]
    wheelhouse(config, release, "six-1.17.0-py2.py3-none-any.whl", "pbr-6.1.0-py2.py3-none-any.whl")
    assert build_wheels_deb(config, release, runner=Builds()).record.version == "20250601.2"
    wheelhouse(config, release, "six-1.17.0-py2.py3-none-any.whl", "pbr-6.1.0-py2.py3-none-any.whl", source_date="2025-07-15")
    assert build_wheels_deb(config, release, runner=Builds()).record.version == "20250715.1"  # a new upper-constraints date


def test_without_a_source_record_the_date_is_the_epoch_never_the_clock(config: Config, release: Release) -> None:
    wheelhouse(config, release, "six-1.17.0-py2.py3-none-any.whl", source_date=None)
    fake = Builds()
    assert build_wheels_deb(config, release, runner=fake).record.version == "19700101.1"
    assert fake.calls[0].env["SOURCE_DATE_EPOCH"] == "0"


def test_no_wheelhouse_says_what_to_run(config: Config, release: Release) -> None:
    fake = Builds()
    with pytest.raises(InputError, match="no wheelhouse") as info:
        build_wheels_deb(config, release, runner=fake)
    assert info.value.hint == "run 'stackyard wheels --release 2025.1' first" and fake.calls == []


def test_without_a_record_a_file_built_before_keeps_its_version_taken(config: Config, release: Release) -> None:
    wheelhouse(config, release, "six-1.17.0-py2.py3-none-any.whl")
    out = config.paths.output / "debs" / "2025.1"
    out.mkdir(parents=True)
    (out / "openstack-wheels-2025.1_20250601.3_all.deb").write_bytes(b"an older build")
    assert build_wheels_deb(config, release, runner=Builds()).record.version == "20250601.4"


def test_the_state_file_of_stackyard_0_becomes_the_record_without_a_rebuild(config: Config, release: Release) -> None:
    wheelhouse(config, release, "six-1.17.0-py2.py3-none-any.whl")
    out = config.paths.output / "debs" / "2025.1"
    out.mkdir(parents=True)
    (out / "openstack-wheels-2025.1_20250601.2_all.deb").write_bytes(b"built by stackyard 0")
    digest = hashlib.sha256((config.wheelhouse_dir(release) / "SHA256SUMS").read_bytes()).hexdigest()
    (out / ".openstack-wheels-2025.1.state.json").write_text(json.dumps(
        {"base": "20250601", "digest": digest, "n": 2, "version": "20250601.2"}))
    fake = Builds()
    result = build_wheels_deb(config, release, runner=fake)
    assert result.unchanged and result.record.version == "20250601.2" and fake.calls == []
    assert not (out / ".openstack-wheels-2025.1.state.json").exists()
