"""stackyard.wheels.bindep: bindep.txt parsing and selector rules for a Debian codename."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.errors import InputError
from stackyard.wheels.bindep import BindepEntry, packages_for, parse_bindep, platform_atoms, selected

FILE = Path("/r/bindep.txt")


def entry(selectors: str) -> BindepEntry:
    (e,) = parse_bindep(f"pkg [{selectors}]\n", FILE)
    return e


@pytest.fixture
def real_entries(repo: Path) -> list[BindepEntry]:
    file = repo / "requirements" / "2025.1" / "bindep.txt"
    return parse_bindep(file.read_text(), file)


def test_real_bindep_for_bookworm(real_entries: list[BindepEntry]) -> None:
    packages = packages_for(real_entries, "bookworm")
    for wanted in ["libldap2-dev", "libvirt-dev", "libkrb5-dev", "libsystemd-dev", "libpcre3-dev", "pypy3",
                   "pypy3-dev", "libmariadb-dev", "python3-all-dev", "swig", "libffi-dev", "libssl-dev"]:
        assert wanted in packages, wanted
    for unwanted in ["pypy", "pypy-dev", "python-all-dev", "krb5-devel", "gawk", "unzip", "parallel",
                     "python-numpy", "python-yaml", "libmysqlclient-dev", "libsystemd-journal-dev",
                     "app-crypt/mit-krb5", "pcre-devel", "blas-devel"]:
        assert unwanted not in packages, unwanted
    assert len(packages) == len(set(packages))
    # file order is kept
    assert packages.index("libffi-dev") < packages.index("libvirt-dev") < packages.index("libpcre3-dev")


def test_real_bindep_for_trixie_differs_only_in_bookworm_specific_lines(real_entries: list[BindepEntry]) -> None:
    bookworm = set(packages_for(real_entries, "bookworm"))
    trixie = set(packages_for(real_entries, "trixie"))
    assert bookworm - trixie == {"pypy3", "pypy3-dev"}
    assert trixie - bookworm == {"pypy", "pypy-dev", "python-all-dev"}


def test_parse_entries_and_line_numbers() -> None:
    text = "# comment\n\nswig\nlibvirt-dev [platform:dpkg] # why\nfoo [platform:dpkg test] >=1.2\ndev-libs/x [platform:gentoo]\n"
    entries = parse_bindep(text, FILE)
    assert entries == [
        BindepEntry("swig", (), 3),
        BindepEntry("libvirt-dev", ("platform:dpkg",), 4),
        BindepEntry("foo", ("platform:dpkg", "test"), 5),
        BindepEntry("dev-libs/x", ("platform:gentoo",), 6),
    ]


@pytest.mark.parametrize("line", ["foo [platform:dpkg", "[platform:dpkg]", "foo bar"])
def test_malformed_line(line: str) -> None:
    with pytest.raises(InputError) as info:
        parse_bindep(f"swig\n{line}\n", FILE)
    assert f"{FILE}:2:" in str(info.value)


def test_platform_atoms() -> None:
    assert platform_atoms("bookworm") == {"platform:dpkg", "platform:debian", "platform:debian-bookworm", "platform:debian-12"}
    assert "platform:debian-13" in platform_atoms("trixie")
    assert platform_atoms("sid") == {"platform:dpkg", "platform:debian", "platform:debian-sid"}


@pytest.mark.parametrize(
    "selectors, expected",
    [
        ("", True),
        ("platform:dpkg", True),
        ("platform:debian-12", True),
        ("platform:rpm", False),
        ("platform:redhat platform:debian", True),  # positive platforms: any may match
        ("platform:ubuntu-noble platform:debian-bookworm", True),
        ("platform:ubuntu-noble platform:debian-trixie", False),
        ("!platform:ubuntu-xenial", True),  # only a negation: everything else
        ("!platform:debian-bookworm", False),
        ("platform:dpkg !platform:debian-bookworm", False),  # any matching negation excludes
        ("platform:dpkg !platform:ubuntu-trusty", True),
        ("platform:rpm !platform:centos-7", False),
        ("test", False),  # a profile: not in the default profile
        ("!test", True),
        ("platform:dpkg test", False),
        ("python", False),
    ],
)
def test_selectors_default_profile(selectors: str, expected: bool) -> None:
    assert selected(entry(selectors), "bookworm") is expected


def test_profiles() -> None:
    assert selected(entry("test"), "bookworm", {"test"}) is True
    assert selected(entry("test python"), "bookworm", {"python"}) is True
    assert selected(entry("!test"), "bookworm", {"test"}) is False
    assert selected(entry("platform:dpkg test"), "bookworm", {"test"}) is True
    assert selected(entry("platform:rpm test"), "bookworm", {"test"}) is False
    assert selected(entry(""), "bookworm", {"test"}) is True  # untagged entries are always in


def test_packages_for_deduplicates() -> None:
    entries = parse_bindep("a [platform:dpkg]\nb\na [platform:debian]\nc [platform:rpm]\n", FILE)
    assert packages_for(entries, "bookworm") == ["a", "b"]
