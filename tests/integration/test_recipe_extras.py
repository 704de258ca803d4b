"""A recipe extra the project does not declare fails 'check' and 'lock' (the fixture index's metadata)."""

from __future__ import annotations

from tests.conftest import Workspace


def _ask_for(workspace: Workspace, extras: str) -> str:
    recipe = workspace.root / "recipes" / "tinyapp.yaml"
    recipe.write_text(recipe.read_text().replace("console_scripts: [tinyapp]", f"extras: {extras}\nconsole_scripts: [tinyapp]"))
    return str(recipe)


def test_an_undeclared_extra_fails_lock_and_check(workspace: Workspace) -> None:
    recipe = _ask_for(workspace, "[speedups, memcache]")
    expected = f"{recipe}: extras: tinyapp 1.0 (release 2025.1) declares no extra 'memcache'; it declares: speedups"

    r = workspace.run("lock", "--release", "2025.1", "tinyapp", check=False)
    assert r.returncode == 2, r.stderr
    assert expected in r.stderr and "Traceback" not in r.stderr
    assert not (workspace.root / "requirements" / "2025.1" / "locks" / "tinyapp.txt").exists()

    r = workspace.run("check", check=False)
    assert r.returncode == 2, r.stderr
    assert expected in r.stderr and "Traceback" not in r.stderr


def test_declared_extras_pass_check_and_lock(workspace: Workspace) -> None:
    _ask_for(workspace, "[speedups]")
    r = workspace.run("check")
    assert "1 recipes OK; extras checked for 2 pinned versions" in r.stdout  # tinyapp 1.0 (2025.1) and 1.2 (2025.2)
    workspace.run("lock", "--release", "2025.1", "tinyapp")
    lock = (workspace.root / "requirements" / "2025.1" / "locks" / "tinyapp.txt").read_text()
    assert "tinyapp==1.0" in lock and "tinypure==1.0" in lock
