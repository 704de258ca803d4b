"""Waiting for a new upstream version to reach the package index (``stackyard wait-for``).

OpenStack tags a release (and openstack/releases lists it) before its release
job uploads the sdist and wheel: a build started by the tag waits for the
version on the index, with bounded attempts and exponential backoff, each
attempt reported. A version that never appears fails, naming the version and
the index. Once it is there, the resolver's cached index pages of the project
are dropped, so the ``lock`` step that follows sees what this step saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from stackyard.errors import FetchError, InputError, ResolutionError
from stackyard.http import Http
from stackyard.runner import RUNNER, Runner
from stackyard.wheels.package_index import IndexFile, PackageIndex

if TYPE_CHECKING:
    from stackyard.config import Config, Release


@dataclass(frozen=True)
class Found:
    distribution: str
    version: str
    files: tuple[IndexFile, ...]
    attempts: int
    seconds: float


def delays(attempts: int, delay: float) -> list[float]:
    """The waits between ``attempts`` attempts: ``delay``, doubling, at most 10x ``delay``."""
    return [min(delay * 2**i, delay * 10) for i in range(max(attempts - 1, 0))]


def wait_for_version(index_url: str, distribution: str, version: str, http: Http, attempts: int, delay: float,
                     say: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep,
                     clock: Callable[[], float] = time.monotonic) -> Found:
    """Polls the index until ``distribution`` ``version`` has a (non-yanked) file; raises FetchError after ``attempts``."""
    try:
        wanted = Version(version)
    except InvalidVersion:
        raise InputError(f"{version!r} is not a version (PEP 440)", hint="give a release such as 27.0.3") from None
    if attempts < 1:
        raise InputError(f"--attempts must be at least 1, got {attempts}")
    name = canonicalize_name(distribution)
    index_url = index_url.rstrip("/")
    waits = delays(attempts, delay)
    start = clock()
    why = ""
    for attempt in range(1, attempts + 1):
        index = PackageIndex(index_url, http)  # a new one each time: no cached page
        try:
            files = tuple(f for f in index.files(distribution) if f.version() == wanted and not f.yanked)
            why = f"{len(index.files(distribution))} files listed, none of {version}" if not files else ""
        except ResolutionError:  # 404: the project's first release is not uploaded yet
            files, why = (), f"no page for {name}"
        except FetchError as exc:  # the index is down: one more reason to wait
            files, why = (), exc.message
        if files:
            seconds = clock() - start
            say(f"attempt {attempt}/{attempts}: {distribution} {version} is on {index_url}: "
                f"{' '.join(f.filename for f in files)} ({seconds:.0f}s)")
            return Found(distribution, version, files, attempt, seconds)
        if attempt == attempts:
            say(f"attempt {attempt}/{attempts}: {distribution} {version} is not on {index_url} ({why}); giving up")
            break
        wait = waits[attempt - 1]
        say(f"attempt {attempt}/{attempts}: {distribution} {version} is not on {index_url} yet ({why}); "
            f"next attempt in {wait:.0f}s")
        sleep(wait)
    raise FetchError(
        f"{distribution} {version}: not on {index_url} after {attempts} attempts in {clock() - start:.0f}s ({why})",
        hint="is this version released? openstack/releases lists it before its release job uploads it; "
             "build it again once it is on the index (or give more --attempts / a longer --delay)",
    )


def forget_cached_pages(config: "Config", release: "Release", distribution: str, runner: Runner = RUNNER) -> str | None:
    """Drops uv's cache entries of ``distribution`` (its index page among them); a line saying so, or None.

    uv keeps index pages as long as the index allows (PyPI: 10 minutes), so a
    lock right after the upload would not see the new version; pip asks for
    fresh pages (max-age=0) and needs nothing. The cache is the one
    ``stackyard lock`` gives uv (``stackyard.wheels.lock.uv_command``'s --cache-dir).
    """
    from stackyard.wheels.lock import find_uv, uv_env

    cache = config.paths.cache / "uv"
    if config.lock.resolver != "uv" or not cache.is_dir():
        return None
    uv = find_uv()
    if uv is None:
        return None
    log = config.logs_dir("wait-for", release) / f"{canonicalize_name(distribution)}.log"
    result = runner.run([uv, "cache", "clean", "--cache-dir", str(cache), distribution], env=uv_env(config), inherit_env=False, log=log,
                        timeout=300, check=False, what="uv cache clean")
    if result.returncode != 0:  # the lock may then wait for uv's cache to expire: say so, do not fail
        return f"could not drop uv's cached pages of {distribution} (uv exited {result.returncode}; see {log})"
    return f"dropped uv's cached index pages of {distribution} ({cache}): the lock sees the new version"
