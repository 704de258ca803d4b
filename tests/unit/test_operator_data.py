"""operator_data: which distributions and priorities a host gets (apt_plan), rendered as apt files and as hiera data."""

from __future__ import annotations

from typing import Callable

import pytest
import yaml

from stackyard.config import Config
from stackyard.errors import InputError
from stackyard.repo.operator_data import (
    KEYRING,
    KEYRING_ASC,
    OTHER_PRIORITY,
    PROJECT_PRIORITY,
    RELEASE_PRIORITY,
    apt_files,
    apt_plan,
    packages_of,
    parse_project_release,
    puppet_data,
)
from tests.fake_repo import ARMORED, published, with_key

RELEASES = """
[codenames.trixie]
python = "3.13"
glibc = "2.41"
[releases."2025.2"]
series = "flamingo"
codename = "bookworm"
upstream = "https://example.invalid/2025.2"
[releases."2026.1"]
series = "gazpacho"
codename = "trixie"
upstream = "https://example.invalid/2026.1"
[repo]
url = "https://apt.example.org/openstack"
origin = "example"
"""


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config(extra=RELEASES)


# -- parse_project_release ----------------------------------------------------------

@pytest.mark.parametrize("value, project, release", [
    ("keystone=2025.2", "keystone", "2025.2"),
    ("venv-keystone=2025.2", "keystone", "2025.2"),  # the package name works too
    ("nova=flamingo", "nova", "2025.2"),  # a series name
    ("glance=bookworm-2025.2", "glance", "2025.2"),  # the distribution's spelling
    ("glance=trixie-2026.1", "glance", "2026.1"),
])
def test_a_project_release_names_the_release_its_package_comes_from(config: Config, value: str, project: str,
                                                                     release: str) -> None:
    name, found = parse_project_release(config, value)
    assert (name, found.id) == (project, release)


@pytest.mark.parametrize("value", ["keystone", "keystone=", "=2025.2"])
def test_a_project_release_needs_both_halves(config: Config, value: str) -> None:
    with pytest.raises(InputError, match="expected PROJECT=RELEASE"):
        parse_project_release(config, value)


def test_a_codename_the_release_is_not_built_for_is_refused_with_the_right_spelling(config: Config) -> None:
    with pytest.raises(InputError) as info:
        parse_project_release(config, "keystone=trixie-2025.2")
    assert "release 2025.2 is built for bookworm, not trixie" in str(info.value)
    assert info.value.hint is not None and "keystone=bookworm-2025.2" in info.value.hint


def test_an_unknown_codename_names_the_configured_ones(config: Config) -> None:
    with pytest.raises(InputError, match="unknown codename 'sid'") as info:
        parse_project_release(config, "keystone=sid-2025.2")
    assert "[codenames.bookworm], [codenames.trixie]" in (info.value.hint or "")


def test_an_unknown_release_is_an_input_error(config: Config) -> None:
    with pytest.raises(InputError, match="unknown release '2099.1'"):
        parse_project_release(config, "keystone=2099.1")


# -- apt_plan --------------------------------------------------------------------

def test_the_hosts_release_alone_is_one_source_at_990(config: Config) -> None:
    fake = published(config, {"bookworm-2025.1": [("venv-keystone", "27.0.2-2025.1.1")]})
    plan = apt_plan(config, config.release("2025.1"), runner=fake)
    assert [(s.name, s.distribution) for s in plan.sources] == [("stackyard-2025.1", "bookworm-2025.1")]
    assert [(p.packages, p.distribution, p.priority) for p in plan.pins] == [("*", "bookworm-2025.1", RELEASE_PRIORITY)]
    assert plan.url == "https://apt.example.org/openstack" and plan.origin == "example" and plan.warnings == ()


def test_projects_from_other_releases_pin_first_and_their_releases_stay_at_100(config: Config) -> None:
    fake = published(config, {
        "bookworm-2025.1": [("venv-keystone", "27.0.2-2025.1.1"), ("venv-nova", "31.3.1-2025.1.1")],
        "bookworm-2025.2": [("venv-nova", "32.2.1-2025.2.1"), ("venv-keystone", "28.0.2-2025.2.1")],
        "trixie-2026.1": [("venv-glance", "31.0.0-2026.1.1")],
    })
    projects = {"nova": config.release("2025.2"), "keystone": config.release("2025.2"),
                "glance": config.release("2026.1"), "placement": config.release("2025.1")}  # the host's own: no pin
    plan = apt_plan(config, config.release("2025.1"), projects=projects, runner=fake)
    assert [s.distribution for s in plan.sources] == ["bookworm-2025.1", "bookworm-2025.2", "trixie-2026.1"]
    assert [(p.name, p.packages, p.distribution, p.priority) for p in plan.pins] == [
        ("stackyard-glance-2026.1", "venv-glance", "trixie-2026.1", PROJECT_PRIORITY),
        ("stackyard-keystone-2025.2", "venv-keystone", "bookworm-2025.2", PROJECT_PRIORITY),
        ("stackyard-nova-2025.2", "venv-nova", "bookworm-2025.2", PROJECT_PRIORITY),
        ("stackyard-2025.1", "*", "bookworm-2025.1", RELEASE_PRIORITY),
        ("stackyard-2025.2", "*", "bookworm-2025.2", OTHER_PRIORITY),
        ("stackyard-2026.1", "*", "trixie-2026.1", OTHER_PRIORITY),
    ]
    assert set(plan.projects) == {"nova", "keystone", "glance"} and plan.warnings == ()


def test_staging_uses_the_staging_distributions_and_the_url_can_be_overridden(config: Config) -> None:
    fake = published(config, {"bookworm-2025.1-staging": [("venv-keystone", "1")],
                               "bookworm-2025.2-staging": [("venv-keystone", "2")]})
    plan = apt_plan(config, config.release("2025.1"), staging=True, projects={"keystone": config.release("2025.2")},
                    url="http://mirror.local/stackyard", runner=fake)
    assert [s.distribution for s in plan.sources] == ["bookworm-2025.1-staging", "bookworm-2025.2-staging"]
    assert {p.distribution for p in plan.pins} == {"bookworm-2025.1-staging", "bookworm-2025.2-staging"}
    assert plan.url == "http://mirror.local/stackyard" and plan.staging


def test_warnings_name_an_empty_distribution_and_a_pin_with_nothing_to_take(config: Config) -> None:
    fake = published(config, {"bookworm-2025.2": [("venv-keystone", "28.0.2-2025.2.1")]})
    plan = apt_plan(config, config.release("2025.1"), runner=fake,
                    projects={"keystone": config.release("2025.2"), "nova": config.release("2025.2")})
    assert plan.warnings == (
        "bookworm-2025.1 has no package yet: publish and promote first "
        "(stackyard publish --release 2025.1; stackyard promote --release 2025.1)",
        "venv-nova is not in bookworm-2025.2: the pin has nothing to take",
    )
    staged = apt_plan(config, config.release("2025.1"), staging=True, runner=with_key(config))
    assert staged.warnings == ("bookworm-2025.1-staging has no package yet: publish first (stackyard publish --release 2025.1)",)


def test_an_unpublished_repository_is_read_without_running_reprepro(config: Config) -> None:
    fake = with_key(config)  # no db directory: nothing was ever published
    plan = apt_plan(config, config.release("2025.1"), runner=fake)
    assert fake.calls == [] and len(plan.warnings) == 1


# -- apt_files --------------------------------------------------------------------

def test_apt_files_are_deb822_sources_one_pref_file_and_the_keyring(config: Config) -> None:
    fake = published(config, {"bookworm-2025.1": [("venv-nova", "1")], "bookworm-2025.2": [("venv-keystone", "2")]})
    plan = apt_plan(config, config.release("2025.1"), projects={"keystone": config.release("2025.2")}, runner=fake)
    files = apt_files(plan, b"\x99binary-key")
    assert list(files) == ["etc/apt/sources.list.d/stackyard-2025.1.sources", "etc/apt/sources.list.d/stackyard-2025.2.sources",
                           "etc/apt/preferences.d/stackyard.pref", KEYRING.lstrip("/")]
    assert files["etc/apt/sources.list.d/stackyard-2025.2.sources"].decode() == (
        "Types: deb\nURIs: https://apt.example.org/openstack\nSuites: bookworm-2025.2\nComponents: main\n"
        f"Signed-By: {KEYRING}\n")
    assert files["etc/apt/preferences.d/stackyard.pref"].decode() == (
        "Explanation: stackyard: venv-keystone from OpenStack 2025.2\nPackage: venv-keystone\n"
        "Pin: release o=example,n=bookworm-2025.2\nPin-Priority: 995\n"
        "\n"
        "Explanation: stackyard: OpenStack 2025.1: every package of the repository\nPackage: *\n"
        "Pin: release o=example,n=bookworm-2025.1\nPin-Priority: 990\n"
        "\n"
        "Explanation: stackyard: OpenStack 2025.2: only the packages pinned above\nPackage: *\n"
        "Pin: release o=example,n=bookworm-2025.2\nPin-Priority: 100\n")
    assert files[KEYRING.lstrip("/")] == b"\x99binary-key"


# -- puppet_data ------------------------------------------------------------------

def test_puppet_data_pins_every_package_and_keeps_the_wheels_deb_apart(config: Config) -> None:
    fake = published(config, {
        "bookworm-2025.1": [("venv-nova", "31.3.1-2025.1.1"), ("venv-keystone", "27.0.2-2025.1.1"),
                            ("openstack-wheels-2025.1", "20250601.2")],
        "bookworm-2025.2": [("venv-keystone", "28.0.2-2025.2.3")],
    })
    plan = apt_plan(config, config.release("2025.1"), projects={"keystone": config.release("2025.2")}, runner=fake)
    text, count = puppet_data(config, plan, ARMORED, runner=fake)
    assert count == 3 and text.startswith("---\n")
    data = yaml.safe_load(text)
    assert data["stackyard::release"] == "2025.1" and data["stackyard::apt_distribution"] == "bookworm-2025.1"
    assert data["stackyard::projects"] == {"keystone": "2025.2"}
    assert data["stackyard::packages"] == {"venv-keystone": "28.0.2-2025.2.3", "venv-nova": "31.3.1-2025.1.1"}
    assert data["stackyard::wheels_package"] == {"openstack-wheels-2025.1": "20250601.2"}
    assert data["stackyard::keyrings"][KEYRING_ASC]["content"] == ARMORED
    assert f"content: |\n      {ARMORED.splitlines()[0]}" in text  # the key is a literal block, readable in a diff
    assert data["apt::sources"]["stackyard-2025.2"] == {
        "location": "https://apt.example.org/openstack", "release": "bookworm-2025.2", "repos": "main",
        "keyring": KEYRING_ASC, "comment": "stackyard: OpenStack 2025.2"}
    pins = data["apt::pins"]
    assert list(pins) == ["stackyard-keystone-2025.2", "stackyard-2025.1", "stackyard-2025.2"]
    assert [(p["priority"], p["order"]) for p in pins.values()] == [(995, 10), (990, 11), (100, 12)]
    assert pins["stackyard-keystone-2025.2"]["packages"] == "venv-keystone"
    assert pins["stackyard-2025.1"]["originator"] == "example" and pins["stackyard-2025.1"]["codename"] == "bookworm-2025.1"


def test_a_project_missing_from_its_release_fails_with_how_to_publish_it(config: Config) -> None:
    fake = published(config, {"bookworm-2025.1": [("venv-nova", "1")], "bookworm-2025.2": [("venv-nova", "2")]})
    plan = apt_plan(config, config.release("2025.1"), projects={"keystone": config.release("2025.2")}, runner=fake)
    with pytest.raises(InputError, match="venv-keystone is not published in bookworm-2025.2") as info:
        packages_of(config, plan, runner=fake)
    assert info.value.hint == "stackyard publish --release 2025.2 keystone && stackyard promote --release 2025.2 keystone"


@pytest.mark.parametrize("staging, hint", [(False, "stackyard promote --release 2025.1"),
                                           (True, "stackyard publish --release 2025.1")])
def test_puppet_data_of_an_empty_distribution_says_what_to_run(config: Config, staging: bool, hint: str) -> None:
    fake = published(config, {})
    plan = apt_plan(config, config.release("2025.1"), staging=staging, runner=fake)
    with pytest.raises(InputError, match="nothing is published in bookworm-2025.1") as info:
        puppet_data(config, plan, "", runner=fake)
    assert info.value.hint == hint
