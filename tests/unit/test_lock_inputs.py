"""stackyard.wheels.lock: lock inputs (deterministic digest) and pip conflict explanations."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from stackyard.config import Config, Release, load_config
from stackyard.recipes import Recipe, load_recipe, load_recipes
from stackyard.target import Target, target_for
from stackyard.wheels.constraints import Constraints, load_constraints, parse_constraints
from stackyard.wheels.lock import explain_conflict, lock_inputs, lock_path, recorded_digest

UC = Path("/r/2025.1/upper-constraints.txt")
UC_TEXT = """\
# upper-constraints
oslo.config===9.0.0
keystone===27.0.2
demo-dist===1.2.3
SQLAlchemy===2.0.38
six===1.17.0
numpy===2.0.0;python_version=='3.9'
numpy===2.2.3;python_version>='3.10'
oslo.db===17.2.0
PyYAML===6.0.2
"""

DEMO = """\
name: demo
source:
  pypi: demo-dist
versions:
  "2025.1": "1.2.3"
extras: [memcache, ldap]
constraints:
  drop: [SQLAlchemy]
  replace:
    oslo.db: ../src/oslo.db
"""


@pytest.fixture
def constraints(bookworm: Target) -> Constraints:
    return parse_constraints(UC_TEXT, UC, bookworm)


@pytest.fixture
def demo(make_recipe: Callable[..., Path]) -> Recipe:
    return load_recipe(make_recipe("demo", DEMO))


def constraint_names(text: str) -> list[str]:
    return [line.split("==")[0] for line in text.splitlines()]


def test_lock_inputs_content(demo: Recipe, release: Release, constraints: Constraints, tmp_path: Path) -> None:
    inputs = lock_inputs(demo, release, constraints)
    oslo_db = (tmp_path / "src" / "oslo.db").resolve().as_uri()
    assert inputs.requirement_in == f"demo-dist[ldap,memcache]==1.2.3\noslo.db @ {oslo_db}\n"
    names = constraint_names(inputs.constraints_txt)
    # the project's own distribution, the dropped pin and the replaced library are gone
    assert "demo-dist" not in names
    assert "SQLAlchemy" not in names
    assert "oslo.db" not in names
    assert names == ["keystone", "numpy", "oslo.config", "PyYAML", "six"]  # sorted by canonical name
    assert "numpy==2.2.3" in inputs.constraints_txt.splitlines()
    assert inputs.constraints_txt.endswith("\n")
    # nothing is removed from the constraints given
    assert constraints.get("demo-dist") is not None and constraints.get("sqlalchemy") is not None


def test_lock_inputs_are_deterministic(demo: Recipe, release: Release, bookworm: Target) -> None:
    first = lock_inputs(demo, release, parse_constraints(UC_TEXT, UC, bookworm))
    second = lock_inputs(demo, release, parse_constraints(UC_TEXT, UC, bookworm))
    assert first == second
    assert first.digest == second.digest
    assert len(first.digest) == 64
    # the order of lines in upper-constraints does not matter
    shuffled = "\n".join(reversed(UC_TEXT.splitlines())) + "\n"
    assert lock_inputs(demo, release, parse_constraints(shuffled, UC, bookworm)).digest == first.digest


def test_one_changed_pin_changes_the_digest(demo: Recipe, release: Release, bookworm: Target) -> None:
    before = lock_inputs(demo, release, parse_constraints(UC_TEXT, UC, bookworm)).digest
    after = lock_inputs(demo, release, parse_constraints(UC_TEXT.replace("six===1.17.0", "six===1.16.0"), UC, bookworm)).digest
    assert before != after
    # a pin that does not apply to the target changes nothing
    other_py = UC_TEXT.replace("numpy===2.0.0;python_version=='3.9'", "numpy===1.26.4;python_version=='3.9'")
    assert lock_inputs(demo, release, parse_constraints(other_py, UC, bookworm)).digest == before
    # a dropped pin changes nothing either
    dropped = UC_TEXT.replace("SQLAlchemy===2.0.38", "SQLAlchemy===2.0.40")
    assert lock_inputs(demo, release, parse_constraints(dropped, UC, bookworm)).digest == before


def test_recipe_changes_change_the_digest(make_recipe: Callable[..., Path], release: Release, constraints: Constraints) -> None:
    base = lock_inputs(load_recipe(make_recipe("demo", DEMO)), release, constraints).digest
    variants = [
        DEMO.replace('"1.2.3"', '"1.2.4"'),
        DEMO.replace("extras: [memcache, ldap]", "extras: [ldap]"),
        DEMO.replace("drop: [SQLAlchemy]", "drop: []"),
    ]
    digests = {lock_inputs(load_recipe(make_recipe("demo", v)), release, constraints).digest for v in variants}
    assert base not in digests
    assert len(digests) == len(variants)
    # extras order in the recipe does not matter
    same = DEMO.replace("extras: [memcache, ldap]", "extras: [ldap, memcache]")
    assert lock_inputs(load_recipe(make_recipe("demo", same)), release, constraints).digest == base


def test_git_source(make_recipe: Callable[..., Path], release: Release, constraints: Constraints) -> None:
    body = DEMO.replace("  pypi: demo-dist", "  git: https://opendev.org/openstack/demo-dist.git")
    inputs = lock_inputs(load_recipe(make_recipe("demo", body)), release, constraints)
    first = inputs.requirement_in.splitlines()[0]
    assert first == "demo-dist[ldap,memcache] @ git+https://opendev.org/openstack/demo-dist.git@1.2.3"
    assert "demo-dist" not in constraint_names(inputs.constraints_txt)


def test_real_keystone_lock_inputs_match_the_committed_lock(repo: Path) -> None:
    config = load_config(repo / "stackyard.toml")
    release = config.release("2025.1")
    recipe = load_recipes(config.paths.recipes)["keystone"]
    target = Target(release.python, release.glibc, "x86_64", release.codename)
    constraints = load_constraints(config.requirements_dir(release) / "upper-constraints.txt", target)
    inputs = lock_inputs(recipe, release, constraints)
    assert inputs.requirement_in == "keystone[ldap]==27.0.2\nPyMySQL\npython-memcached\npymemcache\n"
    assert recorded_digest(lock_path(config, release, "keystone")) == inputs.digest
    assert target_for(config, release).key.startswith("bookworm-cp311-glibc2.36-")


def test_python_openstackclient_does_not_constrain_itself(repo: Path, bookworm: Target) -> None:
    config = load_config(repo / "stackyard.toml")
    release = config.release("2025.1")
    recipe = load_recipes(config.paths.recipes)["python-openstackclient"]
    constraints = load_constraints(config.requirements_dir(release) / "upper-constraints.txt", bookworm)
    assert constraints.get("python-openstackclient") is not None
    inputs = lock_inputs(recipe, release, constraints)
    assert "python-openstackclient" not in constraint_names(inputs.constraints_txt)
    assert inputs.requirement_in == "python-openstackclient==7.5.0\nSQLAlchemy\nPyMySQL\nosc-placement\n"
    assert len(inputs.constraints_txt.splitlines()) == len(constraints.pins) - 1


def test_recorded_digest(tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    assert recorded_digest(lock) is None
    lock.write_text("# stackyard lock: x\n# inputs sha256: abc123\n# generated\nsix==1.0\n")
    assert recorded_digest(lock) == "abc123"
    lock.write_text("# stackyard lock: x\nsix==1.0\n# inputs sha256: abc123\n")
    assert recorded_digest(lock) is None  # only the header counts


def test_lock_path(config: Config, release: Release) -> None:
    assert lock_path(config, release, "keystone") == config.paths.requirements / "2025.1" / "locks" / "keystone.txt"


# --- explaining pip's failures ---------------------------------------------------


def test_explain_conflict_with_an_upper_constraint(constraints: Constraints) -> None:
    output = (
        "ERROR: Cannot install keystone==27.0.2 because these package versions have conflicting dependencies.\n"
        "\n"
        "The conflict is caused by:\n"
        "    The user requested (constraint) oslo.config==9.0.0\n"
        "    keystone 27.0.2 depends on oslo.config>=9.7.0\n"
        "\n"
        "To fix this you could try to:\n"
    )
    message = explain_conflict(output, constraints, UC)
    assert message is not None
    assert "keystone 27.0.2" in message
    assert "oslo.config>=9.7.0" in message
    assert "oslo.config===9.0.0" in message
    assert f"{UC}:2" in message


def test_explain_conflict_with_pip_canonical_constraint_name(constraints: Constraints) -> None:
    # pip prints the constraint under its canonical name
    output = (
        "The conflict is caused by:\n"
        "    keystone 27.0.2 depends on oslo.config>=9.7.0\n"
        "    The user requested (constraint) oslo-config==9.0.0\n\n"
    )
    message = explain_conflict(output, constraints, UC)
    assert message is not None
    assert "keystone 27.0.2 requires oslo.config>=9.7.0" in message
    assert f"({UC}:2)" in message


def test_explain_conflict_with_several_specifiers(constraints: Constraints) -> None:
    # pip 25 formats 'oslo.config!=9.1.0,>=9.7.0' as 'oslo.config!=9.1.0 and >=9.7.0'
    # (resolvelib SpecifierRequirement.format_for_error); the explanation should still name the pin.
    output = (
        "The conflict is caused by:\n"
        "    keystone 27.0.2 depends on oslo.config!=9.1.0 and >=9.7.0\n"
        "    The user requested (constraint) oslo-config==9.0.0\n\n"
    )
    message = explain_conflict(output, constraints, UC)
    assert message is not None
    assert "keystone 27.0.2" in message
    assert f"{UC}:2" in message


def test_explain_conflict_without_a_constraint_shows_the_block(constraints: Constraints) -> None:
    output = (
        "The conflict is caused by:\n"
        "    nova 31.3.1 depends on os-vif>=3.1.0\n"
        "    neutron 26.0.0 depends on os-vif<3.0.0\n\n"
        "To fix this you could try to:\n"
    )
    message = explain_conflict(output, constraints, UC)
    assert message == (
        "conflicting requirements:\n"
        "    nova 31.3.1 depends on os-vif>=3.1.0\n"
        "    neutron 26.0.0 depends on os-vif<3.0.0"
    )


def test_explain_missing_distribution(constraints: Constraints) -> None:
    message = explain_conflict("ERROR: No matching distribution found for foo==1.2.3\n", constraints, UC)
    assert message == "no distribution on the index satisfies foo==1.2.3"
    pinned = explain_conflict("ERROR: No matching distribution found for six==1.17.0\n", constraints, UC)
    assert pinned == f"no distribution on the index satisfies six==1.17.0 (pinned at {UC}:6)"
    extras = explain_conflict("ERROR: No matching distribution found for PyYAML[libyaml]>=6\n", constraints, UC)
    assert extras is not None and f"{UC}:10" in extras


def test_explain_unrelated_output(constraints: Constraints) -> None:
    assert explain_conflict("ERROR: network unreachable\n", constraints, UC) is None


def test_every_committed_lock_is_up_to_date_with_its_inputs(repo: Path) -> None:
    """A changed upper-constraints or recipe must come with re-run 'stackyard lock'."""
    config = load_config(repo / "stackyard.toml")
    recipes = load_recipes(config.paths.recipes)
    locks = sorted(config.paths.requirements.glob("*/locks/*.txt"))
    assert locks, "no committed locks"
    for lock in locks:
        release = config.release(lock.parent.parent.name)
        recipe = recipes[lock.stem]
        target = Target(release.python, release.glibc, "x86_64", release.codename)
        constraints = load_constraints(config.requirements_dir(release) / "upper-constraints.txt", target)
        assert recorded_digest(lock) == lock_inputs(recipe, release, constraints).digest, f"{lock} is stale"
