"""stackyard.debs.dpkg through a fake runner: one .deb per build, the listing's paths, lintian's verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.debs import dpkg
from stackyard.errors import ToolError
from stackyard.runner import Call
from tests.fakes import FakeRunner


def make(*names: str):  # type: ignore[no-untyped-def]
    def effect(call: Call) -> None:
        for name in names:
            (Path(call.cwd or ".").parent / name).write_bytes(b"deb")
    return effect


def test_buildpackage_removes_what_an_earlier_build_left_and_returns_the_one_deb(tmp_path: Path) -> None:
    src = tmp_path / "build" / "venv-x"
    src.mkdir(parents=True)
    for stale in ("venv-x_0.9-2025.1.1_amd64.deb", "venv-x_0.9-2025.1.1_amd64.buildinfo", "venv-x_0.9-2025.1.1_amd64.changes"):
        (src.parent / stale).write_text("old")
    (src.parent / "venv-xy_1_amd64.deb").write_text("another package")
    log = tmp_path / "logs" / "venv-x.log"
    log.parent.mkdir()
    log.write_text("the previous build's log\n")
    fake = FakeRunner().reply("dpkg-buildpackage", effect=make("venv-x_1.0-2025.1.1_amd64.deb"))
    deb = dpkg.buildpackage(src, "venv-x", "1.0-2025.1.1", log, 1748736000, runner=fake)
    assert deb == src.parent / "venv-x_1.0-2025.1.1_amd64.deb"
    assert sorted(p.name for p in src.parent.iterdir() if p.is_file()) == ["venv-x_1.0-2025.1.1_amd64.deb", "venv-xy_1_amd64.deb"]
    (call,) = fake.calls
    assert call.argv == ("dpkg-buildpackage", "-us", "-uc", "-b") and call.cwd == src
    assert call.env["SOURCE_DATE_EPOCH"] == "1748736000"
    assert "previous build" not in log.read_text() and log.read_text().startswith("$ ")


@pytest.mark.parametrize("made", [(), ("venv-x_1_amd64.deb", "venv-x_1_arm64.deb")])
def test_buildpackage_must_make_exactly_one_deb(tmp_path: Path, made: tuple[str, ...]) -> None:
    src = tmp_path / "venv-x"
    src.mkdir()
    fake = FakeRunner().reply("dpkg-buildpackage", effect=make(*made))
    with pytest.raises(ToolError, match=rf"dpkg-buildpackage made {len(made)} venv-x_1_\*.deb files, not one"):
        dpkg.buildpackage(src, "venv-x", "1", tmp_path / "x.log", 0, runner=fake)


def test_a_failed_build_names_the_package_and_its_log(tmp_path: Path) -> None:
    src = tmp_path / "venv-x"
    src.mkdir()
    fake = FakeRunner().reply("dpkg-buildpackage", returncode=2, stdout="dh_virtualenv: pip failed\n")
    with pytest.raises(ToolError, match=r"building venv-x 1: dpkg-buildpackage exited 2") as info:
        dpkg.buildpackage(src, "venv-x", "1", tmp_path / "x.log", 0, runner=fake)
    assert info.value.hint == f"see {tmp_path / 'x.log'}"


def test_contents_are_the_absolute_paths_of_the_listing(tmp_path: Path) -> None:
    fake = FakeRunner().reply("dpkg-deb", "-c", stdout=(
        "drwxr-xr-x root/root         0 2025-06-01 00:00 ./\n"
        "-rwxr-xr-x root/root      1234 2025-06-01 00:00 ./opt/openstack/x/bin/x-manage\n"
        "lrwxrwxrwx root/root         0 2025-06-01 00:00 ./usr/bin/x-manage -> /opt/openstack/x/bin/x-manage\n"
        "garbage line\n"))
    assert dpkg.contents(tmp_path / "x.deb", runner=fake) == {"/", "/opt/openstack/x/bin/x-manage", "/usr/bin/x-manage"}


def test_lintian_warnings_pass_and_errors_fail(tmp_path: Path) -> None:
    deb, log = tmp_path / "x.deb", tmp_path / "x.log"
    fake = FakeRunner().reply("lintian", stdout="W: x: tag-a\nI: x: info-only\nW: x: tag-b\n"
                              "I: x: unused-override tag-c [opt/x/*] [usr/share/lintian/overrides/x:3]\n")
    assert dpkg.lintian(deb, log, runner=fake) == (
        "W: x: tag-a", "W: x: tag-b", "I: x: unused-override tag-c [opt/x/*] [usr/share/lintian/overrides/x:3]")
    assert fake.calls[0].argv == ("lintian", "--tag-display-limit", "0", "--display-info", "--fail-on", "error", str(deb))
    fake.reply("lintian", returncode=2, stdout="E: x: one\nW: x: two\nE: x: three\n")
    with pytest.raises(ToolError, match="lintian found errors in x.deb:\nE: x: one\nE: x: three\n"):
        dpkg.lintian(deb, log, runner=fake)
    fake.reply("lintian", returncode=1, stderr="lintian: cannot read x.deb\n")  # no tag, still a failure
    with pytest.raises(ToolError, match="lintian found errors in x.deb:\nlintian: cannot read x.deb"):
        dpkg.lintian(deb, log, runner=fake)
