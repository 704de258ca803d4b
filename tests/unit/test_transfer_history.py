"""The published revision history between machines: the publisher's record and changelog over HTTP, checked by a
build worker before its deb's version is decided (stackyard.transfer.fetch_history)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Iterator

import pytest
from debian.changelog import Changelog

from stackyard.config import Config
from stackyard.errors import EXIT_CODES, FetchError, IntegrityError
from stackyard.http import Http
from stackyard.recipes import Recipe, load_recipes
from stackyard.transfer import WheelhouseServer, fetch_history
from tests.conftest import free_port

RECIPE = """\
name: tinyapp
source: {pypi: tinyapp}
versions: {"2025.1": "1.1"}
"""


def changelog(*versions: str) -> str:
    cl = Changelog()
    for n, version in enumerate(versions):  # oldest first
        cl.new_block(package="venv-tinyapp", version=version, distributions="bookworm-2025.1", urgency="medium",
                     author="Ops <ops@example.org>", date=f"Thu, 01 Jan 2026 00:00:0{n} +0000",
                     changes=["", f"  * entry {version}", ""])
    return str(cl)


@pytest.fixture
def publisher(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    history = tmp_path / "publisher" / "history"
    server = WheelhouseServer(tmp_path / "publisher" / "wheelhouse", "127.0.0.1", 0, history=history).start()
    try:
        yield server.url, history / "2025.1"
    finally:
        server.stop()


def publish(directory: Path, text: str, version: str, sha256: str | None = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "venv-tinyapp.changelog").write_text(text)
    record = {"package": "venv-tinyapp", "version": version, "changelog": "venv-tinyapp.changelog",
              "sha256": sha256 or hashlib.sha256(text.encode()).hexdigest()}
    (directory / "venv-tinyapp.json").write_text(json.dumps(record))


@pytest.fixture
def worker(make_config: Callable[..., Config], make_recipe: Callable[..., Path]) -> tuple[Config, Recipe, Path]:
    make_recipe("tinyapp", RECIPE)
    config = make_config()
    release = config.release("2025.1")
    local = config.paths.output / "debs" / "2025.1" / "changelogs" / "venv-tinyapp.changelog"
    from stackyard.debs.venv_deb import changelog_path

    assert changelog_path(config, release, "venv-tinyapp") == local
    return config, load_recipes(config.paths.recipes)["tinyapp"], local


def fetch(worker: tuple[Config, Recipe, Path], url: str) -> dict[str, str]:
    config, recipe, _ = worker
    return fetch_history(config, config.release("2025.1"), recipe, url, http=Http(retries=0, timeout=10))


def test_an_empty_var_continues_from_the_published_changelog(publisher: tuple[str, Path], worker: tuple[Config, Recipe, Path]) -> None:
    url, history = publisher
    local = worker[2]
    assert fetch(worker, url) == {"history": "none", "published": ""} and not local.exists()  # never published
    text = changelog("1.1-2025.1.1", "1.1-2025.1.2")
    publish(history, text, "1.1-2025.1.2")
    assert fetch(worker, url) == {"history": "seeded", "published": "1.1-2025.1.2"}
    assert local.read_text() == text
    assert fetch(worker, url)["history"] == "kept"  # the same again: nothing written


def test_an_older_local_changelog_is_replaced_a_newer_one_kept(publisher: tuple[str, Path], worker: tuple[Config, Recipe, Path]) -> None:
    url, history = publisher
    local = worker[2]
    local.parent.mkdir(parents=True)
    publish(history, changelog("1.1-2025.1.1", "1.1-2025.1.2"), "1.1-2025.1.2")
    local.write_text(changelog("1.1-2025.1.1"))  # this worker built .1; another built and published .2 since
    assert fetch(worker, url)["history"] == "seeded" and "1.1-2025.1.2" in local.read_text()
    mine = changelog("1.1-2025.1.1", "1.1-2025.1.2", "1.1-2025.1.3")  # built here, not yet published
    local.write_text(mine)
    assert fetch(worker, url)["history"] == "kept" and local.read_text() == mine
    # the same version with another history (another worker's build of it was published): the published one wins
    other = changelog("1.1-2025.1.1", "1.1-2025.1.3")
    publish(history, other, "1.1-2025.1.3")
    local.write_text(changelog("1.1-2025.1.3"))
    assert fetch(worker, url)["history"] == "seeded" and local.read_text() == other


def test_a_damaged_or_mislabelled_history_is_refused_and_nothing_written(publisher: tuple[str, Path],
                                                                          worker: tuple[Config, Recipe, Path]) -> None:
    url, history = publisher
    local = worker[2]
    text = changelog("1.1-2025.1.1")
    publish(history, text, "1.1-2025.1.1", sha256="0" * 64)
    with pytest.raises(IntegrityError) as info:
        fetch(worker, url)
    said = str(info.value)
    assert f"{url}/history/2025.1/venv-tinyapp.changelog: sha256 {hashlib.sha256(text.encode()).hexdigest()} differs from {'0' * 64}" in said
    assert not local.exists()
    publish(history, text, "1.1-2025.1.4")  # the record names a version the changelog does not
    with pytest.raises(IntegrityError, match=r"its newest entry is 1\.1-2025\.1\.1, .*venv-tinyapp\.json names 1\.1-2025\.1\.4"):
        fetch(worker, url)
    assert not local.exists()


def test_an_unreachable_publisher_is_an_error_naming_the_url(worker: tuple[Config, Recipe, Path]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(FetchError, match=rf"the published history at {url}/history/2025.1/venv-tinyapp.json cannot be read"):
        fetch(worker, url)


def test_the_server_keeps_history_requests_inside_the_history_directory(publisher: tuple[str, Path], tmp_path: Path) -> None:
    url, history = publisher
    (tmp_path / "publisher" / "secret.txt").write_text("not served")
    http = Http(retries=0, timeout=10)
    with pytest.raises(FetchError):
        http.get_text(f"{url}/history/../secret.txt")
    with pytest.raises(FetchError):
        http.get_text(f"{url}/history/%2e%2e/secret.txt")


def test_the_fetch_history_command_says_what_it_did_in_text_and_json(publisher: tuple[str, Path],
                                                                      worker: tuple[Config, Recipe, Path],
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from stackyard import cli

    config, _, local = worker
    url, published = publisher
    argv = ["--config", str(config.file), "fetch-history", "--release", "2025.1", "tinyapp", "--url", url]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == "venv-tinyapp: never published for 2025.1\n" and not local.exists()
    publish(published, changelog("1.1-2025.1.1", "1.1-2025.1.2"), "1.1-2025.1.2")
    assert cli.main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"history": "seeded", "published": "1.1-2025.1.2"}
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == "venv-tinyapp: the changelog here is the published 1.1-2025.1.2's or newer; kept\n"


def test_verify_artifact_passes_intact_files_and_fails_a_damaged_one_in_one_line(tmp_path: Path,
                                                                                capsys: pytest.CaptureFixture[str],
                                                                                make_config: Callable[..., Config]) -> None:
    from stackyard import cli
    from stackyard.transfer import write_sha256

    config = make_config()
    good, bad = tmp_path / "good.deb", tmp_path / "bad.deb"
    for file in (good, bad):
        file.write_bytes(b"payload " + file.name.encode())
        write_sha256(file)
    argv = ["--config", str(config.file), "verify-artifact"]
    assert cli.main([*argv, str(good)]) == 0
    assert capsys.readouterr().out == f"ok: {good}: sha256 {hashlib.sha256(b'payload good.deb').hexdigest()}\n"
    bad.write_bytes(b"damaged")
    assert cli.main([*argv, str(good), str(bad)]) == EXIT_CODES[IntegrityError]
    out, err = capsys.readouterr()
    assert out.startswith(f"ok: {good}") and "Traceback" not in err
    assert f"{bad}: sha256 {hashlib.sha256(b'damaged').hexdigest()} differs" in err and "damaged in transfer" in err
