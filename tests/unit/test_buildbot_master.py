"""builders.master: the plan mapped onto Buildbot objects (no master started, no process)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Callable

import pytest
from buildbot.process.properties import Properties, Property

from builders.master import (
    Argv,
    DebCheck,
    Lintian,
    _locks_json,
    deb_check_properties,
    lintian_summary,
    master_config,
    pin_commit_properties,
    secret_value,
)
from builders.plan import Prop
from builders.settings import Secret, buildbot_config
from stackyard.config import Config
from stackyard.errors import ConfigError
from stackyard.pins import pin
from stackyard.recipes import load_recipe

RECIPE = """\
name: tinyapp
source:
  git: file:///srv/upstream/tinyapp.git
versions:
  "2025.1": "1.0"   # newest final tag
"""


@pytest.fixture
def bb_config(make_config: Callable[..., Config], make_recipe: Callable[..., Path]) -> Config:
    make_recipe("tinyapp", RECIPE)
    return buildbot_config(make_config(extra="[buildbot]\nimages = false\nweb_port = 8011\n"))


def test_master_config_maps_the_plan(bb_config: Config) -> None:
    c: dict[str, Any] = master_config(bb_config)
    assert c["buildbotNetUsageData"] is None  # never phones home
    assert c["protocols"] == {"pb": {"port": "tcp:9989:interface=127.0.0.1"}}
    assert c["www"]["port"] == "tcp:8011:interface=127.0.0.1" and c["buildbotURL"] == "http://127.0.0.1:8011/"
    assert set(c["www"]["plugins"]) == {"waterfall_view", "console_view", "grid_view"}
    assert c["www"]["change_hook_dialects"] == {"poller": {"allowed": ["tags-tinyapp"]}}
    assert c["db"]["db_url"] == f"sqlite:///{bb_config.paths.root}/var/buildbot/state.sqlite"
    assert [w.name for w in c["workers"]] == ["local"]
    assert sorted(b.name for b in c["builders"]) == ["promote-2025.1", "tinyapp-2025.1", "wheels-2025.1"]
    app = next(b for b in c["builders"] if b.name == "tinyapp-2025.1")
    assert [s.kwargs["name"] for s in app.factory.steps] == ["pin", "lock", "wheels", "inputs unchanged?", "deb build", "lintian",
                                                         "smoke test", "publish"]
    by_name = {s.kwargs["name"]: s for s in app.factory.steps}
    assert by_name["inputs unchanged?"].step_class is DebCheck and by_name["lintian"].step_class is Lintian
    # the deb stages run when the check left them something to do, and stay visible when skipped
    assert "doStepIf" in by_name["deb build"].kwargs and "hideStepIf" not in by_name["deb build"].kwargs
    assert "hideStepIf" in by_name["pin"].kwargs
    assert by_name["deb build"].kwargs["logfiles"] == {"dpkg-buildpackage": Property("deb_build_log")}
    assert by_name["smoke test"].kwargs["logfiles"] == {"smoke": Property("deb_smoke_log")}
    assert "logfiles" not in by_name["lintian"].kwargs  # its W:/E: lines are its stdio
    assert app.collapseRequests is False and app.properties == {"release": "2025.1", "project": "tinyapp"}
    force = next(s for s in c["schedulers"] if s.name == "force-tinyapp-2025_1")
    assert [p.name for p in force._config_kwargs["properties"]] == ["release", "project", "version"]
    assert force._config_kwargs["builderNames"] == ["tinyapp-2025.1"]
    (poller,) = c["change_source"]
    kwargs = poller._config_kwargs  # applied when the master (re)configures the service
    assert poller.name == "tags-tinyapp"
    assert (kwargs["repourl"], kwargs["project"], kwargs["pollInterval"]) == ("file:///srv/upstream/tinyapp.git", "tinyapp", 300)
    assert [r.release for r in kwargs["rules"]] == ["2025.1"]


def test_secrets_come_from_a_file_made_on_first_use_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "secrets" / "worker-local"
    made = secret_value(Secret("buildbot.workers[0].password_file", file, None))
    assert len(made) >= 24 and stat.S_IMODE(file.stat().st_mode) == 0o600
    assert secret_value(Secret("buildbot.workers[0].password_file", file, None)) == made
    monkeypatch.setenv("STACKYARD_TEST_PASSWORD", "s3cret")
    assert secret_value(Secret("k", None, "STACKYARD_TEST_PASSWORD")) == "s3cret"
    monkeypatch.delenv("STACKYARD_TEST_PASSWORD")
    with pytest.raises(ConfigError, match=r"buildbot.users\[0\].password_env: the environment variable STACKYARD_TEST_PASSWORD is not set"):
        secret_value(Secret("buildbot.users[0].password_env", None, "STACKYARD_TEST_PASSWORD"))
    assert "STACKYARD_TEST_PASSWORD" not in os.environ


def test_commands_render_build_properties() -> None:
    props = Properties(version="1.1", projects="tinyapp keystone")
    assert Argv(("stackyard", "pin", "--release", "2025.1", "tinyapp", Prop("version"))).getRenderingFor(props) == \
        ["stackyard", "pin", "--release", "2025.1", "tinyapp", "1.1"]
    assert Argv(("stackyard", "promote", "--release", "2025.1", Prop("projects", split=True))).getRenderingFor(props) == \
        ["stackyard", "promote", "--release", "2025.1", "tinyapp", "keystone"]
    assert Argv(("stackyard", "promote", "--release", "2025.1", Prop("projects", split=True))).getRenderingFor(Properties()) == \
        ["stackyard", "promote", "--release", "2025.1"]  # nothing given: every project


def test_lock_json_tells_which_projects_changed() -> None:
    out = '[{"project": "a", "packages": 3, "changed": true, "file": "x"}, {"project": "b", "packages": 1, "changed": false, "file": "y"}]'
    assert _locks_json(0, out, "")["changed_projects"] == "a"
    assert _locks_json(3, "", "error") == {}
    # an upper-constraints move rewrites every lock's header: only the locks whose pins moved rebuild their project
    moved = [{"project": "a", "packages": 3, "changed": True, "pins_changed": False, "file": "x"},
             {"project": "b", "packages": 1, "changed": True, "pins_changed": True, "file": "y"}]
    assert _locks_json(0, json.dumps(moved), "")["changed_projects"] == "b"


def test_pin_moves_forward_only(make_recipe: Callable[..., Path]) -> None:
    file = make_recipe("tinyapp", RECIPE)
    result = pin(load_recipe(file), "2025.1", "1.1")
    assert result.changed and (result.previous, result.current) == ("1.0", "1.1")
    assert file.read_text() == RECIPE.replace('"2025.1": "1.0"', '"2025.1": "1.1"')  # the comment stays
    older = pin(load_recipe(file), "2025.1", "1.0.5")
    assert not older.changed and older.current == "1.1"
    added = pin(load_recipe(file), "2025.2", "2.0")
    assert added.changed and load_recipe(file).versions == {"2025.1": "1.1", "2025.2": "2.0"}


def deb_check(todo: list[str], reason: str) -> str:
    logs = {stage: f"/w/var/logs/2025.1/{stage}/venv-tinyapp_1.1-2025.1.2.log" for stage in ("build", "lintian", "smoke")}
    return json.dumps([{"project": "tinyapp", "package": "venv-tinyapp", "version": "1.1-2025.1.2", "todo": todo,
                        "reason": reason, "file": None, "lintian_warnings": 0, "logs": logs}])


def test_the_deb_check_sets_a_property_per_stage_left_to_do() -> None:
    changed = deb_check_properties(0, deb_check(["build", "lintian", "smoke"], "Rebuild of 1.1 with a changed lock."), "")
    assert [changed[p] for p in ("deb_build", "deb_lintian", "deb_smoke")] == ["Rebuild of 1.1 with a changed lock."] * 3
    assert changed["deb_state"] == "to do: build lintian smoke (Rebuild of 1.1 with a changed lock.)"
    assert changed["deb_build_log"] == "/w/var/logs/2025.1/build/venv-tinyapp_1.1-2025.1.2.log"
    assert changed["deb_version"] == "1.1-2025.1.2"
    untested = deb_check_properties(0, deb_check(["smoke"], "x.deb has not passed its smoke test"), "")
    assert (untested["deb_build"], untested["deb_lintian"], untested["deb_smoke"]) == ("", "", "x.deb has not passed its smoke test")
    same = deb_check_properties(0, deb_check([], "inputs unchanged"), "")
    assert (same["deb_build"], same["deb_lintian"], same["deb_smoke"]) == ("", "", "")
    assert same["deb_state"] == "unchanged: venv-tinyapp 1.1-2025.1.2"
    assert deb_check_properties(4, "", "stackyard: error: no lock") == {}


def test_lintian_summary_counts_warnings_by_tag() -> None:
    warnings = ["W: venv-tinyapp: no-manual-page [usr/bin/a]", "W: venv-tinyapp: no-manual-page [usr/bin/b]",
                "W: venv-tinyapp: copyright-without-copyright-notice"]
    assert lintian_summary(warnings, []) == "lintian: 3 warnings (no-manual-page x2, copyright-without-copyright-notice)"
    assert lintian_summary([], ["E: venv-tinyapp: bad"]) == "lintian: 1 errors"
    assert lintian_summary([], []) == "lintian: clean"


def test_the_pin_commit_becomes_build_properties() -> None:
    out = json.dumps({"project": "tinyapp", "release": "2025.1", "version": "1.1", "branch": "stackyard/pins", "remote": "origin",
                      "commit": "c0ffee", "base": "b", "files": ["recipes/tinyapp.yaml", "requirements/2025.1/locks/tinyapp.txt"],
                      "attempts": 2})
    assert pin_commit_properties(0, out, "") == {"pin_commit": "c0ffee", "pin_branch": "stackyard/pins",
                                                 "pin_files": "recipes/tinyapp.yaml requirements/2025.1/locks/tinyapp.txt"}
    assert pin_commit_properties(0, out.replace('"c0ffee"', "null"), "")["pin_commit"] == ""  # the branch already had it
    assert pin_commit_properties(4, "", "stackyard: error: cannot push") == {}
