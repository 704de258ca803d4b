"""Running pip isolated from the machine's own pip configuration."""

from __future__ import annotations

import os
from pathlib import Path


def pip_env(cache_dir: Path | None = None, extra: dict[str, str] | None = None) -> dict[str, str | None]:
    """What a pip call adds to the runner's clean environment (None: removed)."""
    env: dict[str, str | None] = {
        "PYTHONPATH": None,
        "VIRTUAL_ENV": None,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INPUT": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if cache_dir is not None:
        env["PIP_CACHE_DIR"] = str(cache_dir)
    env.update(extra or {})
    return env


def isolated_env(cache_dir: Path | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for every pip call: no config files, no PIP_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    for key, value in pip_env(cache_dir, extra).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env
