"""Lintian overrides of the venv debs and the wheels deb: every one scoped to the path it excuses,
and a package ships only the candidates whose path it has (so none goes unused)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from debian.changelog import Changelog

from stackyard.config import load_config
from stackyard.debs.lintian_overrides import applicable, main, unscoped
from stackyard.debs.venv_deb import render_debian
from stackyard.recipes import load_recipes
from tests.conftest import ROOT

CONFIG = load_config(ROOT / "stackyard.toml")
RECIPES = load_recipes(ROOT / "recipes")
CANDIDATES = ROOT / "recipes" / "debian" / "lintian-overrides"
ROOTS = ("@PREFIX@/", "@VENV@/", "@SITE@/")


def overrides(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("line", [
    "venv-x: embedded-library *",  # the bare '*' the candidates had
    "venv-x: embedded-library",  # no context at all
    "venv-x: embedded-library [*]",
    "venv-x: embedded-library libyaml [*/yaml/_yaml.so]",
    "venv-x: embedded-library libyaml",
])
def test_an_unscoped_override_is_named(line: str) -> None:
    assert unscoped(line) is not None
    with pytest.raises(ValueError, match="not a scoped override"):
        applicable([line], Path("/nonexistent"))


def test_every_candidate_is_scoped_to_the_venv_or_its_prefix() -> None:
    lines = overrides(CANDIDATES.read_text())
    assert lines
    for line in lines:
        assert unscoped(line) is None, line
        path = re.search(r"\[([^\]]+)\]$", line).group(1)  # type: ignore[union-attr]
        assert path.startswith(ROOTS), line


def test_every_override_a_venv_deb_and_the_wheels_deb_ship_is_scoped(tmp_path: Path) -> None:
    recipe = RECIPES["keystone"]
    changelog = Changelog()
    changelog.new_block(package=recipe.package, version="27.0.2-2025.1.1", distributions="bookworm-2025.1",
                        urgency="medium", author=CONFIG.deb.maintainer, date="Thu, 01 Jan 2026 00:00:00 +0000",
                        changes=["", "  * test", ""])
    render_debian(CONFIG, CONFIG.release("2025.1"), recipe, tmp_path, changelog)
    debian = tmp_path / "debian"
    rendered = (debian / "lintian-overrides.in").read_text()
    assert "@" not in rendered
    site = "opt/openstack/keystone/lib/python3.11/site-packages"
    assert f"venv-keystone: package-installs-ieee-data [{site}/netaddr/eui/*]" in rendered
    for line in overrides(rendered):
        assert unscoped(line) is None and line.startswith("venv-keystone: "), line
        assert re.search(r"\[opt/openstack/(keystone/[^\]]*)?\]$", line), line
    assert (debian / "lintian-overrides.py").read_text() == (ROOT / "stackyard" / "debs" / "lintian_overrides.py").read_text()
    rules = (debian / "rules").read_text()
    assert "debian/lintian-overrides.py debian/lintian-overrides.in debian/$(PKG) debian/$(PKG).lintian-overrides" in rules
    # the wheels deb ships none, so none can be unscoped
    assert not list((ROOT / "stackyard" / "templates").rglob("*lintian-overrides*"))


def tree(root: Path, files: dict[str, tuple[bytes, int]]) -> Path:
    for name, (data, mode) in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    return root


SITE = "opt/openstack/x/lib/python3.11/site-packages"
CANDIDATE_LINES = f"""\
# the venv is in /opt
x: dir-or-file-in-opt [opt/openstack/]
x: dir-or-file-in-opt [opt/openstack/x/*]
# prebuilt .so files
x: unstripped-binary-or-object [{SITE}/*]
# upstream shebangs and modes
x: script-not-executable [{SITE}/*]
x: executable-not-elf-or-script [{SITE}/*]
x: python3-script-but-no-python3-dep * [{SITE}/*]
x: unusual-interpreter * [opt/openstack/x/bin/*]
# netaddr's registry
x: package-installs-ieee-data [{SITE}/netaddr/eui/*]
""".splitlines()


def test_only_candidates_whose_path_the_package_has_are_kept_with_their_comments(tmp_path: Path) -> None:
    root = tree(tmp_path / "pkg", {
        f"{SITE}/ext.cpython-311-x86_64-linux-gnu.so": (b"\x7fELF\x02\x01", 0o644),
        f"{SITE}/tool.py": (b"#!/usr/bin/env python\nprint()\n", 0o644),  # a script, not executable
        f"{SITE}/plain.py": (b"x = 1\n", 0o644),
        "opt/openstack/x/bin/x-manage": (b"#!/opt/openstack/x/bin/python\n", 0o755),
    })
    kept = applicable(CANDIDATE_LINES, root)
    assert kept == [
        "# the venv is in /opt", "x: dir-or-file-in-opt [opt/openstack/]", "x: dir-or-file-in-opt [opt/openstack/x/*]",
        "# prebuilt .so files", f"x: unstripped-binary-or-object [{SITE}/*]",
        "# upstream shebangs and modes", f"x: script-not-executable [{SITE}/*]",
        "x: unusual-interpreter * [opt/openstack/x/bin/*]",
    ]


def test_a_tag_whose_files_are_there_keeps_its_override(tmp_path: Path) -> None:
    root = tree(tmp_path / "pkg", {
        f"{SITE}/netaddr/eui/oui.txt": (b"OUI\n", 0o644),
        f"{SITE}/testtools/run.py": (b"import sys\n", 0o755),  # executable, no '#!', no ELF
        f"{SITE}/manage.py": (b"#!/usr/bin/env python3\n", 0o755),
    })
    out = tmp_path / "candidates"
    out.write_text("\n".join(CANDIDATE_LINES) + "\n")
    assert main([str(out), str(root), str(tmp_path / "venv-x.lintian-overrides")]) == 0
    kept = overrides((tmp_path / "venv-x.lintian-overrides").read_text())
    assert kept == [
        "x: dir-or-file-in-opt [opt/openstack/]", "x: dir-or-file-in-opt [opt/openstack/x/*]",
        f"x: executable-not-elf-or-script [{SITE}/*]", f"x: python3-script-but-no-python3-dep * [{SITE}/*]",
        f"x: package-installs-ieee-data [{SITE}/netaddr/eui/*]",
    ]
