from __future__ import annotations

import shutil

import pytest

from tests.conftest import ROOT, Workspace


@pytest.fixture(scope="session")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The project's own config, recipes and requirements, with output in a temp dir."""
    root = tmp_path_factory.mktemp("e2e")
    shutil.copy(ROOT / "stackyard.toml", root / "stackyard.toml")
    shutil.copytree(ROOT / "recipes", root / "recipes")
    shutil.copytree(ROOT / "requirements", root / "requirements")
    return Workspace(root)


