"""deb_build's decisions: the lock -> wheelhouse hash chain, when the changelog gets an entry and which version,
what counts as packaging, what a package must contain, and when an existing file stands (no build at all)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from debian.changelog import Changelog

from stackyard.config import Config, Release
from stackyard.debs.venv_deb import (
    _existing,
    build_deb,
    changelog_path,
    check_contents,
    debs_dir,
    newest_published,
    next_changelog,
    packaging_digest,
    verify_wheelhouse,
)
from stackyard.errors import InputError, IntegrityError, ToolError
from stackyard.recipes import Recipe, load_recipe
from stackyard.wheels.lock import lock_path
from tests.deb_workspace import RECIPE, deb_runner, listing, sha, workspace, write_lock
from tests.fake_repo import published, with_key
from tests.fakes import FakeRunner


@pytest.fixture
def recipe(config: Config, release: Release) -> Recipe:
    return load_recipe(workspace(config, release))


def lock_text(config: Config, release: Release) -> str:
    return lock_path(config, release, "tiny").read_text()


def keep(config: Config, release: Release, changelog: Changelog) -> None:
    """What a successful build does with the changelog: keep it as the revision history."""
    file = changelog_path(config, release, "venv-tiny")
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(str(changelog))


# -- the hash chain -------------------------------------------------------------------

def test_a_complete_wheelhouse_gives_the_install_requirements(config: Config, release: Release, recipe: Recipe) -> None:
    assert verify_wheelhouse(config, release, recipe) == config.wheelhouse_dir(release) / "install" / "tiny.txt"


def test_no_wheelhouse_says_how_to_make_one(config: Config, release: Release, recipe: Recipe) -> None:
    (config.wheelhouse_dir(release) / "manifest.json").unlink()
    with pytest.raises(InputError, match="no wheelhouse") as info:
        verify_wheelhouse(config, release, recipe)
    assert info.value.hint == "run 'stackyard wheels --release 2025.1 tiny'"


def test_a_pin_without_its_wheel_names_the_lock_line(config: Config, release: Release, recipe: Recipe) -> None:
    lock = write_lock(config, release, "pbr==6.1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    with pytest.raises(InputError, match=rf"pbr==6.1.0 \({lock}:6\) has no wheel in"):
        verify_wheelhouse(config, release, recipe)


def test_a_fetched_wheel_must_have_a_hash_the_lock_allows(config: Config, release: Release, recipe: Recipe) -> None:
    lock = lock_path(config, release, "tiny")
    lock.write_text(lock.read_text().replace(sha(b"six wheel"), "f" * 64))
    with pytest.raises(IntegrityError, match=rf"six-1.17.0-py3-none-any.whl: sha256 {sha(b'six wheel')} is not one {lock}:4 allows"):
        verify_wheelhouse(config, release, recipe)


def test_a_built_wheel_is_judged_by_the_sdist_it_came_from(config: Config, release: Release, recipe: Recipe) -> None:
    wheelhouse = config.wheelhouse_dir(release)
    manifest = json.loads((wheelhouse / "manifest.json").read_text())
    six = manifest["wheels"][1]
    six.update(origin="built", source_sha256=sha(b"six sdist"))
    (wheelhouse / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="is not one"):  # the lock allows the wheel's hash, not the sdist's
        verify_wheelhouse(config, release, recipe)
    lock = lock_path(config, release, "tiny")
    lock.write_text(lock.read_text().replace(sha(b"six wheel"), sha(b"six sdist")))
    verify_wheelhouse(config, release, recipe)


def test_a_wheel_changed_on_disk_is_an_integrity_error(config: Config, release: Release, recipe: Recipe) -> None:
    (config.wheelhouse_dir(release) / "tiny-1.2.0-py3-none-any.whl").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="tiny-1.2.0-py3-none-any.whl: missing or its sha256 differs"):
        verify_wheelhouse(config, release, recipe)


def test_the_install_requirements_must_exist(config: Config, release: Release, recipe: Recipe) -> None:
    (config.wheelhouse_dir(release) / "install" / "tiny.txt").unlink()
    with pytest.raises(InputError, match="tiny.txt: missing"):
        verify_wheelhouse(config, release, recipe)


# -- the changelog --------------------------------------------------------------------

def test_the_first_build_is_revision_1_dated_by_the_requirements_commit(config: Config, release: Release,
                                                                         recipe: Recipe) -> None:
    changelog, new = next_changelog(config, release, recipe, lock_text(config, release), runner=FakeRunner())
    assert new and str(changelog.version) == "1.2.0-2025.1.1"
    assert changelog.package == "venv-tiny" and changelog.distributions == "bookworm-2025.1"
    assert changelog.date == "Sun, 01 Jun 2025 00:00:00 +0000"
    changes = "\n".join(changelog[0].changes())
    assert "New upstream release 1.2.0 for OpenStack 2025.1." in changes
    assert f"lock sha256:\n    {sha(lock_text(config, release).encode())}" in changes


def test_nothing_changed_means_no_entry_and_the_same_version(config: Config, release: Release, recipe: Recipe) -> None:
    first, _ = next_changelog(config, release, recipe, lock_text(config, release))
    keep(config, release, first)
    again, new = next_changelog(config, release, recipe, lock_text(config, release))
    assert not new and str(again.version) == "1.2.0-2025.1.1" and len(again) == 1


def test_a_changed_lock_bumps_the_revision_with_a_later_date(config: Config, release: Release, recipe: Recipe) -> None:
    first, _ = next_changelog(config, release, recipe, lock_text(config, release))
    keep(config, release, first)
    (config.requirements_dir(release) / "SOURCE").write_text("commit: abc\ndate: 2025-01-01\n")  # older than the entry
    second, new = next_changelog(config, release, recipe, lock_text(config, release) + "# another pin\n")
    assert new and str(second.version) == "1.2.0-2025.1.2" and len(second) == 2
    assert "Rebuild of 1.2.0 with a changed lock." in "\n".join(second[0].changes())
    assert second.date == "Sun, 01 Jun 2025 00:00:01 +0000"  # never before the previous entry


def test_a_recipe_change_is_a_packaging_change_but_its_image_section_is_not(config: Config, release: Release,
                                                                            recipe: Recipe) -> None:
    first, _ = next_changelog(config, release, recipe, lock_text(config, release))
    keep(config, release, first)
    recipe.file.write_text(RECIPE + "image: {wsgi: uwsgi}\n")
    _, new = next_changelog(config, release, load_recipe(recipe.file), lock_text(config, release))
    assert not new
    recipe.file.write_text(RECIPE + "runtime_packages: [libxml2]\n")
    changed, new = next_changelog(config, release, load_recipe(recipe.file), lock_text(config, release))
    assert new and "Rebuild of 1.2.0 with changed packaging." in "\n".join(changed[0].changes())


def test_packaging_covers_the_templates_and_the_maintainer(config: Config, release: Release, recipe: Recipe,
                                                           make_config) -> None:  # type: ignore[no-untyped-def]
    before = packaging_digest(config, recipe)
    assert packaging_digest(config, recipe) == before  # deterministic
    control = config.paths.recipes / "debian" / "control.j2"
    control.write_text(control.read_text() + "\n")
    assert packaging_digest(config, recipe) != before
    other = make_config(extra='[deb]\nmaintainer = "Someone <someone@example.org>"\n')
    assert packaging_digest(other, recipe) != packaging_digest(config, recipe)


def test_without_a_kept_changelog_the_published_version_is_never_reused(config: Config, release: Release,
                                                                        recipe: Recipe) -> None:
    fake = published(config, {"bookworm-2025.1-staging": [("venv-tiny", "1.2.0-2025.1.3")],
                               "bookworm-2025.1": [("venv-tiny", "1.2.0-2025.1.10"), ("venv-other", "9-2025.1.99")]})
    assert newest_published(config, release, "venv-tiny", runner=fake) == "1.2.0-2025.1.10"  # by Debian's order
    changelog, new = next_changelog(config, release, recipe, lock_text(config, release), runner=fake)
    assert new and str(changelog.version) == "1.2.0-2025.1.11"
    assert "Rebuild of 1.2.0 after the published 1.2.0-2025.1.10 (its changelog was not kept here)." in \
        "\n".join(changelog[0].changes())


def test_an_older_published_upstream_starts_the_new_one_at_revision_1(config: Config, release: Release,
                                                                     recipe: Recipe) -> None:
    fake = published(config, {"bookworm-2025.1": [("venv-tiny", "1.1.0-2025.1.4")]})
    changelog, _ = next_changelog(config, release, recipe, lock_text(config, release), runner=fake)
    assert str(changelog.version) == "1.2.0-2025.1.1"
    assert "New upstream release 1.2.0" in "\n".join(changelog[0].changes())


def test_an_unpublished_repository_is_not_asked(config: Config, release: Release) -> None:
    fake = with_key(config)
    assert newest_published(config, release, "venv-tiny", runner=fake) is None and fake.calls == []
    (config.repo.path / "db").mkdir(parents=True)
    assert newest_published(config, release, "venv-tiny", runner=fake) is None  # listed, not there


# -- what the package must contain --------------------------------------------------------

def test_contents_must_provide_scripts_services_and_privileged_helpers(tmp_path: Path, make_recipe) -> None:  # type: ignore[no-untyped-def]
    recipe = load_recipe(make_recipe("tiny", RECIPE + (
        "rootwrap: true\nprivsep: true\n"
        "services:\n  - {name: tiny-worker, command: tiny-worker --config-file /etc/tiny/tiny.conf, description: w}\n")))
    venv = "/opt/openstack/tiny"
    deb = tmp_path / "venv-tiny_1_amd64.deb"
    everything = (f"{venv}/bin/tiny-manage", f"{venv}/bin/tiny-worker", f"{venv}/bin/tiny-rootwrap",
                  f"{venv}/bin/privsep-helper", "/etc/tiny/rootwrap.conf")
    check_contents(deb, recipe, venv, runner=FakeRunner().reply("dpkg-deb", "-c", stdout=listing(*everything)))
    fake = FakeRunner().reply("dpkg-deb", "-c", stdout=listing(f"{venv}/bin/tiny-manage", f"{venv}/bin/tiny-rootwrap"))
    with pytest.raises(InputError) as info:
        check_contents(deb, recipe, venv, runner=fake)
    assert str(info.value).startswith(
        f"{recipe.file}: venv-tiny does not provide tiny-worker (service tiny-worker), privsep-helper (sudoers), "
        "etc/tiny/rootwrap.conf (rootwrap: true, but the project ships none) in /opt/openstack/tiny/bin")
    assert fake.calls[0].argv == ("dpkg-deb", "-c", str(deb))


# -- building, and not building ------------------------------------------------------------

def test_a_build_runs_the_tools_and_records_the_file(config: Config, release: Release, recipe: Recipe) -> None:
    fake = deb_runner()
    result = build_deb(config, release, recipe, runner=fake)
    assert [c.argv[0] for c in fake.calls] == ["dpkg-buildpackage", "dpkg-deb", "lintian"]
    build = fake.calls[0]
    assert build.cwd == config.paths.output / "build" / "2025.1" / "venv-tiny"
    assert build.env["SOURCE_DATE_EPOCH"] == "1748736000" and build.env["DEB_BUILD_OPTIONS"] == "nocheck"
    assert result.file == debs_dir(config, release) / "venv-tiny_1.2.0-2025.1.1_amd64.deb" and result.file.exists()
    assert result.new_entry and not result.unchanged
    assert result.lintian_warnings == ("W: venv-tiny: some-warning opt/openstack/tiny",)
    assert (build.cwd / "requirements.txt").read_text() == "tiny==1.2.0\nsix==1.17.0\n"
    record = json.loads((result.file.parent / f"{result.file.name}.json").read_text())
    inputs = record.pop("inputs")
    assert record == {"schema": 1, "kind": "venv-deb", "package": "venv-tiny", "version": "1.2.0-2025.1.1",
                      "sha256": sha(result.file.read_bytes()), "lintian_warnings": list(result.lintian_warnings), "smoke": None}
    assert len(inputs) == 64
    assert Changelog(changelog_path(config, release, "venv-tiny").read_text()).version == "1.2.0-2025.1.1"


def test_with_nothing_changed_the_file_stands_and_no_tool_runs(config: Config, release: Release, recipe: Recipe) -> None:
    first = build_deb(config, release, recipe, runner=deb_runner())
    fake = deb_runner()
    again = build_deb(config, release, recipe, runner=fake)
    assert fake.calls == [] and again.unchanged and not again.new_entry
    assert again.file == first.file and again.version == first.version
    assert again.lintian_warnings == first.lintian_warnings  # from the record


def test_rebuild_builds_again_and_an_identical_file_keeps_its_smoke_verdict(config: Config, release: Release,
                                                                           recipe: Recipe) -> None:
    first = build_deb(config, release, recipe, runner=deb_runner())
    record = first.file.parent / f"{first.file.name}.json"
    data = json.loads(record.read_text())
    data["smoke"] = {"passed": True, "sha256": data["sha256"], "checks": ["purge"]}  # as smoke_test records it
    record.write_text(json.dumps(data))
    fake = deb_runner()
    again = build_deb(config, release, recipe, rebuild=True, runner=fake)
    assert [c.argv[0] for c in fake.calls] == ["dpkg-buildpackage", "dpkg-deb", "lintian"]
    assert not again.unchanged and not again.new_entry and again.version == first.version
    assert json.loads(record.read_text())["smoke"] == data["smoke"]


def test_a_file_that_no_longer_matches_its_record_is_built_again(config: Config, release: Release, recipe: Recipe) -> None:
    first = build_deb(config, release, recipe, runner=deb_runner())
    first.file.write_bytes(b"damaged")
    assert _existing(config, release, "venv-tiny", first.version) is None
    fake = deb_runner()
    assert not build_deb(config, release, recipe, runner=fake).unchanged and fake.calls
    (first.file.parent / f"{first.file.name}.json").write_text("{")
    assert _existing(config, release, "venv-tiny", first.version) is None  # an unreadable record is no record


def test_a_package_missing_a_script_is_not_kept(config: Config, release: Release, recipe: Recipe) -> None:
    fake = deb_runner(contents=("/opt/openstack/tiny/bin/other",))
    with pytest.raises(InputError, match="does not provide tiny-manage"):
        build_deb(config, release, recipe, runner=fake)
    assert not list(debs_dir(config, release).glob("*.deb"))
    assert not changelog_path(config, release, "venv-tiny").exists()  # no revision was used up


def test_lintian_errors_fail_the_build(config: Config, release: Release, recipe: Recipe) -> None:
    fake = deb_runner(lintian="E: venv-tiny: bad-perm etc/x\nW: venv-tiny: meh\n")
    with pytest.raises(ToolError, match=r"lintian found errors in venv-tiny_1.2.0-2025.1.1_amd64.deb:\nE: venv-tiny: bad-perm"):
        build_deb(config, release, recipe, runner=fake)
