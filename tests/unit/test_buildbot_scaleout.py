"""Scale-out: roles in [[buildbot.workers]], the plan of build workers and one publisher, the transfers' checks."""

from __future__ import annotations

import copy
import json
import tarfile
from pathlib import Path
from typing import Any, Callable

import pytest

from builders.plan import REPREPRO, MasterPlan, Prop, make_plan
from builders.settings import buildbot_config, parse_config
from stackyard.config import Config
from stackyard.errors import ConfigError, IntegrityError
from stackyard.recipes import load_recipes
from stackyard.transfer import verify_sha256, write_sha256
from tests.unit.test_buildbot_config import BASE, FILE

SCALE_OUT = """
[buildbot]
wheelhouse_url = "http://repo.example.org:8081"
images = true
[[buildbot.workers]]
name = "repo"
roles = ["publish"]
[[buildbot.workers]]
name = "build1"
roles = ["build"]
[[buildbot.workers]]
name = "build2"
"""

RECIPE = """\
name: tinyapp
source:
  git: file:///srv/upstream/tinyapp
versions:
  "2025.1": "1.0"
smoke: ["tinyapp --version"]
"""


def settings(workers: list[dict[str, Any]], **table: Any) -> Any:
    d = copy.deepcopy(BASE)
    d["buildbot"] = {"workers": workers, **table}
    return parse_config(d, FILE).buildbot


def error(workers: list[dict[str, Any]], **table: Any) -> str:
    with pytest.raises(ConfigError) as info:
        settings(workers, **table)
    return str(info.value)


def test_no_roles_declared_is_one_machine_every_worker_does_everything() -> None:
    bb = settings([{"name": "local"}, {"name": "big", "builders": ["nova-*"]}])
    assert [w.roles for w in bb.workers] == [("build", "publish"), ("build", "publish")]
    assert not bb.scale_out and bb.wheelhouse_url == ""


def test_roles_once_declared_default_to_build_and_name_one_publisher() -> None:
    bb = settings([{"name": "repo", "roles": ["publish"]}, {"name": "b1"}, {"name": "b2", "roles": ["build", "publish"][:1]}],
                  wheelhouse_url="http://repo.example.org:8081/")
    assert bb.scale_out and bb.publisher.name == "repo"
    assert [(w.name, w.roles) for w in bb.workers] == [("repo", ("publish",)), ("b1", ("build",)), ("b2", ("build",))]
    assert bb.wheelhouse_url == "http://repo.example.org:8081"


@pytest.mark.parametrize(("workers", "table", "key", "words"), [
    ([{"name": "a", "roles": ["build"]}, {"name": "b"}], {"wheelhouse_url": "http://x:1"}, "buildbot.workers[*].roles",
     "exactly one worker must have the role 'publish'"),
    ([{"name": "a", "roles": ["publish"]}, {"name": "b", "roles": ["build", "publish"]}], {"wheelhouse_url": "http://x:1"},
     "buildbot.workers[*].roles", "found a, b"),
    ([{"name": "a", "roles": ["publish"]}], {"wheelhouse_url": "http://x:1"}, "buildbot.workers[*].roles", "no worker has the role 'build'"),
    ([{"name": "a", "roles": ["deploy"]}], {}, "buildbot.workers[0].roles", "non-empty list of 'build' and 'publish'"),
    ([{"name": "a", "roles": []}], {}, "buildbot.workers[0].roles", "non-empty list"),
    ([{"name": "a", "roles": "build"}], {}, "buildbot.workers[0].roles", "non-empty list"),
    ([{"name": "a", "roles": ["publish"]}, {"name": "b"}], {}, "buildbot.wheelhouse_url", "give its URL"),
    ([{"name": "a"}], {"wheelhouse_url": "ftp://x"}, "buildbot.wheelhouse_url", "http(s) URL"),
])
def test_bad_roles_name_file_and_key(workers: list[dict[str, Any]], table: dict[str, Any], key: str, words: str) -> None:
    message = error(workers, **table)
    assert message.startswith(f"{FILE}: {key}: "), message
    assert words in message


@pytest.fixture
def plan_of(make_config: Callable[..., Config], make_recipe: Callable[..., Path]) -> Callable[..., MasterPlan]:
    def make(extra: str) -> MasterPlan:
        make_recipe("tinyapp", RECIPE)
        config = buildbot_config(make_config(extra=extra))
        return make_plan(config, load_recipes(config.paths.recipes))

    return make


def test_scale_out_builds_on_build_workers_and_publishes_on_the_publisher_only(plan_of: Callable[..., MasterPlan]) -> None:
    plan = plan_of(SCALE_OUT)
    workers = {b.name: b.workers for b in plan.builders}
    assert workers == {"tinyapp-2025.1": ("build1", "build2"), "wheels-2025.1": ("repo",), "promote-2025.1": ("repo",),
                       "publish-2025.1": ("repo",)}
    project = plan.builder("tinyapp-2025.1")
    names = [s.name for s in project.steps]
    assert names == ["pin", "lock", "wheelhouse", "wheels", "published history", "inputs unchanged?", "deb build", "lintian",
                     "smoke test", "bundle", "upload", "upload sha256", "check on the master", "publish"]
    step = {s.name: s for s in project.steps}
    assert step["wheelhouse"].command == ("stackyard", "fetch-wheelhouse", "--release", "2025.1", "tinyapp", "--url",
                                          "http://repo.example.org:8081", "--json")
    assert step["wheels"].only_if == "wheels_missing" and step["wheels"].locks == ()  # its own var/: no master lock
    # nothing of the publisher's runs on a build worker: no reprepro, no registry, no lock of them
    assert not any(lock in s.locks for s in project.steps for lock in (REPREPRO, "registry"))
    assert step["publish"].trigger == "publish" and step["publish"].command == ()
    upload = step["upload"]
    assert upload.transfer == "upload" and upload.command[0] == "outbox/%(prop:bundle)s"
    assert upload.command[1].endswith("/var/buildbot/artifacts/2025.1/%(prop:bundle)s") and upload.command[1].startswith("/")
    assert step["upload sha256"].command[1] == upload.command[1] + ".sha256"
    assert step["check on the master"].transfer == "master"
    assert step["check on the master"].command == ("stackyard", "verify-artifact", upload.command[1])
    publish = plan.builder("publish-2025.1")
    assert [s.name for s in publish.steps] == ["download", "download sha256", "receive", "publish", "share history", "image"]
    p = {s.name: s for s in publish.steps}
    assert p["download"].command == (upload.command[1], "inbox/%(prop:bundle)s")
    assert p["receive"].command == ("stackyard", "receive", "--release", "2025.1", "inbox/%(prop:bundle)s")
    assert p["publish"].command == ("stackyard", "publish", "--release", "2025.1", Prop("publish_project")) and p["publish"].locks == (REPREPRO,)
    assert {s.name for s in plan.schedulers} >= {"trigger-publish-2025.1", "force-publish-2025_1"}
    # the deb's version continues from what the publisher published: its history before the version is decided,
    # and after each publish the publisher shares it (under the repository's lock: what reprepro has is read)
    assert step["published history"].command == ("stackyard", "fetch-history", "--release", "2025.1", "tinyapp", "--url",
                                                 "http://repo.example.org:8081", "--json")
    assert p["share history"].command == ("stackyard", "share-history", "--release", "2025.1", Prop("publish_project"))
    assert p["share history"].locks == (REPREPRO,)
    # the wheels a worker built because the central wheelhouse lacked them travel in the bundle; the publisher
    # merges them into the release's wheelhouse while it receives, under the wheelhouse's lock
    assert step["bundle"].command == ("stackyard", "bundle", "--release", "2025.1", "tinyapp", "--out", "outbox",
                                      Prop("wheels_missing", flag="--wheels"), "--json")
    assert p["receive"].locks == ("wheelhouse-2025.1",)


def test_scale_out_with_a_pins_branch_checks_out_the_branch_then_the_builds_own_pin_commit(
        plan_of: Callable[..., MasterPlan]) -> None:
    plan = plan_of(SCALE_OUT.replace("[buildbot]\n", '[buildbot]\npins_branch = "stackyard/pins"\n'))
    steps = plan.builder("tinyapp-2025.1").steps
    assert [s.name for s in steps][:6] == ["checkout", "pin", "lock", "pin commit", "checkout pin commit", "wheelhouse"]
    step = {s.name: s for s in steps}
    assert step["checkout"].command == ("stackyard", "checkout", "--json") and step["checkout"].only_if is None
    assert step["checkout pin commit"].command == ("stackyard", "checkout", "--revision", Prop("pin_commit"), "--json")
    assert step["checkout pin commit"].only_if == "pin_commit"
    # the pin commit names the checkout its files were made on: what another build changed since is not overwritten
    assert step["pin commit"].command == ("stackyard", "pin-commit", "--release", "2025.1", "tinyapp",
                                          Prop("checkout", flag="--since"), "--json")
    publish = plan.builder("publish-2025.1").steps
    assert publish[0].name == "checkout"  # before anything reads the recipe (receive, publish, image)
    assert publish[0].command == ("stackyard", "checkout", Prop("pin_commit", flag="--contains"), "--json")
    # the checkout is the worker's one clone: one build at a time on each worker checks it out and edits it; the
    # publish builds only move the publisher's clone forward (--contains) and share it, never under the wheels build
    assert plan.builder("tinyapp-2025.1").worker_locks == (("checkout", "exclusive"),)
    assert plan.builder("wheels-2025.1").worker_locks == (("checkout", "exclusive"),)
    assert plan.builder("publish-2025.1").worker_locks == (("checkout", "counting"),)
    # an upper-constraints move: the publisher re-locks on the branch's tip and commits the inputs and locks there
    # before the build workers rebuild (they check the tip out)
    wheels = {s.name: s for s in plan.builder("wheels-2025.1").steps}
    assert list(wheels)[:5] == ["checkout", "requirements", "lock", "requirements commit", "wheels"]
    assert wheels["requirements commit"].command == ("stackyard", "requirements", "commit", "--release", "2025.1",
                                                     Prop("checkout", flag="--since"), "--json")
    assert wheels["requirements commit"].json_property == "pin_commit"
    # it holds the publisher's clone, which the rebuilds' publish builds need: it hands the rebuilds and the promotion
    # to a build of their own on the publisher and ends (waiting for them would never end)
    assert list(wheels)[-1] == "rebuild and promote" and wheels["rebuild and promote"].trigger == "rebuild"
    rebuild = plan.builder("rebuild-2025.1")
    assert rebuild.workers == ("repo",) and rebuild.worker_locks == ()
    assert [(s.name, s.trigger) for s in rebuild.steps] == [("rebuild changed projects", "changed-projects"), ("promote", "promote")]
    assert "trigger-rebuild-2025.1" in {s.name for s in plan.schedulers}
    # without a pins branch there is nothing to check out or commit
    without = plan_of(SCALE_OUT)
    assert "checkout" not in [s.name for s in without.builder("tinyapp-2025.1").steps]
    assert {s.name for s in without.builder("wheels-2025.1").steps}.isdisjoint({"checkout", "requirements commit"})
    assert "rebuild-2025.1" not in [b.name for b in without.builders]
    assert all(b.worker_locks == () for b in without.builders)


def test_the_checkout_worker_lock_is_one_buildbot_worker_lock_on_every_project_builder(
        make_config: Callable[..., Config], make_recipe: Callable[..., Path]) -> None:
    from buildbot.locks import WorkerLock

    from builders.master import master_config

    make_recipe("tinyapp", RECIPE)
    make_recipe("tinytool", RECIPE.replace("tinyapp", "tinytool"))
    config = buildbot_config(make_config(extra=SCALE_OUT.replace("[buildbot]\n", '[buildbot]\npins_branch = "stackyard/pins"\n')))
    builders = {b.name: b for b in master_config(config)["builders"]}
    held = {name: [a.lockid for a in builders[name].locks if isinstance(a.lockid, WorkerLock)]
            for name in ("tinyapp-2025.1", "tinytool-2025.1", "publish-2025.1", "wheels-2025.1")}
    assert [lock.name for lock in held["tinyapp-2025.1"]] == ["checkout"]
    # one lock: builds of different projects exclude each other, and the publisher's builds share it
    assert all(held[name] == held["tinyapp-2025.1"] for name in held)
    assert all(a.mode == "exclusive" for a in builders["tinyapp-2025.1"].locks + builders["wheels-2025.1"].locks)
    assert [a.mode for a in builders["publish-2025.1"].locks if isinstance(a.lockid, WorkerLock)] == ["counting"]
    assert held["publish-2025.1"][0].maxCount > 1
    # the wheels build does not wait for the rebuilds (their publish builds need the lock it holds)
    trigger = builders["wheels-2025.1"].factory.steps[-1]
    assert trigger.kwargs["waitForFinish"] is False and trigger.kwargs["schedulerNames"] == ["trigger-rebuild-2025.1"]


def test_one_machine_keeps_todays_steps(plan_of: Callable[..., MasterPlan]) -> None:
    plan = plan_of("")
    assert "publish-2025.1" not in [b.name for b in plan.builders]
    steps = [s.name for s in plan.builder("tinyapp-2025.1").steps]
    assert "publish" in steps and "image" in steps and "bundle" not in steps and "wheelhouse" not in steps


def test_a_builder_no_worker_of_its_role_may_take_is_a_config_error(plan_of: Callable[..., MasterPlan]) -> None:
    with pytest.raises(ConfigError, match=r"no worker with the role 'publish' may take builder 'promote-2025.1'"):
        plan_of(SCALE_OUT.replace('roles = ["publish"]', 'roles = ["publish"]\nbuilders = ["wheels-*"]'))


def test_a_sha256_beside_the_file_is_checked(tmp_path: Path) -> None:
    f = tmp_path / "venv-x_1.0-1_amd64.bundle.tar"
    f.write_bytes(b"the bundle")
    digest = write_sha256(f)
    assert (tmp_path / (f.name + ".sha256")).read_text() == f"{digest}  {f.name}\n"
    assert verify_sha256(f) == digest
    f.write_bytes(b"the bundle, damaged")
    with pytest.raises(IntegrityError, match=rf"{f}: sha256 [0-9a-f]{{64}} differs from {digest} in {f.name}.sha256"):
        verify_sha256(f)
    (tmp_path / (f.name + ".sha256")).unlink()
    with pytest.raises(IntegrityError, match="arrived without its sha256"):
        verify_sha256(f)


def test_json_properties_of_fetch_wheelhouse_and_bundle() -> None:
    from builders.master import json_properties

    fetched = json.dumps({"url": "http://h/", "fetched": ["a.whl"], "kept": [], "missing": [], "wheels_missing": ""})
    assert json_properties(0, fetched, "") == {"url": "http://h/", "fetched": "a.whl", "kept": "", "missing": "",
                                               "wheels_missing": ""}
    assert json_properties(1, "", "boom") == {}
    assert tarfile  # the bundle's own tests are in tests/integration/test_buildbot_scaleout.py (a real deb)


def relayed_by_a_buildbot_worker(printed: str) -> str:
    """``printed`` as a Buildbot worker sends a step's stdout to the master (its own line splitter, in chunks)."""
    from buildbot_worker.util.lineboundaries import LineBoundaryFinder

    # buildbot_worker.base.BotBase's max_line_length and newline_re
    finder = LineBoundaryFinder(4096, r"(\r\n|\r(?=.)|\033\[u|\033\[[0-9]+;[0-9]+[Hf]|\033\[2J|\x08+)")
    out = [finder.append(printed[i:i + 1000], 0.0) for i in range(0, len(printed), 1000)] + [finder.flush()]
    return "".join(o[0] for o in out if o)


def test_fetch_wheelhouse_json_of_keystones_wheels_reaches_the_master_whole(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from builders.master import json_properties
    from stackyard.cli import _say

    # keystone's lock: about 150 wheels; one JSON line of them is longer than the 4096 characters a worker's line may be
    wheels = [f"package_number_{i}-1.{i}.0-py3-none-any.whl" for i in range(150)]
    data = {"url": "http://h/", "fetched": wheels, "kept": [], "missing": [], "wheels_missing": ""}
    one_line = json.dumps(data) + "\n"
    with pytest.raises(json.JSONDecodeError):  # the worker cuts it and drops a character at the cut
        json.loads(relayed_by_a_buildbot_worker(one_line))
    _say(argparse.Namespace(json=True), data, "")
    printed = capsys.readouterr().out
    assert max(len(line) for line in printed.splitlines()) < 100
    assert json_properties(0, relayed_by_a_buildbot_worker(printed), "")["fetched"] == " ".join(wheels)


def test_a_bundle_name_that_is_not_one_is_refused_before_it_becomes_a_path() -> None:
    from builders.master import json_properties

    ok = json_properties(0, json.dumps({"bundle": "venv-tinyapp_1.1-2025.1.1.bundle.tar", "sha256": "ab"}), "")
    assert ok["bundle"] == "venv-tinyapp_1.1-2025.1.1.bundle.tar"
    for bad in ("../../etc/passwd", "venv-x_1.0.bundle.tar/../../x", "x.tar"):
        with pytest.raises(ValueError, match="not a bundle's name"):
            json_properties(0, json.dumps({"bundle": bad}), "")


def test_a_property_inside_an_argument_is_rendered() -> None:
    from buildbot.process.properties import Properties

    from builders.master import Argv

    props = Properties(bundle="venv-x_1.0-1.bundle.tar", project="x")
    argv = Argv(("stackyard", "receive", "inbox/%(prop:bundle)s", Prop("project"), "%(prop:missing)s-"))
    assert argv.getRenderingFor(props) == ["stackyard", "receive", "inbox/venv-x_1.0-1.bundle.tar", "x", "-"]


def test_a_request_whose_worker_could_not_reach_the_wheelhouse_goes_to_another_worker() -> None:
    from types import SimpleNamespace

    from builders.master import UNREACHED, another_worker

    def wfb(name: str) -> SimpleNamespace:
        return SimpleNamespace(worker=SimpleNamespace(workername=name))

    b1, b2 = wfb("build1"), wfb("build2")
    request = SimpleNamespace(id=424242)
    assert another_worker(None, [b1, b2], request) in (b1, b2)
    UNREACHED[request.id] = {"build1"}
    try:
        assert [another_worker(None, [b1, b2], request) for _ in range(20)] == [b2] * 20
        assert another_worker(None, [b1], request) is None  # only the one that failed is free: wait for another
    finally:
        del UNREACHED[request.id]
