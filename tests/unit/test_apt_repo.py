"""The apt repository's publish (reprepro through a fake runner): its distributions, when it exports, what a
failed write leaves (exactly what was there), a killed publish's lock, and reading what is published."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from stackyard.config import Config
from stackyard.errors import InputError, ToolError
from stackyard.repo.apt import AptRepository, PublishedPackage, final, render_distributions, staging
from stackyard.runner import Call
from tests.fake_repo import FPR, published, with_key

TWO = '[releases."2025.2"]\nseries = "flamingo"\ncodename = "bookworm"\nupstream = "https://example.invalid/2025.2"\n'


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config(extra=TWO)


def deb(tmp_path: Path, name: str = "venv-tiny_1.2.0-2025.1.1_amd64.deb") -> Path:
    file = tmp_path / name
    file.write_bytes(b"!<arch>\n")
    return file


def reprepro_args(fake) -> list[tuple[str, ...]]:  # type: ignore[no-untyped-def]
    return [tuple(a for a in c.argv[4:] if not a.startswith("--list-format=")) for c in fake.calls if c.argv[0] == "reprepro"]


def test_distribution_names_carry_codename_and_release(config: Config) -> None:
    release = config.release("2025.1")
    assert (staging(release), final(release)) == ("bookworm-2025.1-staging", "bookworm-2025.1")


def test_each_release_has_a_staging_and_a_promoted_distribution_signed_with_the_key(config: Config) -> None:
    text = render_distributions(config, FPR)
    blocks = text.split("\n\n")
    assert [b.splitlines()[2] for b in blocks] == ["Codename: bookworm-2025.1-staging", "Codename: bookworm-2025.1",
                                                   "Codename: bookworm-2025.2-staging", "Codename: bookworm-2025.2"]
    assert blocks[3] == ("Origin: stackyard\nLabel: stackyard\nCodename: bookworm-2025.2\nSuite: bookworm-2025.2\n"
                         "Architectures: amd64\nComponents: main\n"
                         f"Description: OpenStack 2025.2 (flamingo) for Debian bookworm, promoted\nSignWith: {FPR}\n")


def test_publish_exports_once_then_only_includes(config: Config, tmp_path: Path) -> None:
    release = config.release("2025.1")
    fake = published(config, {"bookworm-2025.1-staging": [("venv-tiny", "1.2.0-2025.1.1")]})
    repo = AptRepository(config, fake)
    listed = repo.publish(release, [deb(tmp_path)])
    assert listed == [PublishedPackage("bookworm-2025.1-staging", "amd64", "venv-tiny", "1.2.0-2025.1.1",
                                       "pool/main/v/venv-tiny/venv-tiny_1.2.0-2025.1.1_amd64.deb")]
    assert reprepro_args(fake) == [("export",), ("includedeb", "bookworm-2025.1-staging", str(tmp_path / deb(tmp_path).name)),
                                   ("list", "bookworm-2025.1-staging")]
    assert (config.repo.path / "conf" / "distributions").read_text() == render_distributions(config, FPR)
    fake.calls.clear()
    AptRepository(config, fake).publish(release, [deb(tmp_path)])
    assert [a[0] for a in reprepro_args(fake)] == ["includedeb", "list"]  # configuration unchanged: no export


def test_publishing_a_missing_file_touches_nothing(config: Config, tmp_path: Path) -> None:
    fake = with_key(config)
    with pytest.raises(InputError, match=f"no such package: {tmp_path / 'missing.deb'}"):
        AptRepository(config, fake).publish(config.release("2025.1"), [deb(tmp_path), tmp_path / "missing.deb"])
    assert fake.calls == [] and not config.repo.path.exists()


def test_a_failed_include_restores_the_indexes_exactly(config: Config, tmp_path: Path) -> None:
    release = config.release("2025.1")
    fake = published(config, {})
    AptRepository(config, fake).publish(release, [deb(tmp_path)])
    dists = config.repo.path / "dists" / "bookworm-2025.1-staging"
    dists.mkdir(parents=True)
    (dists / "Release").write_text("before\n")

    def half_written(call: Call) -> None:  # reprepro wrote part of the new state, then failed
        (dists / "Release").write_text("half\n")
        (config.repo.path / "db" / "new.db").write_text("x")

    fake.reply("reprepro", "--basedir", str(config.repo.path), "--silent", "includedeb", returncode=249,
               stderr="Error: package already exists with different checksum\n", effect=half_written)
    with pytest.raises(ToolError, match="reprepro includedeb bookworm-2025.1-staging failed: reprepro exited 249"):
        AptRepository(config, fake).publish(release, [deb(tmp_path, "venv-tiny_1.2.0-2025.1.2_amd64.deb")])
    assert (dists / "Release").read_text() == "before\n"
    assert not (config.repo.path / "db" / "new.db").exists()
    assert not [p for p in config.repo.path.iterdir() if p.name.startswith(".backup-")]


def test_a_lockfile_left_by_a_killed_publish_stops_the_next_one(config: Config, tmp_path: Path) -> None:
    (config.repo.path / "db").mkdir(parents=True)
    (config.repo.path / "db" / "lockfile").write_text("")
    fake = with_key(config)
    with pytest.raises(ToolError, match="the reprepro database is locked") as info:
        AptRepository(config, fake).publish(config.release("2025.1"), [deb(tmp_path)])
    assert info.value.hint == (f"check that no reprepro process runs (pgrep reprepro), then rm {config.repo.path / 'db' / 'lockfile'}")
    assert fake.calls == []


def test_listing_reads_reprepros_lines_and_nothing_before_a_first_publish(config: Config) -> None:
    fake = with_key(config)
    assert AptRepository(config, fake).list("bookworm-2025.1") == [] and fake.calls == []
    published(config, {"bookworm-2025.1": [("venv-a", "1-2025.1.1"), ("openstack-wheels-2025.1", "20250601.1")]}, fake)
    assert AptRepository(config, fake).list("bookworm-2025.1") == [
        PublishedPackage("bookworm-2025.1", "amd64", "venv-a", "1-2025.1.1", "pool/main/v/venv-a/venv-a_1-2025.1.1_amd64.deb"),
        PublishedPackage("bookworm-2025.1", "amd64", "openstack-wheels-2025.1", "20250601.1",
                         "pool/main/o/openstack-wheels-2025.1/openstack-wheels-2025.1_20250601.1_amd64.deb")]
