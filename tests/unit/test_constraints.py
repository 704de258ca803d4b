"""stackyard.wheels.constraints: upper-constraints and lock files."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from stackyard.errors import InputError
from stackyard.target import Target
from stackyard.wheels.constraints import load_constraints, load_lock, parse_constraints, parse_lock

UC = Path("/r/upper-constraints.txt")
LOCK = Path("/r/locks/demo.txt")


# --- upper-constraints -------------------------------------------------------


def test_triple_and_double_equals_pins(bookworm: Target) -> None:
    c = parse_constraints("oslo.config===9.7.2\nPyYAML==6.0.2\n", UC, bookworm)
    assert c.get("oslo.config").version == "9.7.2"
    assert c.get("pyyaml").version == "6.0.2"
    assert c.get("PyYAML").name == "PyYAML"  # name as written upstream
    assert c.get("oslo-config").line == 1
    assert c.get("oslo_config").as_constraint() == "oslo.config==9.7.2"
    assert set(c.pins) == {"oslo-config", "pyyaml"}


def test_comments_and_blank_lines_are_ignored(bookworm: Target) -> None:
    text = "# header comment\n\n   \nsix===1.17.0  # trailing comment\n  # indented comment\nsix===1.17.0\n"
    c = parse_constraints(text, UC, bookworm)
    assert list(c.pins) == ["six"]
    assert c.get("six").version == "1.17.0"
    assert c.get("six").line == 6  # an identical repeat is harmless; the last line wins


def test_marker_duplicates_keep_only_the_line_for_the_target_python(bookworm: Target) -> None:
    text = "numpy===2.0.0;python_version=='3.9'\nnumpy===2.2.3;python_version>='3.10'\n"
    c = parse_constraints(text, UC, bookworm)
    pin = c.get("numpy")
    assert (pin.version, pin.line, pin.marker) == ("2.2.3", 2, "python_version>='3.10'")

    old = parse_constraints(text, UC, Target("3.9", "2.31", "x86_64", "bullseye"))
    assert old.get("numpy").version == "2.0.0"
    assert old.get("numpy").line == 1


def test_marker_with_spaces_around_semicolon(bookworm: Target) -> None:
    c = parse_constraints('tomli===2.2.1 ; python_version < "3.11"\nfoo===1.0 ; python_version == "3.11"\n', UC, bookworm)
    assert c.get("tomli") is None
    assert c.get("foo").version == "1.0"


def test_markers_excluding_every_line_drop_the_name(bookworm: Target) -> None:
    text = (
        "tomli===2.2.1;python_version=='3.10'\n"
        "tomli===2.2.1;python_version=='3.9'\n"
        "pywin32===308;sys_platform=='win32'\n"
        "six===1.17.0\n"
    )
    c = parse_constraints(text, UC, bookworm)
    assert c.get("tomli") is None
    assert c.get("pywin32") is None
    assert set(c.pins) == {"six"}


def test_platform_machine_marker_uses_the_target_not_the_host() -> None:
    text = "foo===1.0;platform_machine=='aarch64'\nfoo===2.0;platform_machine=='x86_64'\n"
    arm = parse_constraints(text, UC, Target("3.11", "2.36", "aarch64", "bookworm"))
    x86 = parse_constraints(text, UC, Target("3.11", "2.36", "x86_64", "bookworm"))
    assert arm.get("foo").version == "1.0"
    assert x86.get("foo").version == "2.0"


def test_conflicting_duplicates_for_the_same_target_name_file_and_line(bookworm: Target) -> None:
    text = "six===1.16.0\nnumpy===2.2.3;python_version>='3.10'\nnumpy===2.1.0;python_version>='3.11'\n"
    with pytest.raises(InputError) as info:
        parse_constraints(text, UC, bookworm)
    message = str(info.value)
    assert f"{UC}:3" in message
    assert "2.1.0" in message and "2.2.3" in message
    assert "line 2" in message


def test_conflicting_duplicates_for_other_pythons_are_fine(bookworm: Target) -> None:
    text = "numpy===2.2.3;python_version>='3.12'\nnumpy===2.1.0;python_version<'3.12'\n"
    assert parse_constraints(text, UC, bookworm).get("numpy").version == "2.1.0"


@pytest.mark.parametrize(
    "bad, lineno",
    [
        ("six===1.17.0\nthis is not a pin\n", 2),
        ("six\n", 1),
        ("\n# c\nsix>=1.0\n", 3),
        ("six===1.17.0\nfoo[bar]===1.0\n", 2),
    ],
)
def test_malformed_line_names_file_and_line(bookworm: Target, bad: str, lineno: int) -> None:
    with pytest.raises(InputError) as info:
        parse_constraints(bad, UC, bookworm)
    assert f"{UC}:{lineno}:" in str(info.value)


def test_invalid_marker_names_file_and_line(bookworm: Target) -> None:
    with pytest.raises(InputError) as info:
        parse_constraints("six===1.17.0\nfoo===1.0;python_version>>'3'\n", UC, bookworm)
    assert f"{UC}:2:" in str(info.value)
    assert "marker" in str(info.value)


def test_without_drops_names_canonically(bookworm: Target) -> None:
    c = parse_constraints("oslo.config===9.7.2\nPyYAML===6.0.2\nsix===1.17.0\n", UC, bookworm)
    smaller = c.without({"Oslo_Config", "pyyaml"})
    assert set(smaller.pins) == {"six"}
    assert set(c.pins) == {"oslo-config", "pyyaml", "six"}  # the original is untouched
    assert smaller.file == UC


def test_load_constraints_missing_file(tmp_path: Path, bookworm: Target) -> None:
    with pytest.raises(InputError) as info:
        load_constraints(tmp_path / "nope.txt", bookworm)
    assert str(tmp_path / "nope.txt") in str(info.value)


def test_real_upper_constraints_2025_1(repo: Path) -> None:
    file = repo / "requirements" / "2025.1" / "upper-constraints.txt"
    target = Target("3.11", "2.36", "x86_64", "bookworm")
    c = load_constraints(file, target)
    assert c.get("numpy").version == "2.2.3"
    assert c.get("python-ldap").version == "3.4.4"
    assert c.get("oslo.config").version == "9.7.2"
    assert c.get("scipy").version == "1.15.2"
    assert c.get("tomli") is None  # only for python 3.9 and 3.10
    assert c.get("async-timeout") is None
    assert c.get("keystone") is None  # services are not in upper-constraints

    # an independent oracle: packaging's own parser and marker evaluation
    expected: dict[str, str] = {}
    lines = [ln.strip() for ln in file.read_text().splitlines()]
    for line in lines:
        if not line or line.startswith("#"):
            continue
        req = Requirement(line)
        if req.marker and not req.marker.evaluate(target.marker_environment()):
            continue
        (spec,) = req.specifier
        key = canonicalize_name(req.name)
        assert key not in expected, f"{req.name} applies twice for python 3.11"
        expected[key] = spec.version
    assert {k: p.version for k, p in c.pins.items()} == expected
    assert len({canonicalize_name(p.name) for p in c.pins.values()}) == len(c.pins)
    for key, pin in c.pins.items():
        assert canonicalize_name(lines[pin.line - 1].split("=")[0]) == key


# --- locks ---------------------------------------------------------------------

H1 = "sha256:" + "1" * 64
H2 = "sha256:" + "2" * 64
H3 = "sha256:" + "3" * 64

PIP_COMPILE = f"""\
# stackyard lock: demo 1.0
# inputs sha256: abc
--index-url https://pypi.org/simple

alembic==1.14.1 \\
    --hash={H1} \\
    --hash={H2}
    # via
    #   -c upper-constraints.txt
    #   oslo-db
oslo-config==9.7.2 \\
    --hash={H3}
    # via demo
demo[ldap] @ file:///src/demo
six==1.17.0
tomli==2.2.1 ; python_version < "3.11" \\
    --hash={H1}
"""


def test_parse_lock_pip_compile_output() -> None:
    entries = parse_lock(PIP_COMPILE, LOCK)
    by_key = {e.key: e for e in entries}
    assert [e.key for e in entries] == ["alembic", "oslo-config", "demo", "six", "tomli"]
    assert by_key["alembic"].version == "1.14.1"
    assert by_key["alembic"].hashes == (H1, H2)
    assert by_key["alembic"].line == 5
    assert by_key["alembic"].url is None
    assert by_key["oslo-config"].hashes == (H3,)
    assert by_key["oslo-config"].line == 11
    assert by_key["six"].hashes == ()
    assert by_key["tomli"].version == "2.2.1"
    assert by_key["tomli"].hashes == (H1,)


def test_parse_lock_direct_reference() -> None:
    (entry,) = parse_lock("mylib @ file:///x\n", LOCK)
    assert entry.name == "mylib"
    assert entry.version == ""
    assert entry.url == "file:///x"
    (git,) = parse_lock("oslo.db @ git+https://opendev.org/openstack/oslo.db@17.2.0\n", LOCK)
    assert git.url == "git+https://opendev.org/openstack/oslo.db@17.2.0"


@pytest.mark.parametrize("line", ["six>=1.0", "six", "six==1.0,!=0.9", "six~=1.0"])
def test_parse_lock_unpinned_line(line: str) -> None:
    with pytest.raises(InputError) as info:
        parse_lock(f"alembic==1.14.1\n{line}\n", LOCK)
    assert f"{LOCK}:2:" in str(info.value)
    assert "six" in str(info.value)


def test_parse_lock_malformed_line() -> None:
    with pytest.raises(InputError) as info:
        parse_lock("alembic==1.14.1\n\n!!! nonsense\n", LOCK)
    assert f"{LOCK}:3:" in str(info.value)


def test_parse_lock_reports_the_first_line_of_a_continued_requirement() -> None:
    text = f"six==1.17.0 \\\n    --hash={H1}\nbad>=1 \\\n    --hash={H2}\n"
    with pytest.raises(InputError) as info:
        parse_lock(text, LOCK)
    assert f"{LOCK}:3:" in str(info.value)


def test_real_keystone_lock(repo: Path) -> None:
    file = repo / "requirements" / "2025.1" / "locks" / "keystone.txt"
    entries = load_lock(file)
    top_level = [ln for ln in file.read_text().splitlines() if ln[:1].isalnum()]
    assert len(entries) == len(top_level)
    keystone = next(e for e in entries if e.key == "keystone")
    assert keystone.version == "27.0.2"
    for e in entries:
        assert e.hashes, e.name
        assert all(h.startswith("sha256:") and len(h) == len("sha256:") + 64 for h in e.hashes)
    assert len({e.key for e in entries}) == len(entries)


def test_load_lock_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_lock(tmp_path / "none.txt")
    assert "none.txt" in str(info.value)
    assert "stackyard lock" in str(info.value)
