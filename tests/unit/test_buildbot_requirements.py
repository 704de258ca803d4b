"""The upper-constraints poller's decisions (builders.requirements) and its place in the plan and the master config."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest
from buildbot.process.properties import Properties

from builders.master import Argv, master_config
from builders.plan import Prop, make_plan
from builders.requirements import PROJECT, decide, parse_ls_tree
from builders.settings import buildbot_config
from stackyard.config import Config
from stackyard.recipes import load_recipes

LS_TREE = ("100644 blob 1111111111111111111111111111111111111111\tbindep.txt\n"
           "100644 blob 2222222222222222222222222222222222222222\tglobal-requirements.txt\n"
           "100644 blob 3333333333333333333333333333333333333333\tupper-constraints.txt\n")
RECIPE = 'name: tinyapp\nsource: {pypi: tinyapp}\nversions: {"2025.1": "1.0"}\n'


def test_ls_tree_gives_each_watched_files_blob() -> None:
    assert parse_ls_tree(LS_TREE + "040000 tree 4444444444444444444444444444444444444444\tdoc\n") == {
        "bindep.txt": "1" * 40, "global-requirements.txt": "2" * 40, "upper-constraints.txt": "3" * 40}


def test_the_first_read_is_history_then_only_a_move_of_a_watched_file_is_news() -> None:
    blobs = parse_ls_tree(LS_TREE)
    first = decide(None, "c1", blobs)
    assert first.first and first.changed == ()
    assert first.state == {"commit": "c1", "blobs": {"upper-constraints.txt": "3" * 40, "global-requirements.txt": "2" * 40,
                                                     "bindep.txt": "1" * 40}}
    docs_only = decide(first.state, "c2", blobs)  # a new head, the three files unchanged
    assert not docs_only.first and docs_only.changed == () and docs_only.state["commit"] == "c2"
    moved = decide(docs_only.state, "c3", blobs | {"upper-constraints.txt": "5" * 40})
    assert moved.changed == ("upper-constraints.txt",)
    gone = decide(moved.state, "c4", {k: v for k, v in blobs.items() if k != "bindep.txt"} | {"upper-constraints.txt": "5" * 40})
    assert gone.changed == ("bindep.txt",)


@pytest.fixture
def config_of(make_config: Callable[..., Config], make_recipe: Callable[..., Path]) -> Callable[..., Config]:
    def make(release_keys: str = "", buildbot: str = "[buildbot]\nrequirements_update = false\n") -> Config:
        make_recipe("tinyapp", RECIPE)
        return buildbot_config(make_config(extra=release_keys + buildbot))

    return make


def test_a_release_with_requirements_git_gets_a_poller_and_a_scheduler_starting_its_wheels_builder(
        config_of: Callable[..., Config]) -> None:
    config = config_of('requirements_git = "file:///srv/requirements.git"\n', "[buildbot]\nrequirements_update = false\n"
                       "poll_interval = 45\n")
    plan = make_plan(config, load_recipes(config.paths.recipes))
    (poller,) = plan.requirements
    assert (poller.name, poller.release, poller.repourl, poller.branch, poller.interval) == (
        "requirements-2025.1", "2025.1", "file:///srv/requirements.git", "stable/2025.1", 45)
    assert "requirements-2025.1" in plan.poller_names
    by_name = {s.name: s for s in plan.schedulers}
    scheduler = by_name["requirements-wheels-2025.1"]
    assert (scheduler.kind, scheduler.builders, scheduler.project, scheduler.release, scheduler.repository) == (
        "requirements", ("wheels-2025.1",), PROJECT, "2025.1", "file:///srv/requirements.git")
    # requirements_update = false, but the release follows its requirements_git: the wheels builder refreshes first,
    # at the commit the poller saw (forced or nightly: the branch's head)
    steps = plan.builder("wheels-2025.1").steps
    assert [s.name for s in steps][:2] == ["requirements", "lock"]
    assert steps[0].command == ("stackyard", "requirements", "update", "--release", "2025.1",
                                Prop("requirements_commit", flag="--revision"))


def test_without_requirements_git_no_poller_and_requirements_update_false_means_no_refresh(
        config_of: Callable[..., Config]) -> None:
    config = config_of()
    plan = make_plan(config, load_recipes(config.paths.recipes))
    assert plan.requirements == () and not any(s.kind == "requirements" for s in plan.schedulers)
    assert plan.builder("wheels-2025.1").steps[0].name == "lock"


def test_the_revision_flag_is_given_only_when_the_poller_set_the_commit() -> None:
    argv = Argv(("stackyard", "requirements", "update", "--release", "2025.1", Prop("requirements_commit", flag="--revision")))
    assert argv.getRenderingFor(Properties(requirements_commit="c0ffee")) == [
        "stackyard", "requirements", "update", "--release", "2025.1", "--revision", "c0ffee"]
    assert argv.getRenderingFor(Properties()) == ["stackyard", "requirements", "update", "--release", "2025.1"]


def test_the_master_maps_the_poller_and_its_scheduler_takes_only_its_releases_changes(config_of: Callable[..., Config]) -> None:
    c: dict[str, Any] = master_config(config_of('requirements_git = "file:///srv/requirements.git"\nrequirements_branch = "main"\n'))
    (poller,) = [s for s in c["change_source"] if s.name == "requirements-2025.1"]
    kwargs = poller._config_kwargs
    assert (kwargs["release"], kwargs["repourl"], kwargs["branch"], kwargs["pollInterval"]) == (
        "2025.1", "file:///srv/requirements.git", "main", 300)
    assert "requirements-2025.1" in c["www"]["change_hook_dialects"]["poller"]["allowed"]
    scheduler = next(s for s in c["schedulers"] if s.name == "requirements-wheels-2025.1")
    assert scheduler._config_kwargs["builderNames"] == ["wheels-2025.1"]
    accepts = scheduler._config_kwargs["change_filter"].filter_change

    def change(**kw: str) -> SimpleNamespace:
        return SimpleNamespace(**({"project": PROJECT, "category": "2025.1", "repository": "file:///srv/requirements.git",
                                   "branch": "main", "codebase": ""} | kw))

    assert accepts(change())
    assert not accepts(change(category="2025.2")) and not accepts(change(project="tinyapp"))
    assert not accepts(change(repository="file:///srv/other.git"))
    # no recipe's builders take it: a recipe name has no slash
    assert not any(s.name.startswith(("tag-", "release-")) and s._config_kwargs["change_filter"].filter_change(change())
                   for s in c["schedulers"] if "change_filter" in s._config_kwargs)
