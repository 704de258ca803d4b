"""A tool failing inside each stage (lock, wheels, deb, wheels-deb, publish, image, verify), through the CLI:
one 'stackyard: error:' line, the stage's exit code, the path of the log that holds the tool's output, no traceback.

The tools are answered by the injected runner (tests/fakes.py): the real SubprocessRunner with only the process
start replaced, so the log file, its command line and the error are the ones a user gets."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from stackyard import cli
from stackyard.config import Config, load_config
from stackyard.debs.venv_deb import debs_dir
from stackyard.images import build as images
from stackyard.images import engine as docker_engine
from stackyard.recipes import load_recipes
from stackyard.verify.plan import make_plan
from tests.conftest import ROOT
from tests.deb_workspace import deb_runner, workspace
from tests.fake_repo import with_key
from tests.fakes import FakeRunner
from tests.unit.test_cli import deb_and_smoke
from tests.unit.test_cli_wheels import builds, wheels_workspace
from tests.unit.test_images import FakeClient, Server, publish
from tests.unit.test_lock_resolvers import DEMO, FakeResolver


@dataclass
class Stage:
    argv: list[str]
    runner: FakeRunner
    code: int  # the exit code the stage's error maps to
    log: Path  # where the failing tool's output is
    tool: str  # the command line the log records


Setup = Callable[[Path, Callable[..., Config], pytest.MonkeyPatch, pytest.CaptureFixture[str]], Stage]


def lock(tmp_path: Path, make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> Stage:
    config = make_config()
    release = config.release("2025.1")
    uc = config.requirements_dir(release) / "upper-constraints.txt"
    uc.parent.mkdir(parents=True)
    uc.write_text("demo-dist===1.2.3\nsix===1.17.0\n")
    (config.paths.recipes).mkdir(parents=True, exist_ok=True)
    (config.paths.recipes / "demo.yaml").write_text(DEMO)
    resolver = FakeResolver()
    resolver.error = "error: Failed to fetch: `https://pypi.org/simple/demo-dist/`\n  Caused by: connection refused\n"
    return Stage(["lock", "--release", "2025.1", "demo"], resolver, 3, config.logs_dir("lock", release) / "demo.log",
                 "pip compile")


def wheels(tmp_path: Path, make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str]) -> Stage:
    config = wheels_workspace(tmp_path, make_config)
    release = config.release("2025.1")
    return Stage(["wheels", "--release", "2025.1", "tiny"], builds(config, fail=True), 5,
                 config.logs_dir("wheels", release) / "tiny-1.2.0.log", "pep517_build.py")


def dpkg_buildpackage_fails(argv: list[str], step: str, log: str) -> Setup:
    """A stage that builds a .deb (deb, wheels-deb) from a venv-deb workspace, dpkg-buildpackage failing."""

    def setup(tmp_path: Path, make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch,
              capsys: pytest.CaptureFixture[str]) -> Stage:
        config = make_config()
        release = config.release("2025.1")
        workspace(config, release)
        fake = deb_runner().reply("dpkg-buildpackage", returncode=2, stdout="dh_virtualenv: error: pip failed\n")
        return Stage(argv, fake, 6, config.logs_dir(step, release) / log, "dpkg-buildpackage -us -uc -b")

    return setup


def publish_(tmp_path: Path, make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> Stage:
    config = make_config()
    release = config.release("2025.1")
    workspace(config, release)
    assert cli.main(["--config", str(config.file), "deb", "--release", "2025.1", "tiny"], runner=deb_and_smoke(config)) == 0
    assert (debs_dir(config, release) / "venv-tiny_1.2.0-2025.1.1_amd64.deb").exists()
    capsys.readouterr()
    fake = with_key(config).reply("reprepro", returncode=254, stderr="Error opening database\n")
    return Stage(["publish", "--release", "2025.1", "tiny"], fake, 6, config.paths.output / "logs" / "repo.log",
                 "reprepro --basedir")


def image(tmp_path: Path, make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> Stage:
    config = make_config(extra='[images]\nregistry = "registry.example:5000"\n')
    config.file.write_text(config.file.read_text().replace('output = "var"\n', f'output = "var"\nimages = "{ROOT / "images"}"\n'))
    config = load_config(config.file)
    config.paths.recipes.mkdir(parents=True, exist_ok=True)
    (config.paths.recipes / "tiny.yaml").write_text(
        'name: tiny\ndescription: Tiny service\nsource: {pypi: tiny}\nversions: {"2025.1": "1.2.0"}\n'
        "image: {wsgi: uwsgi, packages: [curl]}\n")
    monkeypatch.setattr(images, "RepoServer", Server)
    monkeypatch.setattr(docker_engine, "connect", lambda settings: FakeClient())
    fake = publish(config).reply("mmdebstrap", returncode=1, stderr="E: cannot read http://deb.debian.org/debian\n")
    release = config.release("2025.1")
    return Stage(["image", "--release", "2025.1", "tiny"], fake, 6, config.logs_dir("image", release) / "tiny.log",
                 "mmdebstrap --variant=minbase")


def verify(tmp_path: Path, make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str]) -> Stage:
    config = make_config()
    config.paths.recipes.mkdir(parents=True, exist_ok=True)
    for recipe in ("keystone", "python-openstackclient"):
        shutil.copy(ROOT / "recipes" / f"{recipe}.yaml", config.paths.recipes)
    plan = make_plan(load_recipes(config.paths.recipes), ["keystone"], hostname="h")
    binary = config.repo.path / "dists/bookworm-2025.1-staging/main/binary-amd64"
    binary.mkdir(parents=True)
    (binary / "Packages").write_text("".join(f"Package: {p}\nVersion: 1\nFilename: pool/{p}.deb\nSHA256: s\n\n"
                                             for p in plan.packages))
    fake = FakeRunner().reply("mmdebstrap", returncode=1, stderr="E: cannot read http://deb.debian.org/debian\n")
    return Stage(["verify", "--release", "2025.1", "keystone"], fake, 6,
                 config.paths.output / "verify" / "2025.1" / "verify.log", "mmdebstrap --variant=minbase")


STAGES: dict[str, Setup] = {
    "lock": lock,
    "wheels": wheels,
    "deb": dpkg_buildpackage_fails(["deb", "--release", "2025.1", "tiny"], "deb", "venv-tiny_1.2.0-2025.1.1.log"),
    "wheels-deb": dpkg_buildpackage_fails(["wheels-deb", "--release", "2025.1"], "wheels-deb",
                                          "openstack-wheels-2025.1_20250601.1.log"),
    "publish": publish_,
    "image": image,
    "verify": verify,
}


@pytest.mark.parametrize("name", list(STAGES))
def test_a_tool_failure_is_one_error_line_with_the_stage_exit_code_and_its_log(
        name: str, tmp_path: Path, make_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("STACKYARD_DEBUG", raising=False)
    stage = STAGES[name](tmp_path, make_config, monkeypatch, capsys)
    config_file = tmp_path / "stackyard.toml"
    code = cli.main(["--config", str(config_file), *stage.argv], runner=stage.runner)
    out, err = capsys.readouterr()
    assert code == stage.code, err
    assert "Traceback" not in out + err and "internal error" not in err
    errors = [line for line in err.splitlines() if line.startswith("stackyard:")]
    assert len(errors) == 1 and errors[0].startswith("stackyard: error: "), err
    assert str(stage.log) in out + err, out + err  # the log is named ...
    assert stage.tool in stage.log.read_text()  # ... and holds the failing command (and its output)
