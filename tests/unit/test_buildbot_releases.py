"""The openstack/releases poller's decisions (builders.deliverables) and its place in the plan: no process, no network."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest

from builders.deliverables import (
    DeliverableError,
    PollerState,
    ReleaseTarget,
    decide,
    parse_cat_file_batch,
    parse_deliverable,
    release_target,
    unchanged,
)
from builders.master import master_config
from builders.plan import RELEASES_POLLER, make_plan
from builders.settings import buildbot_config
from stackyard.config import Config
from stackyard.recipes import load_recipes

KEYSTONE = "deliverables/epoxy/keystone.yaml"
PLACEMENT = "deliverables/epoxy/placement.yaml"


def deliverable(*versions: str, extra: str = "") -> str:
    body = "".join(f"  - version: {v}\n    projects:\n      - repo: openstack/x\n        hash: {v.replace('.', '') * 4}\n"
                   for v in versions)
    return f"---\nlaunchpad: x\nrelease-model: cycle-with-rc\nteam: x\ntype: service\n{extra}releases:\n{body}"


def keystone(pinned: str = "27.0.2", release: str = "2025.1", series: str = "epoxy") -> ReleaseTarget:
    return release_target("keystone", "keystone", release, series, pinned)


def placement() -> ReleaseTarget:
    return release_target("placement", "openstack-placement", "2025.1", "epoxy", "13.0.0")


def seen(targets: tuple[ReleaseTarget, ...], files: dict[str, str | None], commit: str = "c0") -> PollerState:
    """The state after the first poll: what exists is history."""
    first = decide(targets, files, commit, PollerState())
    assert first.builds == () and first.problems == ()
    return first.state


# --- deliverable files ---------------------------------------------------------


def test_a_real_deliverable_file_gives_each_version_and_the_commit_it_tags(repo: Path) -> None:
    file = repo / "tests" / "fixtures" / "openstack-releases" / KEYSTONE  # a copy of ../shared's: the unit suite runs without it
    releases = parse_deliverable(file.read_text(), KEYSTONE)
    assert [r.version for r in releases][:4] == ["27.0.0.0rc1", "27.0.0", "27.0.1", "27.0.2"]
    assert releases[1].commit == "bd2b97a0412b8ea01ef47fd8c0c4908ca9fcee8a"
    assert releases[0].line == 9


@pytest.mark.parametrize(("text", "line", "words"), [
    ("releases:\n  - version: 1.0\n  - version: [1.1\n", 4, "not YAML"),
    ("releases:\n  - version: 1.0\n\tbad: tab\n", 3, "not YAML"),
    ("- just\n- a list\n", 1, "must be a mapping"),
    ("team: x\nreleases: 1.0\n", 2, "releases: must be a list"),
    ("releases:\n  - version: 1.0\n  - projects: []\n", 3, "releases[1]: no version"),
    ("releases:\n  - 1.0\n", 2, "releases[0]: must be a mapping"),
    ("releases:\n  - version: 1.0\n  - version: not-a-version\n", 3, "'not-a-version' is not a version"),
])
def test_a_malformed_deliverable_names_file_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(DeliverableError) as info:
        parse_deliverable(text, KEYSTONE)
    assert str(info.value).startswith(f"{KEYSTONE}:{line}: "), str(info.value)
    assert words in str(info.value)


def test_a_deliverable_without_releases_lists_none() -> None:
    assert parse_deliverable("---\nteam: x\n", KEYSTONE) == ()
    assert parse_deliverable("", KEYSTONE) == ()
    assert parse_deliverable("releases:\n", KEYSTONE) == ()


def test_a_recipe_maps_to_the_deliverable_of_its_name_or_its_distribution() -> None:
    assert placement().paths == (PLACEMENT, "deliverables/epoxy/openstack-placement.yaml")
    assert keystone().paths == (KEYSTONE,)
    assert release_target("python-openstackclient", "python-openstackclient", "2025.2", "flamingo", "8.2.0").paths == \
        ("deliverables/flamingo/python-openstackclient.yaml",)


# --- decisions -----------------------------------------------------------------


def test_the_first_poll_is_history_and_a_new_final_version_starts_its_project_and_release_once() -> None:
    targets = (keystone(),)
    first = decide(targets, {KEYSTONE: deliverable("27.0.0", "27.0.1", "27.0.2", "27.0.3")}, "c0", PollerState())
    assert first.builds == () and first.first_seen == (KEYSTONE,)  # 27.0.3 existed before the poller: not news
    later = decide(targets, {KEYSTONE: deliverable("27.0.0", "27.0.1", "27.0.2", "27.0.3", "27.0.4")}, "c1", first.state)
    assert [(b.project, b.release, b.version, b.file) for b in later.builds] == [("keystone", "2025.1", "27.0.4", KEYSTONE)]
    assert later.builds[0].commit == "2704" * 4 and later.first_seen == ()
    again = decide(targets, {KEYSTONE: deliverable("27.0.0", "27.0.1", "27.0.2", "27.0.3", "27.0.4")}, "c1", later.state)
    assert again.builds == ()  # re-polling starts nothing more


def test_rc_beta_alpha_and_versions_at_or_below_the_pin_start_nothing() -> None:
    targets = (keystone("27.0.2"),)
    state = seen(targets, {KEYSTONE: deliverable("27.0.0", "27.0.1")})
    d = decide(targets, {KEYSTONE: deliverable("27.0.0", "27.0.1", "27.0.2", "28.0.0.0rc1", "28.0.0.0b1", "28.0.0.0a2", "27.0.1.1")},
               "c1", state)
    assert d.builds == ()
    final = decide(targets, {KEYSTONE: deliverable("27.0.0", "27.0.1", "27.0.2", "28.0.0.0rc1", "28.0.0")}, "c2", d.state)
    assert [b.version for b in final.builds] == ["28.0.0"]  # the final release after its rc: built


def test_each_version_goes_to_the_release_of_its_series_only() -> None:
    flamingo = "deliverables/flamingo/keystone.yaml"
    targets = (keystone("27.0.2"), keystone("28.0.0", "2025.2", "flamingo"))
    state = seen(targets, {KEYSTONE: deliverable("27.0.2"), flamingo: deliverable("28.0.0")})
    files = {KEYSTONE: deliverable("27.0.2", "27.0.3"), flamingo: deliverable("28.0.0", "28.0.1"),
             "deliverables/gazpacho/keystone.yaml": deliverable("29.0.0")}  # a series with no release: not read
    d = decide(targets, files, "c1", state)
    assert sorted((b.release, b.version) for b in d.builds) == [("2025.1", "27.0.3"), ("2025.2", "28.0.1")]
    assert "deliverables/gazpacho/keystone.yaml" not in d.state.versions


def test_several_new_versions_start_oldest_first_and_a_version_starts_once_even_if_re_added() -> None:
    targets = (keystone(),)
    state = seen(targets, {KEYSTONE: deliverable("27.0.2")})
    d = decide(targets, {KEYSTONE: deliverable("27.0.2", "27.0.10", "27.0.3")}, "c1", state)
    assert [b.version for b in d.builds] == ["27.0.3", "27.0.10"]
    removed = decide(targets, {KEYSTONE: deliverable("27.0.2", "27.0.3")}, "c2", d.state)  # a revert
    readded = decide(targets, {KEYSTONE: deliverable("27.0.2", "27.0.3", "27.0.10")}, "c3", removed.state)
    assert removed.builds == () and readded.builds == ()


def test_a_new_series_file_is_news_and_the_distribution_named_file_counts() -> None:
    targets = (placement(),)
    state = seen(targets, {PLACEMENT: None, "deliverables/epoxy/openstack-placement.yaml": None})
    assert state.versions == {PLACEMENT: [], "deliverables/epoxy/openstack-placement.yaml": []}
    d = decide(targets, {PLACEMENT: None, "deliverables/epoxy/openstack-placement.yaml": deliverable("13.0.1")}, "c1", state)
    assert [(b.project, b.version, b.file) for b in d.builds] == [("placement", "13.0.1", "deliverables/epoxy/openstack-placement.yaml")]


def test_a_malformed_file_is_reported_and_skipped_and_the_others_build() -> None:
    targets = (keystone(), placement())
    state = seen(targets, {KEYSTONE: deliverable("27.0.2"), PLACEMENT: deliverable("13.0.0")})
    broken = deliverable("27.0.2").replace("  - version: 27.0.2", "  - version: 27.0.2: oops")
    d = decide(targets, {KEYSTONE: broken, PLACEMENT: deliverable("13.0.0", "13.0.1")}, "c1", state)
    assert [b.key for b in d.builds] == ["placement 2025.1 13.0.1"]
    (problem,) = d.problems
    assert problem.startswith(f"{KEYSTONE}:7: not YAML"), problem
    assert d.state.versions[KEYSTONE] == ["27.0.2"]  # what was seen of it stays
    fixed = decide(targets, {KEYSTONE: deliverable("27.0.2", "27.0.3"), PLACEMENT: deliverable("13.0.0", "13.0.1")}, "c2", d.state)
    assert [b.key for b in fixed.builds] == ["keystone 2025.1 27.0.3"] and fixed.problems == ()


def test_a_recipe_added_later_starts_with_history() -> None:
    state = seen((keystone(),), {KEYSTONE: deliverable("27.0.2")})
    targets = (keystone(), placement())
    files: dict[str, str | None] = {KEYSTONE: deliverable("27.0.2"), PLACEMENT: deliverable("13.0.0", "13.0.1")}
    assert not unchanged(targets, "c0", state)  # same commit, but a file never read
    d = decide(targets, files, "c0", state)
    assert d.builds == () and d.first_seen == ("deliverables/epoxy/openstack-placement.yaml", PLACEMENT)
    assert unchanged(targets, "c0", d.state) and not unchanged(targets, "c1", d.state)


def test_the_state_survives_a_round_trip_through_the_database_and_forgets_what_the_pin_passed() -> None:
    targets = (keystone("27.0.2"),)
    state = seen(targets, {KEYSTONE: deliverable("27.0.2")})
    d = decide(targets, {KEYSTONE: deliverable("27.0.2", "27.0.3")}, "c1", state)
    loaded = PollerState.load(json.loads(json.dumps(d.state.dump())))  # what setState/getState keep
    assert loaded == d.state and loaded.started == ["keystone 2025.1 27.0.3"]
    assert decide(targets, {KEYSTONE: deliverable("27.0.2", "27.0.3")}, "c2", loaded).builds == ()
    # the build pinned 27.0.3 and the master reloaded: the entry can never start again, it goes
    after = decide((keystone("27.0.3"),), {KEYSTONE: deliverable("27.0.2", "27.0.3")}, "c2", loaded)
    assert after.state.started == []
    assert PollerState.load(None) == PollerState() and PollerState.load({"versions": 3}) == PollerState()


def test_cat_file_batch_output_gives_each_file_or_none() -> None:
    a, b = "releases:\n  - version: 1.0\n", "x\n"
    out = (f"1111 blob {len(a)}\n{a}\n".encode() + b"deadbeef:deliverables/epoxy/gone.yaml missing\n"
           + f"2222 blob {len(b)}\n{b}\n".encode())
    assert parse_cat_file_batch(out, ["d/a.yaml", "d/gone.yaml", "d/b.yaml"]) == {"d/a.yaml": a, "d/gone.yaml": None, "d/b.yaml": b}


# --- the plan --------------------------------------------------------------------

GIT_RECIPE = 'name: tinyapp\nsource: {git: "file:///srv/upstream/tinyapp.git"}\nversions: {"2025.1": "1.0"}\n'
PYPI_RECIPE = 'name: placement\nsource: {pypi: openstack-placement}\nversions: {"2025.1": "13.0.0", "2025.2": "14.0.0"}\n'


@pytest.fixture
def config_of(make_config: Callable[..., Config], make_recipe: Callable[..., Path]) -> Callable[..., Config]:
    def make(extra: str = "") -> Config:
        make_recipe("tinyapp", GIT_RECIPE)
        make_recipe("placement", PYPI_RECIPE)
        return buildbot_config(make_config(extra="[buildbot]\nimages = false\n" + extra))

    return make


def test_one_releases_poller_drives_the_recipes_from_the_index_and_tag_pollers_the_git_ones(config_of: Callable[..., Config]) -> None:
    config = config_of()
    plan = make_plan(config, load_recipes(config.paths.recipes))
    releases = plan.releases
    assert releases is not None
    assert (releases.name, releases.repourl, releases.branch, releases.interval) == \
        (RELEASES_POLLER, "https://opendev.org/openstack/releases", "master", 300)
    # placement has no 2025.2 in this configuration (one release): one target; tinyapp (git) is its tag poller's
    assert releases.targets == (ReleaseTarget("placement", "2025.1", "epoxy", "13.0.0", ("placement", "openstack-placement")),)
    assert [p.name for p in plan.pollers] == ["tags-tinyapp"]
    by_name = {s.name: s for s in plan.schedulers}
    assert (by_name["release-placement-2025.1"].kind, by_name["release-placement-2025.1"].repository) == \
        ("release", "https://opendev.org/openstack/releases")
    assert by_name["tag-tinyapp-2025.1"].repository == "file:///srv/upstream/tinyapp.git"
    assert "release-tinyapp-2025.1" not in by_name and "tag-placement-2025.1" not in by_name
    assert plan.poller_names == ("tags-tinyapp", "openstack-releases")


def test_the_releases_repository_and_branch_come_from_the_buildbot_table_and_empty_means_no_poller(
        config_of: Callable[..., Config]) -> None:
    c: dict[str, Any] = master_config(config_of('releases_repo = "file:///srv/releases.git"\nreleases_branch = "stable/x"\n'
                                                "poll_interval = 60\n"))
    poller = next(s for s in c["change_source"] if s.name == "openstack-releases")
    kwargs = poller._config_kwargs
    assert (kwargs["repourl"], kwargs["branch"], kwargs["pollInterval"]) == ("file:///srv/releases.git", "stable/x", 60)
    assert c["www"]["change_hook_dialects"] == {"poller": {"allowed": ["tags-tinyapp", "openstack-releases"]}}
    release = next(s for s in c["schedulers"] if s.name == "release-placement-2025.1")
    accepts = release._config_kwargs["change_filter"].filter_change

    def change(**kw: str) -> SimpleNamespace:
        return SimpleNamespace(**({"project": "placement", "category": "2025.1", "repository": "file:///srv/releases.git",
                                   "branch": "refs/tags/13.0.1", "codebase": ""} | kw))

    assert accepts(change())
    assert not accepts(change(category="2025.2")) and not accepts(change(project="tinyapp"))
    assert not accepts(change(repository="file:///srv/upstream/placement.git"))  # only the releases poller's changes
    app = next(b for b in c["builders"] if b.name == "placement-2025.1")
    assert [s.kwargs["name"] for s in app.factory.steps] == ["wait-for", "pin", "lock", "wheels", "inputs unchanged?",
                                                         "deb build", "lintian", "smoke test", "publish"]

    none = master_config(config_of('releases_repo = ""\n'))
    assert [s.name for s in none["change_source"]] == ["tags-tinyapp"]
    assert not any(s.name.startswith("release-") for s in none["schedulers"])
