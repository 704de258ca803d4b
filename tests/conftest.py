"""Shared helpers: a stackyard workspace around the tiny fixture projects."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Workspace:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "stackyard.toml"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        r = subprocess.run(
            [sys.executable, "-m", "stackyard", "--config", str(self.config), *args],
            capture_output=True, text=True, env=env, check=False,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"stackyard {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def uc(self, release: str = "2025.1") -> Path:
        return self.root / "requirements" / release / "upper-constraints.txt"

    def wheelhouse(self, release: str = "2025.1") -> Path:
        return next((self.root / "var" / "wheelhouse" / release).glob("bookworm-*"))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
