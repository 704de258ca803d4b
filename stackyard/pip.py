"""Running pip isolated from the machine's own pip configuration."""

from __future__ import annotations

import os
from pathlib import Path


def isolated_env(cache_dir: Path | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for every pip call: no config files, no PIP_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INPUT="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    if cache_dir is not None:
        env["PIP_CACHE_DIR"] = str(cache_dir)
    if extra:
        env.update(extra)
    return env
