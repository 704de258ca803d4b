"""The wheel stage with real pip-tools, pip, a C compiler and dpkg-buildpackage,
on tiny fixture projects served by a local index on loopback."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.fixtures import projects
from tests.fixtures.index_server import IndexServer

pytestmark = pytest.mark.integration


def manifest(ws: Workspace) -> dict:
    return json.loads((ws.wheelhouse() / "manifest.json").read_text())


def lock_and_build(ws: Workspace) -> None:
    ws.run("lock", "--release", "2025.1", "tinyapp")
    ws.run("wheels", "--release", "2025.1", "tinyapp")


def test_lock_pins_the_closure_with_hashes_and_is_byte_identical(workspace: Workspace) -> None:
    workspace.run("lock", "--release", "2025.1", "tinyapp")
    lock = workspace.root / "requirements" / "2025.1" / "locks" / "tinyapp.txt"
    text = lock.read_text()
    for pin in ("tinyapp==1.0", "tinyext==1.0", "tinypure==1.0"):
        assert pin in text
    assert re.search(r"tinyext==1.0 \\\n\s+--hash=sha256:[0-9a-f]{64}", text)
    assert "/tmp" not in text and str(workspace.root) not in text
    workspace.run("lock", "--release", "2025.1", "--force", "tinyapp")
    assert lock.read_text() == text


def test_wheelhouse_builds_the_c_extension_and_installs_offline(workspace: Workspace, tmp_path: Path) -> None:
    lock_and_build(workspace)
    wh = workspace.wheelhouse()
    wheels = sorted(p.name for p in wh.glob("*.whl"))
    assert wheels == ["tinyapp-1.0-py3-none-any.whl", "tinyext-1.0-cp311-cp311-linux_x86_64.whl", "tinypure-1.0-py3-none-any.whl"]
    with zipfile.ZipFile(wh / "tinyext-1.0-cp311-cp311-linux_x86_64.whl") as zf:
        assert sorted(n.split(".")[0] for n in zf.namelist() if n.endswith(".so")) == ["tinyext/_speed", "tinyext/_twice"]
        # two extensions share common.c: they compile one after another, never into one object at once
        assert json.loads(zf.read("tinyext/build_ext.json")) == {"parallel": None}
    page = (wh / "simple" / "tinyext" / "index.html").read_text()
    digest = hashlib.sha256((wh / "tinyext-1.0-cp311-cp311-linux_x86_64.whl").read_bytes()).hexdigest()
    assert f'href="../../tinyext-1.0-cp311-cp311-linux_x86_64.whl#sha256={digest}"' in page
    origins = {w["name"]: w["origin"] for w in manifest(workspace)["wheels"]}
    assert origins == {"tinyapp": "built", "tinyext": "built", "tinypure": "fetched"}
    assert (wh / "SHA256SUMS").read_text().count("\n") == 3

    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    subprocess.run([str(venv / "bin/pip"), "install", "--isolated", "-q", "--index-url",
                    (wh / "simple").as_uri(), "tinyapp"], check=True, env=env)
    out = subprocess.run([str(venv / "bin/tinyapp")], capture_output=True, text=True, check=True).stdout
    assert "2+3 = 5" in out
    twice = subprocess.run([str(venv / "bin/python"), "-c", "import tinyext; print(tinyext.twice(21))"],
                           capture_output=True, text=True, check=True).stdout
    assert twice == "42\n"


def test_rerun_is_unchanged_and_a_corrupt_wheel_is_refetched(workspace: Workspace, shared_cache: Path) -> None:
    lock_and_build(workspace)
    again = workspace.run("wheels", "--release", "2025.1", "tinyapp")
    assert re.search(r"^unchanged\s+3$", again.stdout, re.M), again.stdout
    pure = next(shared_cache.glob("files/sha256/*/*/tinypure-1.0-py3-none-any.whl"))
    pure.write_bytes(b"not a wheel")
    third = workspace.run("wheels", "--release", "2025.1", "tinyapp")
    assert "did not match sha256" in third.stderr
    assert re.search(r"^fetched\s+1$", third.stdout, re.M), third.stdout
    assert zipfile.is_zipfile(workspace.wheelhouse() / "tinypure-1.0-py3-none-any.whl")


def test_upper_constraints_all_and_a_truncated_download_keeps_the_previous_wheelhouse(
    workspace: Workspace, index: IndexServer, shared_cache: Path, tmp_path: Path
) -> None:
    # a cache of its own: tinypure 1.1 must really be downloaded, whatever ran before
    workspace.config.write_text(workspace.config.read_text().replace(f'cache = "{shared_cache}"', f'cache = "{tmp_path / "cache"}"'))
    workspace.run("wheels", "--release", "2025.1", "--all")
    before = (workspace.wheelhouse().resolve(), (workspace.wheelhouse() / "manifest.json").read_text())
    assert {w["name"] for w in manifest(workspace)["wheels"]} == {"tinyext", "tinypure"}

    workspace.uc().write_text("tinyext===1.0\ntinypure===1.1\n")
    index.truncate.add("tinypure-1.1-py3-none-any.whl")
    index.requests.clear()
    try:
        r = workspace.run("wheels", "--release", "2025.1", "--all", check=False)
    finally:
        index.truncate.clear()
    assert r.returncode == 5, r.stderr
    assert "download failed after 3 attempts" in r.stderr, r.stderr
    assert sum(1 for p in index.requests if p.endswith("tinypure-1.1-py3-none-any.whl")) == 3
    assert "previous wheelhouse was left in place" in r.stderr
    assert (workspace.wheelhouse().resolve(), (workspace.wheelhouse() / "manifest.json").read_text()) == before

    ok = workspace.run("wheels", "--release", "2025.1", "--all")
    assert re.search(r"^fetched\s+1$", ok.stdout, re.M)
    assert {(w["name"], w["version"]) for w in manifest(workspace)["wheels"]} == {("tinyext", "1.0"), ("tinypure", "1.1")}


def test_a_pin_missing_from_the_index_fails_naming_it(workspace: Workspace) -> None:
    workspace.uc().write_text("tinyext===1.0\ntinypure===9.9\n")
    r = workspace.run("wheels", "--release", "2025.1", "--all", check=False)
    assert r.returncode == 5
    assert "tinypure==9.9: no such release" in r.stderr
    assert not (workspace.root / "var" / "wheelhouse" / "2025.1" / "bookworm-cp311-amd64").exists()


def test_a_lock_conflicting_with_upper_constraints_names_both(workspace: Workspace) -> None:
    recipe = workspace.root / "recipes" / "tinyapp.yaml"
    recipe.write_text(recipe.read_text().replace('"2025.1": "1.0"', '"2025.1": "1.1"'))
    r = workspace.run("lock", "--release", "2025.1", "tinyapp", check=False)
    assert r.returncode == 3, r.stderr
    assert "tinyapp 1.1 requires tinyext>=2.0" in r.stderr, r.stderr
    assert "tinyext===1.0" in r.stderr and "upper-constraints.txt:1" in r.stderr


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["wheels", "--release", "1999.1"], "unknown release '1999.1'"),
        (["lock", "--release", "2025.1", "nosuch"], "unknown project nosuch"),
        (["lock", "--release", "epoxy", "nosuch"], "unknown project nosuch"),
    ],
)
def test_unknown_release_or_project(workspace: Workspace, args: list[str], expect: str) -> None:
    r = workspace.run(*args, check=False)
    assert r.returncode == 2
    assert expect in r.stderr


def test_malformed_constraints_and_recipe_errors_name_file_and_place(workspace: Workspace) -> None:
    workspace.uc().write_text("tinyext===1.0\ntinypure is great\n")
    r = workspace.run("wheels", "--release", "2025.1", "--all", check=False)
    assert r.returncode == 2
    assert f"{workspace.uc()}:2: malformed constraint" in r.stderr

    recipe = workspace.root / "recipes" / "tinyapp.yaml"
    recipe.write_text(recipe.read_text().replace("console_scripts: [tinyapp]", "console_scripts: tinyapp"))
    r = workspace.run("check", check=False)
    assert r.returncode == 2
    assert f"{recipe}: console_scripts: must be a list" in r.stderr


def test_requirements_update_from_a_checkout_records_the_source(workspace: Workspace, tmp_path: Path) -> None:
    checkout = tmp_path / "requirements-checkout"
    checkout.mkdir()
    (checkout / "upper-constraints.txt").write_text("tinyext===1.0\ntinypure===1.1\n")
    (checkout / "global-requirements.txt").write_text("tinyext\n")
    (checkout / "bindep.txt").write_text("gcc [platform:dpkg]\n")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run("git init -q . && git add . && git commit -qm upstream", shell=True, cwd=checkout, check=True,
                   env=os.environ | env)
    head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    workspace.run("requirements", "update", "--release", "2025.1", "--from", str(checkout))
    assert workspace.uc().read_text() == "tinyext===1.0\ntinypure===1.1\n"
    source = (workspace.uc().parent / "SOURCE").read_text()
    assert f"commit: {head}" in source and f"from: {checkout}" in source

    (checkout / "upper-constraints.txt").write_text("tinyext===1.0\n!!broken\n")
    r = workspace.run("requirements", "update", "--release", "2025.1", "--from", str(checkout), check=False)
    assert r.returncode == 2 and "upper-constraints.txt:2" in r.stderr
    assert workspace.uc().read_text() == "tinyext===1.0\ntinypure===1.1\n"


def test_wheels_deb_installs_the_wheelhouse_with_its_index(workspace: Workspace) -> None:
    lock_and_build(workspace)
    first = workspace.run("wheels-deb", "--release", "2025.1")
    deb = Path(re.search(r"(\S+\.deb)", first.stdout).group(1))  # type: ignore[union-attr]
    assert deb.name == "openstack-wheels-2025.1_20260813.1_amd64.deb"
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    for path in ("usr/lib/openstack-wheels/2025.1/simple/tinyext/index.html",
                 "usr/lib/openstack-wheels/2025.1/tinyext-1.0-cp311-cp311-linux_x86_64.whl",
                 "usr/lib/openstack-wheels/2025.1/manifest.json"):
        assert f"./{path}" in listing
    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Architecture"], capture_output=True, text=True).stdout
    assert "Package: openstack-wheels-2025.1" in fields and "Architecture: amd64" in fields
    # nothing changed: same version
    again = workspace.run("wheels-deb", "--release", "2025.1")
    assert deb.name in again.stdout


def test_requirements_update_from_a_url(workspace: Workspace, index: IndexServer) -> None:
    served = index.root / "raw" / "stable-2025.1"
    served.mkdir(parents=True, exist_ok=True)
    (served / "upper-constraints.txt").write_text("tinyext===1.0\ntinypure===1.1\n")
    (served / "global-requirements.txt").write_text("tinyext\ntinypure\n")
    (served / "bindep.txt").write_text("gcc [platform:dpkg]\n")
    url = index.url.removesuffix("/simple") + "/raw/stable-2025.1"
    workspace.run("requirements", "update", "--release", "2025.1", "--from", url)
    assert workspace.uc().read_text().endswith("tinypure===1.1\n")
    assert f"from: {url}" in (workspace.uc().parent / "SOURCE").read_text()


def test_a_library_replaced_by_a_local_path_is_locked_and_built_from_it(workspace: Workspace, tmp_path: Path) -> None:
    patched = tmp_path / "tinypure-patched"
    (patched / "tinypure").mkdir(parents=True)
    (patched / "tinypure" / "__init__.py").write_text("VERSION = '1.0+patched'\n")
    (patched / "setup.py").write_text("from setuptools import setup\nsetup(name='tinypure', version='1.0.post1', packages=['tinypure'])\n")
    (patched / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n')
    recipe = workspace.root / "recipes" / "tinyapp.yaml"
    recipe.write_text(recipe.read_text() + f"constraints:\n  replace:\n    tinypure: {patched}\n")
    lock_and_build(workspace)
    lock = (workspace.root / "requirements" / "2025.1" / "locks" / "tinyapp.txt").read_text()
    assert f"tinypure @ {patched.as_uri()}" in lock
    wheels = {w["name"]: w for w in manifest(workspace)["wheels"]}
    assert wheels["tinypure"]["version"] == "1.0.post1" and wheels["tinypure"]["origin"] == "built"


def test_a_built_module_with_an_undefined_symbol_fails_the_wheel_naming_it(workspace: Workspace, tmp_path: Path) -> None:
    """tinyext as a parallel build_ext can leave it (libvirt-python's CI failure): _speed linked without the
    object that defines tinyext_add. It links; only the loader finds the symbol missing. The wheel stage
    loads every module it built."""
    with tarfile.open(projects.tinyext(tmp_path)) as tf:
        tf.extractall(tmp_path)  # the fixture made it
    broken = tmp_path / "tinyext-1.0"
    setup = broken / "setup.py"
    setup.write_text(setup.read_text().replace('["tinyext/speed.c", "tinyext/common.c"]', '["tinyext/speed.c"]')
                     .replace('version="1.0"', 'version="1.0.post1"'))
    (broken / "PKG-INFO").unlink()
    recipe = workspace.root / "recipes" / "tinyapp.yaml"
    recipe.write_text(recipe.read_text() + f"constraints:\n  replace:\n    tinyext: {broken}\n")
    workspace.run("lock", "--release", "2025.1", "tinyapp")
    r = workspace.run("wheels", "--release", "2025.1", "tinyapp", check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "tinyext-1.0.post1-cp311-cp311-linux_x86_64.whl" in r.stdout + r.stderr
    assert "tinyext/_speed.cpython-311-x86_64-linux-gnu.so: undefined symbol: tinyext_add" in r.stderr
    assert not list((workspace.root / "var" / "wheelhouse").glob("2025.1/*/manifest.json"))  # no wheelhouse made
