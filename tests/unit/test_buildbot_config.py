"""[buildbot] in stackyard.toml: defaults and validation messages naming file and key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from builders.settings import load_config, parse_config
from stackyard.errors import ConfigError

FILE = Path("/srv/stackyard/stackyard.toml")
BASE: dict[str, Any] = {
    "architecture": "amd64",
    "codenames": {"bookworm": {"python": "3.11", "glibc": "2.36"}},
    "releases": {"2025.1": {"series": "epoxy", "codename": "bookworm", "upstream": "https://example.invalid/2025.1"}},
}


def with_buildbot(table: dict[str, Any]) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    d["buildbot"] = table
    return d


def error(table: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(with_buildbot(table), FILE)
    return str(info.value)


def test_defaults_are_the_embedded_single_machine_setup() -> None:
    bb = parse_config(copy.deepcopy(BASE), FILE).buildbot
    assert (bb.web_host, bb.web_port, bb.url) == ("127.0.0.1", 8010, "http://127.0.0.1:8010/")
    assert (bb.worker_host, bb.worker_port) == ("127.0.0.1", 9989)
    assert bb.basedir == Path("/srv/stackyard/var/buildbot")
    assert bb.db_url == "sqlite:////srv/stackyard/var/buildbot/state.sqlite"
    assert bb.images is True and bb.requirements_update is True and bb.deliverables is None
    assert bb.poll_interval == 300 and bb.nightly == "03:00"
    assert (bb.releases_repo, bb.releases_branch) == ("https://opendev.org/openstack/releases", "master")
    assert (bb.wait_attempts, bb.wait_delay) == (15, 30)
    (local,) = bb.workers
    assert (local.name, local.builders, local.max_builds) == ("local", (), 2)
    assert local.password.file == Path("/srv/stackyard/var/buildbot/secrets/worker-local") and local.password.env is None
    assert list(bb.users) == ["admin"] and bb.users["admin"].file == Path("/srv/stackyard/var/buildbot/secrets/user-admin")


def test_workers_users_and_postgresql() -> None:
    bb = parse_config(with_buildbot({
        "db_url": "postgresql://buildbot@db.example.org/buildbot",
        "web_port": 8080, "images": False,
        "workers": [{"name": "big", "password_env": "BIG_WORKER_PASSWORD", "builders": ["nova-*", "wheels-*"], "max_builds": 4},
                    {"name": "small", "password_file": "/etc/stackyard/small.secret"}],
        "users": [{"name": "ops", "password_env": "STACKYARD_WEB_OPS"}],
    }), FILE).buildbot
    assert bb.db_url.startswith("postgresql://") and bb.web_port == 8080 and bb.images is False
    assert [w.name for w in bb.workers] == ["big", "small"]
    assert bb.workers[0].password.env == "BIG_WORKER_PASSWORD" and bb.workers[0].builders == ("nova-*", "wheels-*")
    assert bb.workers[1].password.file == Path("/etc/stackyard/small.secret")
    assert bb.users["ops"].describe() == "$STACKYARD_WEB_OPS"


@pytest.mark.parametrize(("table", "key", "words"), [
    ({"web_port": 70000}, "buildbot.web_port", "TCP port"),
    ({"web_port": "8010"}, "buildbot.web_port", "integer"),
    ({"db_url": "mongodb://x"}, "buildbot.db_url", "SQLAlchemy URL"),
    ({"nightly": "25:00"}, "buildbot.nightly", "does not match"),
    ({"images": "yes"}, "buildbot.images", "true or false"),
    ({"colour": "blue"}, "buildbot.colour", "unknown key"),
    ({"workers": []}, "buildbot.workers", "non-empty array"),
    ({"workers": [{"name": "a"}, {"name": "a"}]}, "buildbot.workers[1].name", "declared twice"),
    ({"workers": [{"name": "a", "password_env": "lower"}]}, "buildbot.workers[0].password_env", "environment variable"),
    ({"workers": [{"name": "a", "password_env": "A", "password_file": "f"}]}, "buildbot.workers[0].password_file", "not both"),
    ({"workers": [{"name": "a", "builders": ["no spaces"]}]}, "buildbot.workers[0].builders", "builder name or pattern"),
    ({"users": [{"name": "Bad Name"}]}, "buildbot.users[0].name", "does not match"),
    ({"users": [{"name": "ops"}, {"name": "ops"}]}, "buildbot.users[1].name", "declared twice"),
    ({"deliverables": "no/such/dir"}, "buildbot.deliverables", "not a directory"),
    ({"releases_repo": 3}, "buildbot.releases_repo", "git repository URL"),
    ({"releases_repo": "--upload-pack=evil"}, "buildbot.releases_repo", "git repository URL"),
    ({"releases_branch": "a b"}, "buildbot.releases_branch", "does not match"),
    ({"wait_attempts": 0}, "buildbot.wait_attempts", "integer >= 1"),
    ({"wait_delay": 301}, "buildbot.wait_delay", "at most 300"),
])
def test_bad_values_name_file_and_key(table: dict[str, Any], key: str, words: str) -> None:
    message = error(table)
    assert message.startswith(f"{FILE}: {key}: "), message
    assert words in message


def test_the_repository_stackyard_toml_has_a_valid_buildbot_table(repo: Path) -> None:
    bb = load_config(repo / "stackyard.toml").buildbot
    assert bb.web_host == "127.0.0.1" and bb.web_port == 8010


def test_the_core_keeps_the_buildbot_table_unread_and_imports_nothing_of_builders() -> None:
    import ast

    import stackyard.config as core

    config = core.parse_config(with_buildbot({"web_port": 0}), FILE)  # invalid for Buildbot, not the core's business
    assert not hasattr(config, "buildbot") and config.table("buildbot").data == {"web_port": 0}
    assert core.parse_config(copy.deepcopy(BASE), FILE).table("buildbot").data == {}
    with pytest.raises(ConfigError, match=r"stackyard\.toml: buildbot: must be a table, got int"):
        core.parse_config(with_buildbot(1), FILE)  # type: ignore[arg-type]
    package = Path(core.__file__).parent
    for module in package.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "builders" or n.startswith("builders.") for n in names), module


def test_pins_branch_is_off_by_default_and_names_a_branch_and_a_remote() -> None:
    bb = parse_config(copy.deepcopy(BASE), FILE).buildbot
    assert (bb.pins_branch, bb.pins_remote) == ("", "origin")
    bb = parse_config(with_buildbot({"pins_branch": "stackyard/pins", "pins_remote": "git@git.example.org:ops/stackyard.git"}),
                      FILE).buildbot
    assert (bb.pins_branch, bb.pins_remote) == ("stackyard/pins", "git@git.example.org:ops/stackyard.git")
    assert error({"pins_branch": "-f"}).startswith(f"{FILE}: buildbot.pins_branch: must be a branch name")
    assert error({"pins_branch": "a b"}).startswith(f"{FILE}: buildbot.pins_branch: must be a branch name")
    assert error({"pins_remote": "--upload-pack=x"}).startswith(f"{FILE}: buildbot.pins_remote: must be a git remote name or URL")
