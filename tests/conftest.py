"""Shared helpers: a stackyard workspace around the tiny fixture projects."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
STOPPING = (signal.SIGINT, signal.SIGTERM)


def stopping_handlers() -> dict[int, object]:
    return {number: signal.getsignal(number) for number in STOPPING}


def restore_handlers(handlers: dict[int, object]) -> None:
    for number, handler in handlers.items():
        signal.signal(number, handler)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _stays_interruptible() -> Iterator[None]:
    """Every test leaves SIGINT and SIGTERM as it found them: Ctrl-C, or a CI job's timeout, must still stop
    the session and run its teardown (engines stopped, mounts undone). Twisted's reactor, run by trial's
    test cases, installs handlers of its own that do nothing once it has stopped."""
    before = stopping_handlers()
    yield
    after = stopping_handlers()
    if after != before:
        restore_handlers(before)
        pytest.fail(f"the test left handlers for SIGINT and SIGTERM: {list(after.values())} (was {list(before.values())})")


@dataclass
class Workspace:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "stackyard.toml"

    def run(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | (env or {})
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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[str]:
    """One real dockerd for the session (images and containers of every test), stopped afterwards."""
    import shutil
    import tempfile

    from stackyard.images.services import start_dockerd, stop_dockerd

    state = Path(tempfile.mkdtemp(prefix="sy-docker-", dir="/tmp"))  # short: containerd's socket paths are limited
    sock = state / "docker.sock"
    start_dockerd(sock, state)
    try:
        yield f"unix://{sock}"
    finally:
        stop_dockerd(state)
        shutil.rmtree(state, ignore_errors=True)


def images_toml(engine: str) -> str:
    """An [images] table for a test workspace: the session's engine, a registry of its own on a free port."""
    return (f'[images]\nregistry = "127.0.0.1:{free_port()}"\nnamespace = "stackyard"\nengine = "{engine}"\n'
            'retries = 1\n')
