"""venv-fixup.py (run by debian/rules inside the build), run in-process on a tiny venv tree."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

import stackyard

SCRIPT = Path(stackyard.__file__).parent / "debs" / "venv_fixup.py"


def test_drop_tests_keeps_the_test_modules_an_entry_point_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv = tmp_path / "opt/venv"
    site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\ncommand = /usr/bin/python3 -m venv /build/venv\n")
    for rel in ("glance_store/__init__.py", "glance_store/tests/__init__.py", "glance_store/tests/fakes.py",
                "glance_store/tests/unit/test_x.py", "oslo_utils/__init__.py", "oslo_utils/tests/test_y.py"):
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text("")
    info = site / "glance_store-4.0.0.dist-info"
    info.mkdir()
    (info / "entry_points.txt").write_text("[glance_store.drivers]\nfile = glance_store._drivers.filesystem:Store\n"
                                           "no_conf = glance_store.tests.fakes:UnconfigurableStore\n")
    (info / "RECORD").write_text("glance_store/tests/fakes.py,,\noslo_utils/tests/test_y.py,,\n")
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), str(venv), "/opt/openstack/glance", "--drop-tests"])
    runpy.run_path(str(SCRIPT), run_name="__main__")

    assert (site / "glance_store/tests/fakes.py").exists() and (site / "glance_store/tests/unit/test_x.py").exists()
    assert not (site / "oslo_utils/tests").exists() and (site / "oslo_utils/__init__.py").exists()
    assert (info / "RECORD").read_text() == "glance_store/tests/fakes.py,,\n"
    assert "command = /usr/bin/python3 -m venv /opt/openstack/glance" in (venv / "pyvenv.cfg").read_text()
