"""What every kind of .deb goes through: dpkg-buildpackage, its listing, lintian.

The venv debs (``venv_deb``) and the wheels deb (``wheels_deb``) render their
own ``debian/`` and share the rest: a reproducible binary build (the date
comes from the inputs through ``SOURCE_DATE_EPOCH``, never the clock), the
one .deb it made, and lintian, whose errors fail the build.
"""

from __future__ import annotations

from pathlib import Path

from stackyard.config import Config, Release
from stackyard.errors import ToolError
from stackyard.runner import RUNNER, Runner

BUILD_TIMEOUT = 3600.0
LINTIAN_TIMEOUT = 1800.0


def debs_dir(config: Config, release: Release) -> Path:
    """Where a release's built debs and their records are kept."""
    return config.paths.output / "debs" / release.id


def buildpackage(src: Path, package: str, version: str, log: Path, epoch: int, *, runner: Runner = RUNNER) -> Path:
    """``dpkg-buildpackage -b`` in ``src`` (its output streamed to ``log``); the ``.deb`` it made beside ``src``."""
    for stale in src.parent.glob(f"{package}_*"):
        if stale.is_file():
            stale.unlink()
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    runner.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, log=log, stream=True, timeout=BUILD_TIMEOUT,
               env={"SOURCE_DATE_EPOCH": str(epoch), "DEB_BUILD_OPTIONS": "nocheck"},
               what=f"building {package} {version}", hint=f"see {log}")
    built = sorted(src.parent.glob(f"{package}_{version}_*.deb"))
    if len(built) != 1:
        raise ToolError(f"dpkg-buildpackage made {len(built)} {package}_{version}_*.deb files, not one", hint=f"see {log}")
    return built[0]


def contents(deb: Path, *, runner: Runner = RUNNER) -> set[str]:
    """Every path in ``deb`` ("/opt/...")."""
    listing = runner.run(["dpkg-deb", "-c", str(deb)], what=f"listing {deb.name}").stdout
    return {line.split()[5].removeprefix(".") for line in listing.splitlines() if len(line.split()) >= 6}


# info tags that are warnings here: an override that silenced nothing is stale or mis-scoped
OVERRIDE_TAGS = ("unused-override", "mismatched-override")


def tag_counts(warnings: tuple[str, ...]) -> list[str]:
    """lintian's warnings counted by tag: ["W: tag-a (2x)", ...]."""
    tags: dict[str, int] = {}
    for warning in warnings:
        tag = warning.split()[2] if len(warning.split()) > 2 else warning
        tags[tag] = tags.get(tag, 0) + 1
    return [f"W: {tag} ({count}x)" for tag, count in sorted(tags.items())]


def lintian(deb: Path, log: Path, *, runner: Runner = RUNNER) -> tuple[str, ...]:
    """lintian's warnings for ``deb`` (with any unused or mismatched override); its errors fail (ToolError, naming each)."""
    r = runner.run(["lintian", "--tag-display-limit", "0", "--display-info", "--fail-on", "error", str(deb)], log=log,
                   check=False, timeout=LINTIAN_TIMEOUT, what=f"lintian {deb.name}")
    errors = [line for line in r.stdout.splitlines() if line.startswith("E: ")]
    if r.returncode != 0 or errors:
        raise ToolError(f"lintian found errors in {deb.name}:\n" + "\n".join(errors or [r.output.strip()[-2000:]]),
                        hint=f"see {log}")
    return tuple(line for line in r.stdout.splitlines()
                 if line.startswith("W: ") or (line.startswith("I: ") and line.split()[2:3] in ([t] for t in OVERRIDE_TAGS)))
