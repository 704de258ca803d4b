"""'stackyard wheels' from a file:// index (no network), its sdist builds answered by a fake runner: which projects,
fetched and built wheels, a second run from the cache, and a failed build (exit 5, the previous wheelhouse kept)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Callable

import pytest

from stackyard import cli
from stackyard.config import Config
from stackyard.runner import Call
from stackyard.wheels.lock import lock_path
from tests.fakes import FakeRunner

SIX = b"six wheel bytes"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def targz(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tf.addfile(info, io.BytesIO(text.encode()))
    return buf.getvalue()


TINY = targz({"tiny-1.2.0/setup.py": "from setuptools import setup\nsetup()\n"})


@pytest.fixture
def config(tmp_path: Path, make_config: Callable[..., Config]) -> Config:
    return wheels_workspace(tmp_path, make_config)


def wheels_workspace(tmp_path: Path, make_config: Callable[..., Config]) -> Config:
    """A file:// index with six (a wheel) and tiny (an sdist); the recipes tiny (locked) and other (not locked)."""
    files = tmp_path / "index" / "files"
    files.mkdir(parents=True)
    (files / "six-1.17.0-py2.py3-none-any.whl").write_bytes(SIX)
    (files / "tiny-1.2.0.tar.gz").write_bytes(TINY)
    for name, filename, data in (("six", "six-1.17.0-py2.py3-none-any.whl", SIX), ("tiny", "tiny-1.2.0.tar.gz", TINY)):
        page = tmp_path / "index" / "simple" / name
        page.mkdir(parents=True)
        (page / "index.html").write_text(f'<a href="../../files/{filename}#sha256={sha(data)}">{filename}</a>\n')
    config = make_config(index_url=(tmp_path / "index" / "simple").as_uri())
    release = config.release("2025.1")
    recipes = config.paths.recipes
    recipes.mkdir(parents=True)
    for name in ("tiny", "other"):
        (recipes / f"{name}.yaml").write_text(f'name: {name}\nsource: {{pypi: {name}}}\nversions: {{"2025.1": "1.2.0"}}\n')
    lock = lock_path(config, release, "tiny")
    lock.parent.mkdir(parents=True)
    lock.write_text(f"six==1.17.0 \\\n    --hash=sha256:{sha(SIX)}\ntiny==1.2.0 \\\n    --hash=sha256:{sha(TINY)}\n")
    (config.requirements_dir(release) / "bindep.txt").write_text("")
    return config


def builds(config: Config, *, fail: bool = False) -> FakeRunner:
    """The build environment: made by venv and pip; tiny's wheel made by its PEP 517 backend (or its build failing)."""
    interpreter = config.release("2025.1").interpreter

    def backend(call: Call) -> None:
        if not fail:
            (Path(call.argv[-1]) / "tiny-1.2.0-py3-none-any.whl").write_bytes(b"tiny wheel bytes")

    fake = FakeRunner()
    fake.reply(interpreter, "-m", "venv", effect=lambda call: Path(call.argv[-1]).mkdir(parents=True))
    fake.reply("python", "-c", stdout=json.dumps({"setuptools": "75.8.0", "wheel": "0.45.1"}))
    fake.reply("python", str(Path(cli.__file__).parent / "wheels" / "pep517_build.py"), returncode=1 if fail else 0,
               stdout="error: command 'gcc' failed\n" if fail else "", effect=backend)
    return fake


def run(config: Config, capsys: pytest.CaptureFixture[str], *argv: str, runner: FakeRunner) -> tuple[int, str, str]:
    code = cli.main(["--config", str(config.file), "wheels", "--release", "2025.1", *argv], runner=runner)
    out, err = capsys.readouterr()
    return code, out, err


def counts(out: str) -> dict[str, str]:
    lines = out.splitlines()
    rows = lines[2:lines.index("", 2) if "" in lines[2:] else None]
    return {line.split()[0]: line.split()[1] for line in rows if len(line.split()) == 2}


def test_wheels_without_projects_builds_every_locked_project(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    fake = builds(config)
    code, out, err = run(config, capsys, runner=fake)
    assert code == 0, err
    assert counts(out)["fetched"] == "1" and counts(out)["built"] == "1"
    wheelhouse = config.wheelhouse_dir(config.release("2025.1"))
    assert out.splitlines()[-1] == f"wheelhouse: {wheelhouse}  (index: {wheelhouse / 'simple'})"
    manifest = json.loads((wheelhouse / "manifest.json").read_text())
    assert {(w["name"], w["origin"]) for w in manifest["wheels"]} == {("six", "fetched"), ("tiny", "built")}
    tiny = next(w for w in manifest["wheels"] if w["name"] == "tiny")
    assert tiny["source_sha256"] == sha(TINY) and tiny["sha256"] == sha(b"tiny wheel bytes")
    assert (wheelhouse / "install" / "tiny.txt").exists() and not (wheelhouse / "install" / "other.txt").exists()
    assert (wheelhouse / "six-1.17.0-py2.py3-none-any.whl").read_bytes() == SIX
    backend = [c for c in fake.calls if "pep517_build.py" in " ".join(c.argv)]
    assert len(backend) == 1 and backend[0].argv[2].endswith("tiny-1.2.0.tar.gz")  # the environment serves its build


def test_a_second_run_with_nothing_changed_says_unchanged_and_builds_nothing(config: Config,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, capsys, runner=builds(config))[0] == 0
    fake = builds(config)
    code, out, err = run(config, capsys, "tiny", runner=fake)
    assert code == 0 and counts(out) == {"unchanged": "2", "seconds": counts(out)["seconds"]}
    assert "==> wheels 2025.1 bookworm-cp311-glibc2.36-x86_64: unchanged, " in err and "(2 wheels) stands" in err
    assert not any("pep517_build.py" in " ".join(c.argv) for c in fake.calls)


def test_a_failed_build_exits_5_lists_it_and_keeps_the_previous_wheelhouse(config: Config,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(config, capsys, "tiny", runner=builds(config, fail=True))
    assert code == 5
    assert counts(out)["failed"] == "1"
    failed = [line for line in out.splitlines() if line.startswith("tiny ")]
    assert len(failed) == 1 and failed[0].split()[1] == "1.2.0" and failed[0].split()[2].endswith("tiny-1.2.0.log")
    assert "stackyard: error: 1 of 2 wheels failed; the previous wheelhouse was left in place" in err
    assert "error: command 'gcc' failed" in Path(failed[0].split()[2]).read_text()
    assert not config.wheelhouse_dir(config.release("2025.1")).exists()  # nothing published
