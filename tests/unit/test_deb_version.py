from __future__ import annotations

import pytest
from debian.debian_support import version_compare

from stackyard.debs.version import debian_upstream, decide, input_lines, recorded_inputs

LOCK_A = "a" * 64
LOCK_B = "b" * 64


@pytest.mark.parametrize(
    ("pep440", "debian"),
    [("27.0.2", "27.0.2"), ("27.0.0.0rc1", "27.0.0~rc1"), ("1.0a2", "1.0~a2"), ("2.0.post1", "2.0+post1"),
     ("3.0.dev4", "3.0~~dev4"), ("1!2.0", "1:2.0")],
)
def test_upstream_versions_map_to_debian(pep440: str, debian: str) -> None:
    assert debian_upstream(pep440) == debian


def test_pre_releases_sort_before_the_release() -> None:
    assert version_compare(debian_upstream("27.0.0.0rc1") + "-2025.1.1", debian_upstream("27.0.0") + "-2025.1.1") < 0


A = {"lock": LOCK_A, "packaging": LOCK_A}


def test_first_build_then_same_inputs_then_changed_lock_or_packaging() -> None:
    first = decide(None, {}, "27.0.2", "2025.1", A)
    assert first.version == "27.0.2-2025.1.1" and first.changed
    same = decide(first.version, A, "27.0.2", "2025.1", A)
    assert same.version == first.version and not same.changed
    bumped = decide(first.version, A, "27.0.2", "2025.1", A | {"lock": LOCK_B})
    assert bumped.version == "27.0.2-2025.1.2" and bumped.reason == "Rebuild of 27.0.2 with a changed lock."
    assert version_compare(bumped.version, first.version) > 0
    both = decide(first.version, A, "27.0.2", "2025.1", {"lock": LOCK_B, "packaging": LOCK_B})
    assert both.reason == "Rebuild of 27.0.2 with a changed lock and changed packaging."


def test_changelog_lines_round_trip() -> None:
    lines = input_lines(A | {"lock": LOCK_B})
    assert all(len(line) <= 80 for line in lines)
    assert recorded_inputs(["", "  * Rebuild.", *lines, ""]) == {"lock": LOCK_B, "packaging": LOCK_A}


def test_new_upstream_resets_the_counter_and_sorts_higher() -> None:
    new = decide("27.0.2-2025.1.7", A, "27.0.3", "2025.1", A)
    assert new.version == "27.0.3-2025.1.1" and new.changed
    assert version_compare(new.version, "27.0.2-2025.1.7") > 0


def test_the_same_upstream_in_a_later_release_upgrades() -> None:
    older = "7.5.0-2025.1.9"
    later = decide(None, {}, "7.5.0", "2025.2", A).version
    assert version_compare(later, older) > 0
    assert version_compare("28.0.2-2025.2.1", "27.0.2-2025.1.3") > 0
