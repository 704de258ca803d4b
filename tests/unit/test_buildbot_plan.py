"""builders.plan and builders.tags: the master's builders, steps, schedulers and pollers as data."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from builders.plan import DEB_LOGS, DEB_TODO, REGISTRY, REPREPRO, MasterPlan, Prop, make_plan
from builders.settings import buildbot_config, load_config
from builders.tags import new_tag_builds, parse_ls_remote, series_rule
from stackyard.config import Config
from stackyard.errors import ConfigError
from stackyard.pins import pinned_text
from stackyard.recipes import load_recipes

GIT_RECIPE = """\
name: {name}
source:
  git: file:///srv/upstream/{name}
versions:
  "2025.1": "1.0"
smoke: ["{name} --version"]
"""

PYPI_RECIPE = """\
name: {name}
source: {{pypi: {name}}}
versions: {{"2025.1": "27.0.2", "2025.2": "28.0.1"}}
"""

TWO_RELEASES = """
[releases."2025.2"]
series = "flamingo"
codename = "bookworm"
upstream = "https://example.invalid/2025.2"
"""


@pytest.fixture
def plan_of(make_config: Callable[..., Config], make_recipe: Callable[..., Path], tmp_path: Path) -> Callable[..., MasterPlan]:
    def make(extra: str = "", recipes: dict[str, str] | None = None) -> MasterPlan:
        for name, body in (recipes or {"tinyapp": GIT_RECIPE, "keystone": PYPI_RECIPE}).items():
            make_recipe(name, body.format(name=name))
        config = buildbot_config(make_config(extra=TWO_RELEASES + extra))
        return make_plan(config, load_recipes(config.paths.recipes))

    return make


def names(plan: MasterPlan, kind: str | None = None) -> list[str]:
    return [b.name for b in plan.builders if kind is None or b.kind == kind]


def test_builders_per_release_and_per_recipe_and_release(plan_of: Callable[..., MasterPlan]) -> None:
    plan = plan_of()
    assert names(plan, "wheels") == ["wheels-2025.1", "wheels-2025.2"]
    assert names(plan, "promote") == ["promote-2025.1", "promote-2025.2"]
    # tinyapp has no version for 2025.2: no builder for it
    assert sorted(names(plan, "project")) == ["keystone-2025.1", "keystone-2025.2", "tinyapp-2025.1"]


def test_adding_a_recipe_file_adds_its_builders(plan_of: Callable[..., MasterPlan]) -> None:
    plan = plan_of(recipes={"tinyapp": GIT_RECIPE, "keystone": PYPI_RECIPE, "glance": PYPI_RECIPE})
    assert {"glance-2025.1", "glance-2025.2", "force-glance-2025_1"} <= set(names(plan)) | {s.name for s in plan.schedulers}


def test_project_steps_are_stackyard_commands_in_pipeline_order(plan_of: Callable[..., MasterPlan]) -> None:
    builder = plan_of().builder("keystone-2025.1")
    assert [s.name for s in builder.steps] == ["wait-for", "pin", "lock", "wheels", "inputs unchanged?", "deb build", "lintian",
                                               "smoke test", "publish", "image"]
    commands = {s.name: s.command for s in builder.steps}
    assert commands["wait-for"] == ("stackyard", "wait-for", "--release", "2025.1", "--attempts", "15", "--delay", "30",
                                    "keystone", Prop("version"))
    assert commands["pin"] == ("stackyard", "pin", "--release", "2025.1", "keystone", Prop("version"))
    assert commands["lock"] == ("stackyard", "lock", "--release", "2025.1", "keystone")
    assert commands["wheels"] == ("stackyard", "wheels", "--release", "2025.1", "keystone")
    assert commands["inputs unchanged?"] == ("stackyard", "deb", "--release", "2025.1", "keystone", "--check", "--json")
    assert commands["deb build"] == ("stackyard", "deb", "--release", "2025.1", "keystone", "--no-lint", "--no-smoke")
    assert commands["lintian"] == ("stackyard", "lintian", "--release", "2025.1", "keystone")
    assert commands["smoke test"] == ("stackyard", "smoke", "--release", "2025.1", "keystone")
    assert commands["publish"] == ("stackyard", "publish", "--release", "2025.1", "keystone")
    assert commands["image"] == ("stackyard", "image", "--release", "2025.1", "keystone", "--push")
    assert all(s.command[0] == "stackyard" for s in builder.steps)
    # a new version (openstack/releases, the force form's upstream ref) is awaited on the index, then moves the pin
    assert builder.steps[0].only_if == builder.steps[1].only_if == "version"
    # a recipe from git builds from its tag: nothing to wait for
    assert [s.name for s in plan_of().builder("tinyapp-2025.1").steps] == [
        "pin", "lock", "wheels", "inputs unchanged?", "deb build", "lintian", "smoke test", "publish", "image"]


def test_the_deb_is_a_fast_check_then_build_lintian_and_smoke_test_each_run_only_when_left_to_do(
        plan_of: Callable[..., MasterPlan]) -> None:
    steps = {s.name: s for s in plan_of().builder("keystone-2025.1").steps}
    check = steps["inputs unchanged?"]
    assert (check.kind, check.json_property, check.only_if) == ("deb-check", "deb", None)  # always runs
    assert [(steps[n].only_if, steps[n].show_skipped) for n in ("deb build", "lintian", "smoke test")] == [
        (DEB_TODO["build"], True), (DEB_TODO["lintian"], True), (DEB_TODO["smoke"], True)]
    assert steps["lintian"].kind == "lintian"
    # each stage with its own log: the tool's log file on the worker, named by the check
    assert steps["deb build"].logfiles == (("dpkg-buildpackage", DEB_LOGS["build"]),)
    assert steps["smoke test"].logfiles == (("smoke", DEB_LOGS["smoke"]),)
    assert not steps["publish"].show_skipped and steps["publish"].only_if is None  # publish and image always run


def test_images_false_drops_only_the_image_step(plan_of: Callable[..., MasterPlan]) -> None:
    builder = plan_of("[buildbot]\nimages = false\n").builder("keystone-2025.1")
    assert [s.name for s in builder.steps] == ["wait-for", "pin", "lock", "wheels", "inputs unchanged?", "deb build", "lintian",
                                               "smoke test", "publish"]


def test_promote_runs_verify_first_unless_buildbot_verify_is_false(plan_of: Callable[..., MasterPlan]) -> None:
    verify, promote = plan_of().builder("promote-2025.1").steps
    assert verify.command == ("stackyard", "verify", "--release", "2025.1", Prop("projects", split=True))
    assert promote.command == ("stackyard", "promote", "--release", "2025.1", Prop("projects", split=True))
    (forced,) = plan_of("[buildbot]\nverify = false\n").builder("promote-2025.1").steps
    assert forced.command[-2:] == ("--force", "[buildbot] verify = false") and forced.locks == (REPREPRO,)


def test_locks_serialize_repository_and_registry_writes_not_projects(plan_of: Callable[..., MasterPlan]) -> None:
    plan = plan_of()
    steps = {s.name: s for s in plan.builder("keystone-2025.1").steps}
    assert steps["publish"].locks == (REPREPRO,) and steps["image"].locks == (REGISTRY,)
    assert steps["wheels"].locks == ("wheelhouse-2025.1",)
    assert all(steps[n].locks == () for n in ("inputs unchanged?", "deb build", "lintian", "smoke test"))  # projects in parallel
    assert [(s.name, s.locks) for s in plan.builder("promote-2025.1").steps] == [("verify", ()), ("promote", (REPREPRO,))]
    assert plan.builder("keystone-2025.1").locks != plan.builder("tinyapp-2025.1").locks
    assert {REPREPRO, REGISTRY, "wheelhouse-2025.1"} <= set(plan.locks)


def test_wheels_builder_locks_then_triggers_changed_projects_then_promote(plan_of: Callable[..., MasterPlan]) -> None:
    steps = plan_of().builder("wheels-2025.1").steps
    assert [s.name for s in steps] == ["requirements", "lock", "wheels", "wheels-deb", "rebuild changed projects", "promote"]
    lock = steps[1]
    assert lock.command == ("stackyard", "lock", "--release", "2025.1", "--json", "tinyapp", "keystone") or \
        lock.command == ("stackyard", "lock", "--release", "2025.1", "--json", "keystone", "tinyapp")
    assert lock.json_property == "locks"
    assert [(s.trigger, s.only_if) for s in steps[4:]] == [("changed-projects", "changed_projects"), ("promote", "changed_projects")]
    no_update = plan_of("[buildbot]\nrequirements_update = false\n").builder("wheels-2025.1").steps
    assert no_update[0].name == "lock"


def test_scheduler_wiring(plan_of: Callable[..., MasterPlan]) -> None:
    plan = plan_of("[buildbot]\nnightly = \"04:30\"\n")
    by_name = {s.name: s for s in plan.schedulers}
    for builder in plan.builders:  # every builder can be forced
        force = by_name["force-" + builder.name.replace(".", "_")]
        assert force.kind == "force" and force.builders == (builder.name,)
    assert by_name["nightly-2025.1"].builders == ("wheels-2025.1",)
    assert (by_name["nightly-2025.1"].hour, by_name["nightly-2025.1"].minute) == (4, 30)
    assert by_name["trigger-keystone-2025.1"].kind == "triggerable"
    assert by_name["trigger-promote-2025.2"].builders == ("promote-2025.2",)
    tag = by_name["tag-tinyapp-2025.1"]
    assert (tag.kind, tag.builders, tag.project, tag.release) == ("tag", ("tinyapp-2025.1",), "tinyapp", "2025.1")
    assert "tag-keystone-2025.1" not in by_name  # a PyPI recipe has no git repository to watch


def test_a_poller_per_git_recipe(plan_of: Callable[..., MasterPlan]) -> None:
    (poller,) = plan_of("[buildbot]\npoll_interval = 30\n").pollers
    assert (poller.name, poller.project, poller.repourl, poller.interval) == ("tags-tinyapp", "tinyapp", "file:///srv/upstream/tinyapp", 30)
    assert [r.release for r in poller.rules] == ["2025.1"]


def test_workers_take_only_their_builders(plan_of: Callable[..., MasterPlan]) -> None:
    plan = plan_of("""
        [buildbot]
        [[buildbot.workers]]
        name = "general"
        builders = ["wheels-*", "promote-*", "keystone-*"]
        [[buildbot.workers]]
        name = "tiny"
        builders = ["tinyapp-*", "keystone-2025.1"]
        """)
    assert plan.builder("tinyapp-2025.1").workers == ("tiny",)
    assert plan.builder("keystone-2025.1").workers == ("general", "tiny")
    assert plan.builder("keystone-2025.2").workers == ("general",)


def test_a_builder_no_worker_may_take_names_the_key(plan_of: Callable[..., MasterPlan]) -> None:
    with pytest.raises(ConfigError, match=r"stackyard\.toml: buildbot\.workers: no worker may take builder 'promote-2025.1'"):
        plan_of('[buildbot]\n[[buildbot.workers]]\nname = "w"\nbuilders = ["wheels-*", "keystone-*", "tinyapp-*"]\n')


def test_a_project_whose_builder_name_collides_names_the_recipe(plan_of: Callable[..., MasterPlan], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"wheels\.yaml: name: builder 'wheels-2025.1' is also made by"):
        plan_of(recipes={"wheels": PYPI_RECIPE})


def test_a_broken_recipe_names_file_and_key(make_config: Callable[..., Config], make_recipe: Callable[..., Path]) -> None:
    file = make_recipe("tinyapp", GIT_RECIPE.format(name="tinyapp").replace('"2025.1": "1.0"', '"2025.1": 1.0'))
    config = buildbot_config(make_config())
    with pytest.raises(ConfigError, match=rf"{file}: versions.2025.1: quote the version"):
        make_plan(config, load_recipes(config.paths.recipes))


def test_the_repository_configuration_plans_every_recipe(repo: Path) -> None:
    config = load_config(repo / "stackyard.toml")
    recipes = load_recipes(config.paths.recipes)
    plan = make_plan(config, recipes)
    expected = {f"{r}-{rid}" for r, recipe in recipes.items() for rid in recipe.versions}
    assert expected <= set(names(plan, "project"))
    assert len(names(plan, "wheels")) == len(config.releases)


# --- tags ------------------------------------------------------------------

LS_REMOTE = """\
1111111111111111111111111111111111111111\trefs/tags/1.0
2222222222222222222222222222222222222222\trefs/tags/1.1.0rc1
2222222222222222222222222222222222222222\trefs/tags/1.1
3333333333333333333333333333333333333333\trefs/tags/2.0
aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\trefs/tags/1.2
4444444444444444444444444444444444444444\trefs/tags/1.2^{}
5555555555555555555555555555555555555555\trefs/heads/master
"""


def test_ls_remote_tags_resolve_annotated_tags_to_commits() -> None:
    tags = parse_ls_remote(LS_REMOTE)
    assert tags == {"1.0": "1" * 40, "1.1.0rc1": "2" * 40, "1.1": "2" * 40, "2.0": "3" * 40, "1.2": "4" * 40}


def test_a_final_tag_on_the_commit_of_an_already_seen_rc_is_new() -> None:
    rule = series_rule("2025.1", "1.0")
    seen = {"1.0", "1.1.0rc1"}  # the rc was seen (and not built) on commit 222...
    builds = new_tag_builds(seen, parse_ls_remote(LS_REMOTE), (rule,))
    assert [(b.tag, b.commit, b.release) for b in builds] == [("1.1", "2" * 40, "2025.1"), ("1.2", "4" * 40, "2025.1")]


def test_tags_go_to_the_release_of_their_series_only() -> None:
    rules = (series_rule("2025.1", "1.0"), series_rule("2025.2", "2.0"))
    builds = new_tag_builds({"1.0"}, {"1.0": "a", "1.1": "b", "2.0": "c", "2.1": "d", "3.0": "e", "1.1.0rc1": "b"}, rules)
    assert [(b.tag, b.release) for b in builds] == [("1.1", "2025.1"), ("2.1", "2025.2")]  # 2.0 is the pin, 3.0 no series


def test_deliverable_files_widen_the_series() -> None:
    rule = series_rule("2025.1", "27.0.2", ("27.0.0.0rc1", "27.0.0", "27.1.0"))
    assert rule.majors == (27,)
    assert rule.matches("27.0.3") and not rule.matches("27.0.2") and not rule.matches("28.0.0") and not rule.matches("27.1.0.0rc1")
    assert series_rule("2025.1", "27.0.2", ("28.0.0",)).matches("28.0.1")


# --- pins ------------------------------------------------------------------

def test_pin_rewrites_only_the_release_line_keeping_comments(tmp_path: Path) -> None:
    text = '# a comment\nname: demo\nsource: {pypi: demo}\nversions:\n  "2025.1": "1.0"   # newest final tag\n  "2025.2": "2.0"\n'
    new = pinned_text(text, "2025.1", "1.1", tmp_path / "demo.yaml")
    assert new == text.replace('"2025.1": "1.0"', '"2025.1": "1.1"')
    flow = 'name: demo\nsource: {pypi: demo}\nversions: {"2025.1": "27.0.2", "2025.2": "28.0.2"}\n'
    assert '"2025.2": "28.0.3"' in pinned_text(flow, "2025.2", "28.0.3", tmp_path / "demo.yaml")


def test_openstack_releases_deliverables_give_the_series_tags(repo: Path) -> None:
    from builders.tags import deliverable_versions

    # a copy of openstack/releases' epoxy keystone deliverable (../shared/openstack-releases): the unit
    # suite runs without ../shared
    deliverables = repo / "tests" / "fixtures" / "openstack-releases" / "deliverables"
    listed = deliverable_versions(deliverables, "epoxy", "keystone")
    assert "27.0.0.0rc1" in listed and "27.0.2" in listed
    rule = series_rule("2025.1", "27.0.2", listed)
    assert rule.majors == (27,) and rule.matches("27.0.3") and not rule.matches("28.0.0")
    assert deliverable_versions(deliverables, "epoxy", "no-such-project") == ()


def test_pins_branch_adds_a_pin_commit_step_after_the_lock_of_a_tag_build(plan_of: Callable[..., MasterPlan]) -> None:
    assert "pin commit" not in [s.name for s in plan_of().builder("tinyapp-2025.1").steps]  # off by default
    steps = plan_of('[buildbot]\npins_branch = "stackyard/pins"\n').builder("tinyapp-2025.1").steps
    names = [s.name for s in steps]
    assert names[:4] == ["pin", "lock", "pin commit", "wheels"]
    commit = steps[2]
    # --since the build's checkout: a property only scale-out's checkout step sets (here: no flag at all)
    assert commit.command == ("stackyard", "pin-commit", "--release", "2025.1", "tinyapp", Prop("checkout", flag="--since"), "--json")
    assert (commit.only_if, commit.json_property) == ("version", "pin_commit")  # only a new version moves a pin
