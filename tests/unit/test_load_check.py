"""load_check's judgement: which load failures fail a wheel (an undefined symbol) and which only an installed
venv (--strict: any), on a file the loader refuses (no process, nothing compiled)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard import load_check


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "_mod.cpython-311-x86_64-linux-gnu.so").write_text("not an ELF file\n")
    return tmp_path


def test_the_modules_are_the_tagged_suffixes_not_every_shared_object() -> None:
    assert ".abi3.so" in load_check.SUFFIXES and ".so" not in load_check.SUFFIXES
    assert any(s.startswith(".cpython-") for s in load_check.SUFFIXES)


def test_a_module_that_fails_to_load_for_another_reason_than_a_symbol_fails_only_when_strict(
        tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    member = "pkg/_mod.cpython-311-x86_64-linux-gnu.so"
    assert load_check.check(str(tree), [member], strict=False) == []
    out = capsys.readouterr().out
    assert out.startswith(f"not judged here: {member}: ") and str(tree) not in out
    assert load_check.check(str(tree), [member], strict=True) == [member]
    assert capsys.readouterr().out.startswith(f"does not load: {member}: ")
