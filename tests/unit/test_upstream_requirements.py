"""Refreshing a release's upstream inputs: from a checkout or a URL, validated before anything is replaced."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from stackyard.config import Config, Release
from stackyard.errors import FetchError, InputError
from stackyard.wheels.upstream_requirements import FILES, UpstreamSource, read_source, update_requirements
from tests.fakes import FakeRunner

GOOD = {"upper-constraints.txt": "six===1.17.0\npbr===6.1.0\n", "global-requirements.txt": "six>=1.10.0\n",
        "bindep.txt": "libffi-dev [platform:dpkg]\n"}


class Http:
    """Answers get_text from a dict of URL -> text; other URLs fail as the real client does after its retries."""

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages

    def get_text(self, url: str) -> str:
        if url not in self.pages:
            raise FetchError(f"{url}: HTTP 404")
        return self.pages[url]


def checkout(tmp_path: Path, files: dict[str, str], source: str | None = None) -> Path:
    d = tmp_path / "requirements-checkout"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    if source is not None:
        (d / "SOURCE").write_text(source)
    return d


def test_a_checkout_with_an_upstream_source_line_is_copied_with_its_commit(config: Config, release: Release,
                                                                           tmp_path: Path) -> None:
    origin = checkout(tmp_path, GOOD, "4f2c1e0 2025-05-30\n")
    fake = FakeRunner()
    source = update_requirements(config, release, str(origin), Http({}), runner=fake)
    assert source == UpstreamSource(str(origin), "4f2c1e0", "2025-05-30")
    directory = config.requirements_dir(release)
    assert {name: (directory / name).read_text() for name in FILES} == GOOD
    assert (directory / "SOURCE").read_text() == ("repository: openstack/requirements\ncommit: 4f2c1e0\ndate: 2025-05-30\n"
                                                  f"from: {origin}\n")
    assert read_source(directory) == source
    assert fake.calls == []  # not a git tree: no git


def test_a_git_checkout_is_read_at_its_head_commit(config: Config, release: Release, tmp_path: Path) -> None:
    origin = checkout(tmp_path, GOOD, "old 2020-01-01\n")
    (origin / ".git").mkdir()
    fake = FakeRunner().reply("git", stdout="89abcdef 2025-06-02\n")
    source = update_requirements(config, release, f"file://{origin}", Http({}), runner=fake)
    assert (source.commit, source.date) == ("89abcdef", "2025-06-02")
    fake.reply("git", returncode=128, stderr="fatal: not a git repository")  # then SOURCE says
    assert update_requirements(config, release, str(origin), Http({}), runner=fake).commit == "old"


def test_without_any_record_the_commit_is_unknown_and_the_date_today(config: Config, release: Release, tmp_path: Path) -> None:
    origin = checkout(tmp_path, GOOD)
    source = update_requirements(config, release, str(origin), Http({}), runner=FakeRunner())
    assert source.commit == "unknown" and source.date == dt.date.today().isoformat()


def test_a_checkout_missing_a_file_is_refused(config: Config, release: Release, tmp_path: Path) -> None:
    origin = checkout(tmp_path, {k: v for k, v in GOOD.items() if k != "bindep.txt"})
    with pytest.raises(InputError, match=f"{origin}: has no bindep.txt"):
        update_requirements(config, release, str(origin), Http({}), runner=FakeRunner())


def test_an_invalid_file_leaves_the_previous_inputs_in_place(config: Config, release: Release, tmp_path: Path) -> None:
    update_requirements(config, release, str(checkout(tmp_path, GOOD)), Http({}), runner=FakeRunner())
    bad = checkout(tmp_path, GOOD | {"upper-constraints.txt": "six===1.17.0\nthis is not a requirement ===\n"})
    with pytest.raises(InputError, match="upper-constraints.txt:2"):
        update_requirements(config, release, str(bad), Http({}), runner=FakeRunner())
    directory = config.requirements_dir(release)
    assert (directory / "upper-constraints.txt").read_text() == GOOD["upper-constraints.txt"]
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_url_is_read_file_by_file_with_the_commit_of_its_source(config: Config, release: Release) -> None:
    base = "https://opendev.example/requirements/raw/branch/stable/2025.1"
    pages = {f"{base}/{name}": text for name, text in GOOD.items()}
    source = update_requirements(config, release, base + "/", Http(pages | {f"{base}/SOURCE": "c0ffee 2025-06-01\n"}))
    assert (source.origin, source.commit) == (base + "/", "c0ffee")
    assert update_requirements(config, release, base, Http(pages)).commit == "unknown"  # no SOURCE upstream


def test_neither_a_directory_nor_a_url_is_an_input_error(config: Config, release: Release, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a directory or URL"):
        update_requirements(config, release, str(tmp_path / "nope"), Http({}))


def test_read_source_knows_both_formats_and_nothing_else(tmp_path: Path) -> None:
    assert read_source(tmp_path) is None
    (tmp_path / "SOURCE").write_text("commit: abc\nfrom: somewhere\n")
    assert read_source(tmp_path) == UpstreamSource("somewhere", "abc", "")
    (tmp_path / "SOURCE").write_text("lonely\n")
    assert read_source(tmp_path) is None
