"""Building wheels from sdists: the build requirements an sdist declares, when the shared environment serves
(its PEP 517 backend directly) and when pip builds in isolation, and the one wheel a build must make."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from stackyard.errors import ToolError
from stackyard.runner import Call
from stackyard.target import Target
from stackyard.wheels import sdist_build
from stackyard.wheels.sdist_build import BUILD_FLAGS, BuildEnv, build_requirements
from tests.fakes import FakeRunner

DEFAULT = ["setuptools>=40.8.0", "wheel"]
BACKEND = str(Path(sdist_build.__file__).with_name("pep517_build.py"))
LOAD_CHECK = str(sdist_build.LOAD_CHECK)


def sdist(path: Path, files: dict[str, str]) -> Path:
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as zf:
            for name, text in files.items():
                zf.writestr(name, text)
    else:
        with tarfile.open(path, "w:gz") as tf:
            for name, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("name", ["demo-1.0.tar.gz", "demo-1.0.zip"])
def test_build_requirements_come_from_the_top_pyproject(tmp_path: Path, name: str) -> None:
    path = sdist(tmp_path / name, {
        "demo-1.0/vendored/pyproject.toml": '[build-system]\nrequires = ["hatchling"]\n',  # not the project's
        "demo-1.0/pyproject.toml": '[build-system]\nrequires = ["flit_core>=3.2,<4"]\nbuild-backend = "flit_core.buildapi"\n',
    })
    assert build_requirements(path) == ["flit_core>=3.2,<4"]


def test_without_a_pyproject_or_its_build_system_setuptools_is_assumed(tmp_path: Path) -> None:
    assert build_requirements(sdist(tmp_path / "a-1.tar.gz", {"a-1/setup.py": ""})) == DEFAULT
    assert build_requirements(sdist(tmp_path / "b-1.tar.gz", {"b-1/pyproject.toml": "[tool.black]\n"})) == DEFAULT
    (tmp_path / "broken-1.tar.gz").write_bytes(b"not a tarball")
    assert build_requirements(tmp_path / "broken-1.tar.gz") == DEFAULT


def test_an_unparseable_pyproject_is_a_requirement_nothing_satisfies(tmp_path: Path) -> None:
    assert build_requirements(sdist(tmp_path / "c-1.tar.gz", {"c-1/pyproject.toml": "[build-system\n"})) == [
        "<unparseable pyproject.toml>"]


@pytest.fixture
def env(tmp_path: Path, bookworm: Target) -> BuildEnv:
    return BuildEnv(tmp_path / "cache", "/usr/bin/python3", bookworm, "https://index/simple", "https://tools/simple",
                    runner=FakeRunner())


def ready(env: BuildEnv, installed: dict[str, str]) -> FakeRunner:
    env.path.mkdir(parents=True)
    (env.path / ".ready").write_text("")
    fake = FakeRunner().reply(str(env.python), "-c", stdout=json.dumps(installed))
    env.runner = fake
    return fake


def test_the_environment_is_made_once_with_the_tools_index(env: BuildEnv, tmp_path: Path) -> None:
    fake = FakeRunner().reply("/usr/bin/python3", "-m", "venv", effect=lambda call: Path(call.argv[-1]).mkdir())
    env.runner = fake
    env.ensure()
    assert fake.calls[0].argv == ("/usr/bin/python3", "-m", "venv", str(env.path))
    install = fake.calls[1].argv
    assert install[:3] == (str(env.python), "-m", "pip") and install[install.index("--index-url") + 1] == "https://tools/simple"
    assert set(env.requirements) <= set(install)
    assert list((env.path / "home").iterdir()) == []  # no ~/.pydistutils.cfg: extensions compile one by one
    env.ensure()
    assert len(fake.calls) == 2  # ready: nothing runs again


def test_a_missing_interpreter_names_the_debian_packages(tmp_path: Path, bookworm: Target) -> None:
    env = BuildEnv(tmp_path / "cache", str(tmp_path / "python3.11"), bookworm, "i", "t", runner=FakeRunner())
    with pytest.raises(ToolError, match="python3.11 not found") as info:
        env.ensure()
    assert info.value.hint == "apt-get install python3.11-venv python3.11-dev"


def test_the_environment_satisfies_requirements_by_version_and_marker(env: BuildEnv) -> None:
    fake = ready(env, {"setuptools": "75.8.0", "Cython": "3.0.12", "wheel": "0.45.1"})
    assert env.satisfies(["setuptools>=61", "cython<3.1", "wheel"])
    assert env.satisfies(["setuptools", "tomli; python_version < '3.11'"])  # not needed on 3.11
    assert not env.satisfies(["setuptools>=80"])
    assert not env.satisfies(["hatchling"])
    assert not env.satisfies(["<unparseable pyproject.toml>"])
    assert len(fake.calls) == 1  # listed once


def wheel_into(directory_flag: str | None):  # type: ignore[no-untyped-def]
    def effect(call: Call) -> None:
        out = Path(call.argv[call.argv.index(directory_flag) + 1] if directory_flag else call.argv[-1])
        (out / "demo-1.0-cp311-cp311-linux_x86_64.whl").write_bytes(b"wheel")
    return effect


def test_a_local_sdist_the_environment_serves_goes_straight_to_its_backend(env: BuildEnv, tmp_path: Path) -> None:
    fake = ready(env, {})
    fake.reply(str(env.python), BACKEND, effect=wheel_into(None))
    source = sdist(tmp_path / "demo-1.0.tar.gz", {"demo-1.0/setup.py": ""})
    log = tmp_path / "logs" / "demo.log"
    wheel = env.build(str(source), log, isolated=False)
    try:
        assert wheel.name == "demo-1.0-cp311-cp311-linux_x86_64.whl"
        call, check = fake.calls
        assert call.argv[1].endswith("stackyard/wheels/pep517_build.py") and call.argv[2] == str(source)
        assert {k: call.env[k] for k in BUILD_FLAGS} == BUILD_FLAGS and call.env["HOME"] == str(env.path / "home")
        assert check.argv == (str(env.python), LOAD_CHECK, str(wheel))  # then its modules must load
    finally:
        shutil.rmtree(wheel.parent)


def test_a_wheel_whose_module_misses_a_symbol_fails_naming_both_and_is_not_kept(env: BuildEnv, tmp_path: Path) -> None:
    fake = ready(env, {})
    fake.reply(str(env.python), "-m", "pip", "wheel", effect=wheel_into("-w"))
    fake.reply(str(env.python), LOAD_CHECK, returncode=1, stdout=(
        "not judged here: demo/_odbc.cpython-311-x86_64-linux-gnu.so: libodbc.so.2: cannot open\n"
        "does not load: demo/_speed.cpython-311-x86_64-linux-gnu.so: undefined symbol: demo_add\n"
        "2 extension modules, 1 that do not load\n"))
    log = tmp_path / "demo.log"
    with pytest.raises(ToolError) as info:
        env.build("https://files.example/demo-1.0.tar.gz", log, isolated=True)
    assert str(info.value).splitlines()[0] == (
        "demo-1.0-cp311-cp311-linux_x86_64.whl, built from demo-1.0.tar.gz: "
        f"demo/_speed.cpython-311-x86_64-linux-gnu.so: undefined symbol: demo_add (log: {log})")
    assert "a re-run builds it again" in (info.value.hint or "")
    assert not Path(fake.calls[-1].argv[-1]).parent.exists()  # the wheel went with its scratch directory


@pytest.mark.parametrize("isolated", [True, False])
def test_anything_else_goes_through_pip(env: BuildEnv, tmp_path: Path, isolated: bool) -> None:
    fake = ready(env, {})
    fake.reply(str(env.python), "-m", "pip", "wheel", effect=wheel_into("-w"))
    wheel = env.build("https://files.example/demo-1.0.tar.gz", tmp_path / "demo.log", isolated=isolated)
    try:
        argv = fake.calls[0].argv
        assert argv[argv.index("--index-url") + 1] == "https://index/simple" and argv[-1] == "https://files.example/demo-1.0.tar.gz"
        assert ("--no-build-isolation" in argv) is not isolated
    finally:
        shutil.rmtree(wheel.parent)


def test_a_build_that_makes_no_wheel_fails_and_leaves_nothing(env: BuildEnv, tmp_path: Path) -> None:
    fake = ready(env, {})
    made: list[Path] = []
    fake.reply(str(env.python), "-m", "pip", "wheel", effect=lambda call: made.append(Path(call.argv[call.argv.index("-w") + 1])))
    with pytest.raises(ToolError, match=r"building a wheel from demo-1.0.tar.gz made 0 wheels, not one"):
        env.build("https://files.example/demo-1.0.tar.gz", tmp_path / "demo.log", isolated=True)
    assert made and not made[0].exists()
