"""Shared fixtures for the unit tests: no processes, no network, only tmp_path.

Helpers are fixtures (not importable names) so that this conftest never
collides with another directory's conftest module.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable

import pytest

from stackyard.config import Config, Release, load_config
from stackyard.target import Target

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo() -> Path:
    """The stackyard checkout (real stackyard.toml, recipes/, requirements/)."""
    return REPO


@pytest.fixture
def bookworm() -> Target:
    return Target("3.11", "2.36", "x86_64", "bookworm")


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """Writes a stackyard.toml under tmp_path (architecture fixed, so no host dependency)."""

    def make(index_url: str = "https://pypi.org/simple", extra: str = "") -> Config:
        file = tmp_path / "stackyard.toml"
        file.write_text(
            textwrap.dedent(
                f"""
                architecture = "amd64"
                [paths]
                output = "var"
                [index]
                url = "{index_url}"
                retries = 0
                timeout = 5
                [wheels]
                download_jobs = 2
                build_jobs = 1
                [codenames.bookworm]
                python = "3.11"
                glibc = "2.36"
                [releases."2025.1"]
                series = "epoxy"
                codename = "bookworm"
                upstream = "https://example.invalid/2025.1"
                """
            )
            + textwrap.dedent(extra)
        )
        return load_config(file)

    return make


@pytest.fixture
def make_recipe(tmp_path: Path) -> Callable[..., Path]:
    """Writes ``<dir>/<name>.yaml`` (default dir: tmp_path/recipes) and returns its path."""

    def make(name: str, body: str, directory: Path | None = None) -> Path:
        d = directory or tmp_path / "recipes"
        d.mkdir(parents=True, exist_ok=True)
        file = d / f"{name}.yaml"
        file.write_text(textwrap.dedent(body))
        return file

    return make


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config()


@pytest.fixture
def release(config: Config) -> Release:
    return config.release("2025.1")
