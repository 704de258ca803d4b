from __future__ import annotations

import re
import shutil
from typing import Iterator

import pytest

from tests.conftest import ROOT, Workspace, free_port

LAST = ("test_chart_control_plane.py", "test_control_plane.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The keystone tests first (test_keystone_deb.py wants its debs new, test_keystone_image.py its images
    built), then the charts' control plane on those images, then test_control_plane.py, which builds and
    publishes on top of what the others built in ``ws`` and promotes what its verify passed."""
    items.sort(key=lambda item: LAST.index(item.path.name) + 1 if item.path.name in LAST else 0)


@pytest.fixture(scope="session")
def ws(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[Workspace]:
    """The project's own config, recipes, requirements and image templates, with output in a temp dir;
    images go to the session's engine and to a registry of the workspace's own (stopped afterwards)."""
    root = tmp_path_factory.mktemp("e2e")
    config = (ROOT / "stackyard.toml").read_text()
    config = re.sub(r'(?m)^registry = ".*"', f'registry = "127.0.0.1:{free_port()}"', config)
    config = re.sub(r'(?m)^engine = ".*"', f'engine = "{docker_engine}"', config)
    (root / "stackyard.toml").write_text(config)
    for tree in ("recipes", "requirements", "images"):
        shutil.copytree(ROOT / tree, root / tree)
    ws = Workspace(root)
    try:
        yield ws
    finally:
        if (root / "var" / "services" / "registry").exists():
            ws.run("services", "down")


