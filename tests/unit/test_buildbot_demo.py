"""make demo through Buildbot: the wheels builder's force form, and the lines builders.ctl demo prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from builders import ctl
from builders.master import LockStep, _words, master_config
from builders.plan import REBUILD, REQUIREMENTS_UPDATE, make_plan
from builders.settings import buildbot_config
from stackyard.config import Config
from stackyard.errors import FetchError, InputError, exit_code
from stackyard.recipes import load_recipes
from tests.conftest import free_port

RECIPE = 'name: tinyapp\nsource:\n  pypi: tinyapp\nversions:\n  "2025.1": "1.0"\n'


@pytest.fixture
def bb_config(make_config: Callable[..., Config], make_recipe: Callable[..., Path]) -> Config:
    make_recipe("tinyapp", RECIPE)
    return buildbot_config(make_config(extra=f'[buildbot]\nimages = false\nreleases_repo = ""\nweb_port = {free_port()}\n'))


def test_the_wheels_builder_refreshes_upper_constraints_unless_its_force_form_says_not_to(bb_config: Config) -> None:
    plan = make_plan(bb_config, load_recipes(bb_config.paths.recipes))
    (requirements, *_) = plan.builder("wheels-2025.1").steps
    assert requirements.name == "requirements" and requirements.only_if == REQUIREMENTS_UPDATE and requirements.show_skipped
    c: dict[str, Any] = master_config(bb_config)
    builders = {b.name: b for b in c["builders"]}
    # nightly, a requirements change, a trigger: no such property in the request, so the builder's default (true) holds
    assert builders["wheels-2025.1"].defaultProperties == {REQUIREMENTS_UPDATE: True}
    assert builders["tinyapp-2025.1"].defaultProperties == {} and builders["promote-2025.1"].defaultProperties == {}
    force = next(s for s in c["schedulers"] if s.name == "force-wheels-2025_1")
    params = {p.name: p for p in force._config_kwargs["properties"]}
    assert list(params) == ["release", REQUIREMENTS_UPDATE, REBUILD]
    assert params[REQUIREMENTS_UPDATE].default is True
    assert params[REBUILD].choices == ["tinyapp"] and params[REBUILD].multiple and params[REBUILD].strict
    lock = next(s for s in builders["wheels-2025.1"].factory.steps if s.kwargs["name"] == "lock")
    assert lock.step_class is LockStep  # changed_projects: the projects whose pins moved, and 'rebuild'


def test_a_rebuild_property_is_a_list_of_projects_or_a_space_separated_string() -> None:
    assert _words(["keystone", "nova"]) == ["keystone", "nova"]
    assert _words("keystone  nova ") == ["keystone", "nova"]
    assert _words(None) == [] and _words("") == []


def test_the_progress_lines_name_build_step_result_and_seconds() -> None:
    build = {"number": 3, "results": 0, "started_at": 1000, "complete_at": 1125}
    assert ctl.build_line("wheels-2025.1", build) == "wheels-2025.1 #3: success in 125 s"
    step = {"name": "lintian", "results": 1, "started_at": 1010, "complete_at": 1014, "state_string": "lintian: 2 warnings"}
    assert ctl.step_line("keystone-2025.1", build, step) == "  keystone-2025.1 #3 lintian: warnings (4 s) lintian: 2 warnings"
    skipped = {"name": "deb build", "results": 3, "started_at": None, "complete_at": 1020, "state_string": ""}
    assert ctl.step_line("keystone-2025.1", build, skipped) == "  keystone-2025.1 #3 deb build: skipped (0 s)"


def test_a_master_that_does_not_answer_is_named_with_how_to_start_it(bb_config: Config) -> None:
    with pytest.raises(FetchError) as info:
        ctl.demo(bb_config.file, "2025.1", ["tinyapp"], say=print)
    assert str(info.value) == (f"the Buildbot master at {bb_config.buildbot.url} does not answer (ConnectionError)\n"
                               "  fix: 'make up' starts it (see var/buildbot/twistd.log)")
    assert exit_code(info.value) == 4


def test_an_unknown_release_is_an_input_error_before_anything_is_asked(bb_config: Config) -> None:
    with pytest.raises(InputError):
        ctl.demo(bb_config.file, "1999.1", [], say=print)


@pytest.mark.parametrize("argv, says", [
    (["demo"], "demo needs --release"),
    (["up", "--release", "2025.1"], "--release and projects are for 'demo', not 'up'"),
    (["down", "keystone"], "--release and projects are for 'demo', not 'down'"),
])
def test_the_command_line_refuses_misplaced_arguments(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        ctl.main(argv)
    assert info.value.code == 2 and says in capsys.readouterr().err
