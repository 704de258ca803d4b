"""stackyard.config: stackyard.toml validation; errors name the file and the dotted key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from stackyard.config import WHEEL_MACHINE, load_config, parse_config
from stackyard.errors import ConfigError, InputError, exit_code

FILE = Path("/etc/stackyard/stackyard.toml")

BASE: dict[str, Any] = {
    "architecture": "amd64",
    "codenames": {
        "bookworm": {"python": "3.11", "glibc": "2.36"},
        "trixie": {"python": "3.13", "glibc": "2.41", "mirror": "http://mirror.example/debian"},
    },
    "releases": {
        "2025.1": {"series": "epoxy", "codename": "bookworm", "upstream": "https://example.invalid/2025.1"},
        "2025.2": {"series": "flamingo", "codename": "trixie", "upstream": "https://example.invalid/2025.2"},
    },
}


def data(**changes: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    d.update(changes)
    return d


def config_error(d: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(d, FILE)
    return str(info.value)


def test_real_stackyard_toml_loads(repo: Path) -> None:
    config = load_config(repo / "stackyard.toml")
    assert config.file == (repo / "stackyard.toml").resolve()
    assert set(config.releases) == {"2025.1", "2025.2", "2026.1"}
    epoxy = config.release("2025.1")
    assert (epoxy.series, epoxy.codename, epoxy.python, epoxy.glibc) == ("epoxy", "bookworm", "3.11", "2.36")
    assert epoxy.python_tag == "cp311"
    assert epoxy.interpreter == "/usr/bin/python3.11"
    assert config.codenames["trixie"].python == "3.13"
    assert config.index.url == "https://pypi.org/simple"
    assert config.index.retries == 4
    assert config.index.timeout == 60.0
    assert config.wheels.download_jobs == 16
    assert config.wheels.allowed_failures == ()
    assert config.paths.cache == repo.resolve() / "var" / "cache"
    assert config.paths.recipes == repo.resolve() / "recipes"
    assert config.architecture in WHEEL_MACHINE  # from the host: not in the file


def test_release_by_id_and_series() -> None:
    config = parse_config(data(), FILE)
    assert config.release("epoxy") is config.release("2025.1")
    assert config.release("flamingo").id == "2025.2"
    assert config.release("flamingo").python == "3.13"  # from its codename


def test_unknown_release_lists_the_known_ones() -> None:
    config = parse_config(data(), FILE)
    with pytest.raises(InputError) as info:
        config.release("2030.1")
    text = str(info.value)
    assert "2030.1" in text
    assert "2025.1 (epoxy)" in text and "2025.2 (flamingo)" in text
    assert str(FILE) in text


def test_defaults_and_paths_relative_to_the_file() -> None:
    config = parse_config(data(), FILE)
    assert config.paths.root == FILE.parent
    assert config.paths.output == FILE.parent / "var"
    assert config.paths.cache == FILE.parent / "var" / "cache"
    assert config.paths.requirements == FILE.parent / "requirements"
    assert config.index.url == "https://pypi.org/simple"
    assert config.deb.prefix == "/opt/openstack"
    assert config.codenames["bookworm"].mirror == "http://deb.debian.org/debian"
    assert config.wheel_machine == "x86_64"


def test_cache_follows_a_custom_output() -> None:
    config = parse_config(data(paths={"output": "out"}), FILE)
    assert config.paths.cache == FILE.parent / "out" / "cache"


def test_index_url_trailing_slash_is_removed() -> None:
    config = parse_config(data(index={"url": "file:///srv/simple/"}), FILE)
    assert config.index.url == "file:///srv/simple"
    assert config.index.tools_url == "file:///srv/simple"  # defaults to the index


def test_tools_url() -> None:
    config = parse_config(data(index={"url": "file:///srv/simple", "tools_url": "https://pypi.org/simple/"}), FILE)
    assert config.index.url == "file:///srv/simple"
    assert config.index.tools_url == "https://pypi.org/simple"


def test_directories_of_a_release() -> None:
    config = parse_config(data(), FILE)
    release = config.release("2025.1")
    assert config.requirements_dir(release) == FILE.parent / "requirements" / "2025.1"
    assert config.wheelhouse_dir(release) == FILE.parent / "var" / "wheelhouse" / "2025.1" / "bookworm-cp311-amd64"
    assert config.logs_dir("wheels", release) == FILE.parent / "var" / "logs" / "2025.1" / "wheels"


@pytest.mark.parametrize(
    "changes, dotted",
    [
        ({"bogus": 1}, "bogus"),
        ({"wheels": {"bogus": 1}}, "wheels.bogus"),
        ({"paths": {"outptu": "x"}}, "paths.outptu"),
        ({"index": {"retry": 3}}, "index.retry"),
        ({"deb": {"prefx": "/opt"}}, "deb.prefx"),
    ],
)
def test_unknown_key_names_file_and_dotted_key(changes: dict[str, Any], dotted: str) -> None:
    text = config_error(data(**changes))
    assert f"{FILE}: {dotted}: unknown key" in text


def test_unknown_key_in_a_release() -> None:
    d = data()
    d["releases"]["2025.1"]["bogus"] = True
    assert f"{FILE}: releases.2025.1.bogus: unknown key" in config_error(d)


def test_unknown_key_in_a_codename() -> None:
    d = data()
    d["codenames"]["bookworm"]["libc"] = "2.36"
    assert f"{FILE}: codenames.bookworm.libc: unknown key" in config_error(d)


@pytest.mark.parametrize("rid", ["2025.3", "25.1", "2025", "epoxy"])
def test_bad_release_id(rid: str) -> None:
    d = data()
    d["releases"][rid] = d["releases"].pop("2025.1")
    text = config_error(d)
    assert f"releases.{rid}" in text
    assert "2025.1" in text  # shows what an id looks like


def test_unknown_codename() -> None:
    d = data()
    d["releases"]["2025.1"]["codename"] = "sid"
    text = config_error(d)
    assert f"{FILE}: releases.2025.1.codename:" in text
    assert "'sid'" in text and "[codenames.sid]" in text


@pytest.mark.parametrize(
    "changes, dotted",
    [
        ({"index": {"url": "ftp://mirror/simple"}}, "index.url"),
        ({"index": {"tools_url": "mirror/simple"}}, "index.tools_url"),
        ({"index": {"retries": -1}}, "index.retries"),
        ({"index": {"retries": True}}, "index.retries"),
        ({"index": {"timeout": 0}}, "index.timeout"),
        ({"wheels": {"download_jobs": 0}}, "wheels.download_jobs"),
        ({"wheels": {"allowed_failures": "numpy"}}, "wheels.allowed_failures"),
        ({"wheels": {"allowed_failures": [1]}}, "wheels.allowed_failures"),
        ({"deb": {"prefix": ""}}, "deb.prefix"),
        ({"architecture": "i386"}, "architecture"),
        ({"wheels": "fast"}, "wheels"),
    ],
)
def test_wrong_values_name_the_key(changes: dict[str, Any], dotted: str) -> None:
    assert f"{FILE}: {dotted}:" in config_error(data(**changes))


def test_codename_values_are_checked() -> None:
    d = data()
    d["codenames"]["bookworm"]["python"] = "3"
    assert f"{FILE}: codenames.bookworm.python:" in config_error(d)
    d = data()
    d["codenames"]["bookworm"]["glibc"] = 2.36
    assert f"{FILE}: codenames.bookworm.glibc:" in config_error(d)
    d = data()
    del d["codenames"]["bookworm"]["python"]
    assert f"{FILE}: codenames.bookworm.python: is required" in config_error(d)


def test_release_requires_upstream_and_a_valid_series() -> None:
    d = data()
    del d["releases"]["2025.1"]["upstream"]
    assert f"{FILE}: releases.2025.1.upstream: is required" in config_error(d)
    d = data()
    d["releases"]["2025.1"]["series"] = "Epoxy"
    assert f"{FILE}: releases.2025.1.series:" in config_error(d)


def test_at_least_one_release() -> None:
    assert f"{FILE}: releases:" in config_error(data(releases={}))


def test_load_config_missing_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.toml")
    assert "absent.toml: not found" in str(info.value)
    bad = tmp_path / "stackyard.toml"
    bad.write_text("[paths\noutput = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert f"{bad}: invalid TOML" in str(info.value)


def test_error_exit_codes() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data(bogus=1), FILE)
    assert exit_code(info.value) == 2


def test_requirements_git_is_a_git_url_and_its_branch_defaults_to_stable_of_the_release() -> None:
    plain = parse_config(data(), FILE).release("2025.1")
    assert (plain.requirements_git, plain.requirements_branch) == ("", "stable/2025.1")  # not polled
    d = data()
    d["releases"]["2025.1"]["requirements_git"] = "https://opendev.org/openstack/requirements"
    d["releases"]["2025.2"] |= {"requirements_git": "file:///srv/requirements.git", "requirements_branch": "master"}
    config = parse_config(d, FILE)
    assert config.release("2025.1").requirements_git == "https://opendev.org/openstack/requirements"
    assert config.release("2025.1").requirements_branch == "stable/2025.1"
    assert (config.release("2025.2").requirements_git, config.release("2025.2").requirements_branch) == (
        "file:///srv/requirements.git", "master")


@pytest.mark.parametrize("key, value, says", [
    ("requirements_git", "opendev.org/openstack/requirements", "must be a git repository URL"),
    ("requirements_git", "--upload-pack=evil", "must be a git repository URL"),
    ("requirements_git", "https://example.org/a b", "must be a git repository URL"),
    ("requirements_git", 1, "must be a git repository URL"),
    ("requirements_branch", "-x", "'-x' does not match"),
    ("requirements_branch", "", "must be a non-empty string"),
])
def test_a_bad_requirements_git_or_branch_names_file_and_key(key: str, value: Any, says: str) -> None:
    d = data()
    d["releases"]["2025.1"] |= {"requirements_git": "https://opendev.org/openstack/requirements", key: value}
    text = config_error(d)
    assert text.startswith(f"{FILE}: releases.2025.1.{key}: {says}"), text
