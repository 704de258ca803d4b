"""stackyard.wait_for and ``stackyard wait-for``: a new version awaited on a file:// index (no network, no sleeping)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from stackyard import cli
from stackyard.config import Config
from stackyard.errors import EXIT_CODES, FetchError, InputError
from stackyard.http import Http
from stackyard.runner import Result
from stackyard.wait_for import delays, forget_cached_pages, wait_for_version


def write_page(root: Path, project: str, files: list[str]) -> None:
    d = root / "simple" / project
    d.mkdir(parents=True, exist_ok=True)
    (d / "index.html").write_text("<html><body>" + "".join(f'<a href="../../{f}">{f}</a>' for f in files) + "</body></html>")


class Clock:
    """A fake sleep and monotonic clock: sleeping runs ``on_sleep`` (the upload happening meanwhile)."""

    def __init__(self, on_sleep: Callable[[int], None] = lambda n: None) -> None:
        self.now, self.slept, self.on_sleep = 0.0, [], on_sleep

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        self.on_sleep(len(self.slept))

    def __call__(self) -> float:
        return self.now


def test_delays_double_up_to_ten_times_the_first() -> None:
    assert delays(7, 30) == [30, 60, 120, 240, 300, 300]
    assert delays(1, 30) == []


def test_the_version_is_awaited_with_backoff_and_each_attempt_is_reported(tmp_path: Path) -> None:
    url = (tmp_path / "simple").as_uri()
    lines: list[str] = []

    def upload(sleeps: int) -> None:
        if sleeps == 1:  # the project's page appears with the old release only
            write_page(tmp_path, "openstack-placement", ["openstack-placement-13.0.0.tar.gz"])
        if sleeps == 2:  # then the release job uploads the new one
            write_page(tmp_path, "openstack-placement", ["openstack-placement-13.0.0.tar.gz", "openstack-placement-13.0.1.tar.gz",
                                                        "openstack_placement-13.0.1-py3-none-any.whl"])

    clock = Clock(upload)
    found = wait_for_version(url, "openstack-placement", "13.0.1", Http(retries=0, backoff=0), attempts=5, delay=2,
                             say=lines.append, sleep=clock.sleep, clock=clock)
    assert found.attempts == 3 and clock.slept == [2, 4]
    assert [f.filename for f in found.files] == ["openstack-placement-13.0.1.tar.gz", "openstack_placement-13.0.1-py3-none-any.whl"]
    assert lines[0] == f"attempt 1/5: openstack-placement 13.0.1 is not on {url} yet (no page for openstack-placement); next attempt in 2s"
    assert lines[1] == f"attempt 2/5: openstack-placement 13.0.1 is not on {url} yet (1 files listed, none of 13.0.1); next attempt in 4s"
    assert lines[2].startswith(f"attempt 3/5: openstack-placement 13.0.1 is on {url}: openstack-placement-13.0.1.tar.gz")


def test_a_version_that_never_appears_fails_naming_the_version_and_the_index(tmp_path: Path) -> None:
    url = (tmp_path / "simple").as_uri()
    (tmp_path / "simple" / "tinyapp").mkdir(parents=True)
    (tmp_path / "simple" / "tinyapp" / "index.html").write_text(
        '<a href="../../tinyapp-1.0.tar.gz">x</a><a href="../../tinyapp-1.4.tar.gz" data-yanked="">y</a>')  # 1.4: yanked
    clock, lines = Clock(), []
    with pytest.raises(FetchError) as info:
        wait_for_version(url, "tinyapp", "1.4", Http(retries=0, backoff=0), attempts=3, delay=1, say=lines.append,
                         sleep=clock.sleep, clock=clock)
    assert str(info.value).startswith(f"tinyapp 1.4: not on {url} after 3 attempts in 3s")
    assert len(lines) == 3 and lines[-1].endswith("giving up") and clock.slept == [1, 2]
    with pytest.raises(InputError, match="'1.x' is not a version"):
        wait_for_version(url, "tinyapp", "1.x", Http(retries=0, backoff=0), attempts=1, delay=1)


def test_the_cli_waits_for_index_recipes_and_not_for_git_ones(make_config: Callable[..., Config], make_recipe: Callable[..., Path],
                                                              tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_page(tmp_path / "index", "tinyapp", ["tinyapp-1.0.tar.gz", "tinyapp-1.2.tar.gz"])
    make_recipe("tinyapp", 'name: tinyapp\nsource: {pypi: tinyapp}\nversions: {"2025.1": "1.0"}\n')
    make_recipe("tinygit", 'name: tinygit\nsource: {git: "file:///srv/tinygit.git"}\nversions: {"2025.1": "1.0"}\n')
    config = make_config(index_url=(tmp_path / "index" / "simple").as_uri())
    assert cli.main(["--config", str(config.file), "wait-for", "--release", "epoxy", "tinyapp", "1.2"]) == 0
    out = capsys.readouterr().out
    assert "attempt 1/15: tinyapp 1.2 is on" in out and "tinyapp 1.2 (2025.1): on " in out
    assert cli.main(["--config", str(config.file), "wait-for", "--release", "2025.1", "tinygit", "1.1"]) == 0
    assert "tinygit: built from file:///srv/tinygit.git at tag 1.1: no index to wait for" in capsys.readouterr().out
    assert cli.main(["--config", str(config.file), "wait-for", "--release", "2025.1", "--attempts", "2", "--delay", "0",
                     "tinyapp", "1.3"]) == EXIT_CODES[FetchError]
    out, err = capsys.readouterr()
    assert "attempt 2/2: tinyapp 1.3 is not on" in out
    assert f"stackyard: error: tinyapp 1.3: not on {(tmp_path / 'index' / 'simple').as_uri()} after 2 attempts" in err


class FakeRunner:
    def __init__(self, returncode: int = 0) -> None:
        self.calls: list[tuple[list[str], dict]] = []  # type: ignore[type-arg]
        self.returncode = returncode

    def run(self, cmd: list[str], **kw: object) -> Result:
        self.calls.append((list(cmd), kw))
        return Result(tuple(cmd), self.returncode)


def test_uv_cached_pages_of_the_project_are_dropped_so_the_lock_sees_the_new_version(make_config: Callable[..., Config]) -> None:
    config = make_config()
    release = config.release("2025.1")
    runner = FakeRunner()
    assert forget_cached_pages(config, release, "openstack-placement", runner) is None  # no uv cache yet: nothing to drop
    (config.paths.cache / "uv").mkdir(parents=True)
    said = forget_cached_pages(config, release, "openstack-placement", runner)
    assert said is not None and said.startswith("dropped uv's cached index pages of openstack-placement")
    ((argv, kw),) = runner.calls
    assert argv[1:] == ["cache", "clean", "--cache-dir", str(config.paths.cache / "uv"), "openstack-placement"]
    assert kw["check"] is False and kw["env"]["UV_NO_CONFIG"] == "1"  # type: ignore[index]
    failed = forget_cached_pages(config, release, "openstack-placement", FakeRunner(2))
    assert failed is not None and failed.startswith("could not drop")  # said, not fatal
