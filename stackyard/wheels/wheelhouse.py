"""The wheel repository of a release: one wheelhouse per codename, python and arch.

Every pinned requirement (from project locks and, with ``--all``, from every
upper-constraints entry) becomes exactly one wheel: the best binary wheel the
index has for the target, or one built from the sdist. Downloads run in
parallel, builds run in parallel (longest first), everything goes through the
content-addressed cache and is hash-checked. The new wheelhouse, its PEP 503
index and its manifest are assembled beside the old one and swapped in with
one atomic rename, and only when nothing failed: a failed run leaves the
previous wheelhouse as it was.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import queue
import shutil
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from packaging.utils import canonicalize_name, parse_wheel_filename

from stackyard import __version__, stage
from stackyard.config import Config, Release
from stackyard.errors import IntegrityError, ResolutionError, StackyardError
from stackyard.events import ItemFinished, Note, Outcome, Reporter, StepFinished, StepStarted, Unchanged
from stackyard.http import Http
from stackyard.recipes import Recipe
from stackyard.runner import RUNNER, Runner
from stackyard.target import Target, target_for
from stackyard.wheels.cache import Cache, Resolved, sha256_file
from stackyard.wheels.constraints import load_constraints, load_lock
from stackyard.wheels.lock import lock_path
from stackyard.wheels.package_index import IndexFile, PackageIndex
from stackyard.wheels.sdist_build import BuildEnv, build_requirements
from stackyard.wheels.simple_index import write_simple_index

STEP = "wheels"
UPPER_CONSTRAINTS = "upper-constraints"


@dataclass(frozen=True)
class Wanted:
    """One pinned requirement the wheelhouse must hold."""

    name: str
    version: str
    hashes: frozenset[str] = frozenset()  # allowed sha256 digests (from a lock); empty: trust the index
    sources: frozenset[str] = frozenset()  # "lock:<project>" or "upper-constraints"
    url: str | None = None  # direct reference built from source

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)

    @property
    def label(self) -> str:
        return f"{self.name}=={self.version}" if self.version else f"{self.name} @ {self.url}"


@dataclass(frozen=True)
class ItemResult:
    name: str
    version: str
    outcome: Outcome
    seconds: float
    sources: frozenset[str]
    filename: str | None = None
    sha256: str | None = None
    origin: str = ""  # "fetched" or "built" (how the wheel was first obtained)
    source_sha256: str | None = None  # the sdist a built wheel came from (the hash a lock names)
    url: str | None = None  # the direct reference it was built from
    log: Path | None = None
    error: str = ""


@stage.record("wheelhouse")
class WheelhouseRecord:
    """The record of a published wheelhouse (stackyard.stage), ``.<target>.json`` beside it."""
    release: str
    target: str
    wheels: int
    sha256sums: str  # sha256 of its SHA256SUMS: the content the wheels deb is made from
    inputs: str  # every wanted pin with its allowed hashes and sources, the target, the allowed failures


def wanted_digest(wanted: list[Wanted], target: Target, allowed: set[str]) -> str:
    """What a wheelhouse is made from: the same digest, the same wheels (the cache serves them)."""
    rows = sorted([w.key, w.version, sorted(w.hashes), sorted(w.sources), w.url or ""] for w in wanted)
    return hashlib.sha256(json.dumps([__version__, target.key, sorted(allowed), rows]).encode()).hexdigest()


def record_path(wheelhouse: Path) -> Path:
    """Beside the wheelhouse, hidden (as ``.generations``): ``<release>/bookworm-*`` names wheelhouses only."""
    return wheelhouse.with_name(f".{wheelhouse.name}.json")


def intact(wheelhouse: Path, record: WheelhouseRecord) -> bool:
    """The published generation is the recorded one and every wheel its SHA256SUMS names has those bytes
    (wheels are hard links to the cache's files: a damaged cache entry is a damaged wheelhouse)."""
    sums = wheelhouse / "SHA256SUMS"
    if not sums.is_file() or sha256_file(sums) != record.sha256sums:
        return False
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        if not (wheelhouse / name).is_file() or sha256_file(wheelhouse / name) != digest:
            return False
    return True


@dataclass(frozen=True)
class WheelhouseResult:
    path: Path
    items: list[ItemResult]
    published: bool
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> list[ItemResult]:
        return [i for i in self.items if i.outcome == Outcome.FAILED]


# --- what goes in ---------------------------------------------------------


def merge_wanted(items: list[Wanted]) -> list[Wanted]:
    merged: dict[tuple[str, str, str | None], Wanted] = {}
    for w in items:
        k = (w.key, w.version, w.url)
        if k in merged:
            old = merged[k]
            hashes = old.hashes & w.hashes if old.hashes and w.hashes else old.hashes | w.hashes
            if old.hashes and w.hashes and not hashes:
                raise IntegrityError(
                    f"{w.label}: the locks of {', '.join(sorted(old.sources | w.sources))} allow disjoint hashes",
                    hint="re-run 'stackyard lock --force' for those projects",
                )
            merged[k] = Wanted(old.name, w.version, hashes, old.sources | w.sources, w.url)
        else:
            merged[k] = w
    return sorted(merged.values(), key=lambda w: (w.key, w.version))


def wanted_from_lock(file: Path, project: str) -> list[Wanted]:
    out = []
    for e in load_lock(file):
        digests = frozenset(h.split(":", 1)[1] for h in e.hashes if h.startswith("sha256:"))
        out.append(Wanted(e.name, e.version, digests, frozenset({f"lock:{project}"}), e.url))
    return out


def collect_wanted(
    config: Config, release: Release, recipes: list[Recipe], *, upper_constraints: bool, previous: list[dict] | None = None
) -> list[Wanted]:
    """Locks of ``recipes`` (+ every upper-constraints pin), plus what the previous
    wheelhouse held for sources this run does not touch."""
    items: list[Wanted] = []
    sources: set[str] = set()
    for recipe in recipes:
        items += wanted_from_lock(lock_path(config, release, recipe.name), recipe.name)
        sources.add(f"lock:{recipe.name}")
    if upper_constraints:
        uc = load_constraints(config.requirements_dir(release) / "upper-constraints.txt", target_for(config, release))
        items += [Wanted(p.name, p.version, sources=frozenset({UPPER_CONSTRAINTS})) for p in uc.pins.values()]
        sources.add(UPPER_CONSTRAINTS)
    for entry in previous or []:
        kept = frozenset(entry["sources"]) - sources
        if kept and entry.get("url"):
            items.append(Wanted(entry["name"], "", sources=kept, url=entry["url"]))
        elif kept:
            digest = entry["sha256"] if entry.get("origin") == "fetched" else entry.get("source_sha256")
            items.append(Wanted(entry["name"], entry["version"], frozenset({digest} if digest else ()), kept))
    return merge_wanted(items)


# --- the run ----------------------------------------------------------------


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_manifest(wheelhouse: Path) -> dict | None:
    try:
        return json.loads((wheelhouse / "manifest.json").read_text())
    except (FileNotFoundError, ValueError):
        return None


class _Run:
    def __init__(self, config: Config, release: Release, reporter: Reporter, http: Http, allowed: set[str],
                 runner: Runner = RUNNER) -> None:
        self.config, self.release, self.reporter = config, release, reporter
        self.target: Target = target_for(config, release)
        self.cache = Cache(config.paths.cache)
        self.http = http
        self.index = PackageIndex(config.index.url, http)
        self.buildenv = BuildEnv(config.paths.cache, release.interpreter, self.target, config.index.url, config.index.tools_url,
                                 runner)
        self.logs = config.logs_dir(STEP, release)
        self.allowed = {canonicalize_name(a) for a in allowed}
        self.results: list[ItemResult] = []
        self.wheel_paths: dict[str, Path] = {}
        self._lock = threading.Lock()
        self.total = 0

    # reporting
    def finish(self, w: Wanted, outcome: Outcome, started: float, **kw: object) -> None:
        if outcome == Outcome.FAILED and w.key in self.allowed:
            outcome = Outcome.ALLOWED_FAILURE
        path = kw.pop("path", None)
        item = ItemResult(w.name, w.version, outcome, round(time.monotonic() - started, 2), w.sources, url=w.url, **kw)  # type: ignore[arg-type]
        with self._lock:
            self.results.append(item)
            if path is not None and item.filename:
                self.wheel_paths[item.filename] = path  # type: ignore[assignment]
            index = len(self.results)
            detail = item.error.splitlines()[0] if item.error else ""
            self.reporter(ItemFinished(STEP, w.name, w.version, outcome, item.seconds, index, self.total, item.log, detail))

    def fail(self, w: Wanted, started: float, exc: BaseException, log: Path | None = None) -> None:
        message = str(exc) if isinstance(exc, StackyardError) else f"{type(exc).__name__}: {exc}"
        if log is None:
            log = self.logs / f"{w.key}-{w.version or 'direct'}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(message + "\n")
        self.finish(w, Outcome.FAILED, started, log=log, error=message)

    # resolution
    def resolve(self, w: Wanted) -> Resolved:
        cached = self.cache.get_resolved(self.target.key, w.key, w.version)
        if cached and (not w.hashes or cached.sha256 in w.hashes):
            return cached
        files = [f for f in self.index.release_files(w.name, w.version)]
        if w.hashes:
            matching = [f for f in files if f.sha256 is None or f.sha256 in w.hashes]
            if not matching:
                raise IntegrityError(
                    f"{w.label}: no file on the index matches the lock's hashes ({', '.join(sorted(w.sources))})",
                    hint="the release was re-uploaded upstream; re-run 'stackyard lock --force'",
                )
            files = matching
        chosen = self._choose(files)
        if chosen is None:
            raise ResolutionError(f"{w.label}: the index has neither a wheel for {self.target.key} nor an sdist")
        resolved = Resolved(w.name, w.version, chosen.filename, chosen.url, chosen.sha256)
        self.cache.put_resolved(self.target.key, w.key, resolved)
        return resolved

    def _choose(self, files: list[IndexFile]) -> IndexFile | None:
        live = [f for f in files if not f.yanked] or files
        wheels = [(self.target.wheel_priority(f.filename), f.filename, f) for f in live if f.is_wheel]
        fitting = sorted((p, n, f) for p, n, f in wheels if p is not None)
        if fitting:
            return fitting[0][2]
        sdists = sorted((not f.filename.endswith(".tar.gz"), f.filename, f) for f in live if f.is_sdist)
        return sdists[0][2] if sdists else None

    # fetching
    def fetch(self, w: Wanted, r: Resolved) -> tuple[Path, str, bool]:
        """(path, sha256, from_cache) of the resolved file, verified."""
        if r.sha256:
            path, corrupt = self.cache.cached_file(r.sha256, r.filename)
            if corrupt:
                self.reporter(Note(STEP, f"{r.filename}: cached file did not match sha256 {r.sha256[:12]}…; refetching"))
            if path:
                return path, r.sha256, True
            dest = self.cache.file_path(r.sha256, r.filename)
            self.http.download(r.url, dest, r.sha256)
            return dest, r.sha256, False
        tmp = self.cache.root / "files" / "incoming" / r.filename
        digest = self.http.download(r.url, tmp, None)
        if w.hashes and digest not in w.hashes:
            tmp.unlink(missing_ok=True)
            raise IntegrityError(f"{r.filename}: sha256 {digest} is not one the lock allows")
        dest = self.cache.file_path(digest, r.filename)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        return dest, digest, False

    def get_wheel(self, w: Wanted, r: Resolved) -> None:
        started = time.monotonic()
        try:
            path, digest, cached = self.fetch(w, r)
        except Exception as exc:  # noqa: BLE001 - reported per item, the run goes on
            self.fail(w, started, exc)
            return
        outcome = Outcome.CACHED if cached else Outcome.FETCHED
        self.finish(w, outcome, started, filename=r.filename, sha256=digest, origin="fetched", path=path)

    def get_sdist(self, w: Wanted, r: Resolved) -> tuple[Wanted, Resolved, Path, str] | None:
        """Fetch the sdist; finishes the item at once if its build is cached."""
        started = time.monotonic()
        try:
            path, digest, _ = self.fetch(w, r)
            hit, corrupt = self.cache.cached_build(self.target.key, digest)
        except Exception as exc:  # noqa: BLE001
            self.fail(w, started, exc)
            return None
        if corrupt:
            self.reporter(Note(STEP, f"{w.label}: cached build did not match its recorded sha256; rebuilding"))
        if hit:
            wheel, built = hit
            self.finish(w, Outcome.CACHED, started, filename=built.filename, sha256=built.sha256, origin="built",
                        source_sha256=digest, path=wheel)
            return None
        return w, r, path, digest

    def build(self, w: Wanted, sdist: Path | None, digest: str | None) -> tuple[str, float] | None:
        started = time.monotonic()
        log = self.logs / f"{w.key}-{w.version or 'direct'}.log"
        try:
            if sdist is None:
                if not w.url:
                    raise ResolutionError(f"{w.label}: neither an sdist nor a URL to build a wheel from")
                wheel = self.buildenv.build(w.url, log, isolated=True)
                digest_w = sha256_file(wheel)
                dest = self.cache.file_path(digest_w, wheel.name)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(wheel), dest)
                shutil.rmtree(wheel.parent, ignore_errors=True)
                name, version, _, _ = parse_wheel_filename(dest.name)
                w = Wanted(w.name, str(version), w.hashes, w.sources, w.url)
                self.finish(w, Outcome.BUILT, started, filename=dest.name, sha256=digest_w, origin="built", log=log, path=dest)
                return None
            self.buildenv.ensure()
            isolated = not self.buildenv.satisfies(build_requirements(sdist))
            wheel = self.buildenv.build(str(sdist), log, isolated=isolated)
            if not digest:
                raise IntegrityError(f"{w.label}: the sdist {sdist.name} has no sha256 to key its build by")
            dest, built = self.cache.store_build(self.target.key, digest, wheel, time.monotonic() - started)
            shutil.rmtree(wheel.parent, ignore_errors=True)
        except Exception as exc:  # noqa: BLE001
            self.fail(w, started, exc, log if log.exists() else None)
            return None
        self.finish(w, Outcome.BUILT, started, filename=built.filename, sha256=built.sha256, origin="built",
                    source_sha256=digest, log=log, path=dest)
        return w.key, time.monotonic() - started

    def run(self, wanted: list[Wanted]) -> None:
        """Resolve, fetch and build everything, as a pipeline.

        Each pin goes on as soon as it resolves: wheels to the download pool,
        sdists to a small pool of their own (so they are not queued behind
        hundreds of wheels), then to the build queue, longest build first
        (known durations, else bigger sdists first). The build environment is
        prepared while the index is still being read.
        """
        self.total = len(wanted)
        history = self.cache.build_times()
        builds = _PriorityWorkers(self.config.wheels.build_jobs or os.cpu_count() or 2)
        prepare = threading.Event()

        def prepare_buildenv_once() -> None:  # as soon as anything needs building
            if not prepare.is_set():
                prepare.set()
                builds.submit(float("-inf"), self._prepare_buildenv)

        for w in wanted:
            if w.url:
                prepare_buildenv_once()
                builds.submit(-1000.0, self.build, w, None, None)

        def queue_build(fut: Future[tuple[Wanted, Resolved, Path, str] | None]) -> None:
            ready = fut.result()
            if ready is not None:
                w, _, path, digest = ready
                builds.submit(-history.get(w.key, 5 + path.stat().st_size / 200_000), self.build, w, path, digest)

        started = time.monotonic()
        with ThreadPoolExecutor(self.config.wheels.download_jobs, thread_name_prefix="fetch") as fetch_pool, \
                ThreadPoolExecutor(4, thread_name_prefix="sdist") as sdist_pool:
            resolving = {fetch_pool.submit(self.resolve, w): w for w in wanted if not w.url}
            for fut in as_completed(resolving):
                w = resolving[fut]
                try:
                    r = fut.result()
                except Exception as exc:  # noqa: BLE001 - reported per item, the run goes on
                    self.fail(w, started, exc)
                    continue
                if r.is_wheel:
                    fetch_pool.submit(self.get_wheel, w, r)
                else:
                    prepare_buildenv_once()
                    sdist_pool.submit(self.get_sdist, w, r).add_done_callback(queue_build)
        times = dict(r for r in builds.join() if r)
        if times:
            self.cache.record_build_times(times)

    def _prepare_buildenv(self) -> None:
        try:
            self.buildenv.ensure()
        except StackyardError:
            pass  # each build calls ensure() again and reports the error as its own


class _PriorityWorkers:
    """Threads taking the lowest-priority-number task first; join() returns results."""

    def __init__(self, workers: int) -> None:
        self._queue: queue.PriorityQueue[tuple[float, int, Callable[..., Any] | None, tuple[Any, ...]]] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._results: list[Any] = []
        self._threads = [threading.Thread(target=self._work, name=f"build-{i}", daemon=True) for i in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, priority: float, fn: Callable[..., Any], *args: Any) -> None:
        self._queue.put((priority, next(self._seq), fn, args))

    def _work(self) -> None:
        while True:
            _, _, fn, args = self._queue.get()
            if fn is None:
                return
            self._results.append(fn(*args))

    def join(self) -> list[Any]:
        for _ in self._threads:
            self._queue.put((float("inf"), next(self._seq), None, ()))
        for t in self._threads:
            t.join()
        return self._results


def write_install_requirements(wheelhouse: Path, items: list[ItemResult]) -> None:
    """Per locked project, ``install/<project>.txt``: the lock's pins with the
    sha256 of the wheels in this wheelhouse (a built wheel's hash differs from
    the sdist hash the lock names; the chain was verified while building), for
    ``pip install --no-index --require-hashes --find-links <wheelhouse> -r ...``."""
    projects: dict[str, list[ItemResult]] = {}
    for item in items:
        for source in item.sources:
            if source.startswith("lock:"):
                projects.setdefault(source.removeprefix("lock:"), []).append(item)
    (wheelhouse / "install").mkdir()
    for project, entries in projects.items():
        lines = [f"# {project}: install from this wheelhouse with --no-index --require-hashes\n"]
        for i in sorted(entries, key=lambda i: canonicalize_name(i.name)):
            lines.append(f"{canonicalize_name(i.name)}=={i.version} --hash=sha256:{i.sha256}\n")
        (wheelhouse / "install" / f"{project}.txt").write_text("".join(lines))


def link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def write_sums_and_index(generation: Path, shas: dict[str, str]) -> None:
    """A generation's PEP 503 index and SHA256SUMS, from its wheels (file name -> sha256)."""
    write_simple_index(generation, shas)
    (generation / "SHA256SUMS").write_text("".join(f"{shas[f]}  {f}\n" for f in sorted(shas)))


def publish_wheelhouse(wheelhouse: Path, release: Release, target: Target, items: list[ItemResult], paths: dict[str, Path]) -> Path:
    """Assemble wheels + index + manifest as a new generation; swap the symlink atomically."""
    ok = sorted((i for i in items if i.outcome.ok and i.filename), key=lambda i: (canonicalize_name(i.name), i.filename or ""))
    unhashed = [f"{i.filename}" for i in ok if not i.sha256]
    if unhashed:
        raise IntegrityError(f"no sha256 recorded for {', '.join(unhashed)}; the previous wheelhouse was left in place")
    digest = hashlib.sha256("\n".join(f"{i.filename} {i.sha256}" for i in ok).encode()).hexdigest()[:16]
    generations = wheelhouse.parent / ".generations"
    gen = generations / f"{wheelhouse.name}-{digest}"
    tmp = generations / f".{gen.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shas: dict[str, str] = {}
    for item in ok:
        if item.filename and item.sha256:  # every one (checked above)
            link_or_copy(paths[item.filename], tmp / item.filename)
            shas[item.filename] = item.sha256
    write_sums_and_index(tmp, shas)
    manifest = {
        "release": release.id,
        "series": release.series,
        "target": target.key,
        "wheels": [
            {
                "name": i.name, "version": i.version, "filename": i.filename, "sha256": i.sha256,
                "origin": i.origin, "source_sha256": i.source_sha256, "url": i.url, "outcome": i.outcome.value, "seconds": i.seconds, "sources": sorted(i.sources),
            }
            for i in ok
        ],
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    write_install_requirements(tmp, ok)
    swap_in(wheelhouse, tmp, gen)
    return gen


def swap_in(wheelhouse: Path, tmp: Path, gen: Path) -> None:
    """``tmp`` (complete) becomes the generation ``gen`` and ``wheelhouse`` (a symlink) points at it, atomically; the
    previous generation stays (a reader may still use it), older ones go."""
    generations = gen.parent
    if gen.exists():
        shutil.rmtree(gen)
    os.replace(tmp, gen)
    link_tmp = wheelhouse.with_name(f".{wheelhouse.name}.{os.getpid()}.link")
    link_tmp.unlink(missing_ok=True)
    link_tmp.symlink_to(gen.relative_to(wheelhouse.parent))
    previous = wheelhouse.resolve() if wheelhouse.is_symlink() else None
    if wheelhouse.exists() and not wheelhouse.is_symlink():
        shutil.rmtree(wheelhouse)
    os.replace(link_tmp, wheelhouse)
    # keep the current and the previous generation (a reader may still use it)
    keep = {gen.resolve(), previous}
    for old in generations.glob(f"{wheelhouse.name}-*"):
        if old.resolve() not in keep:
            shutil.rmtree(old, ignore_errors=True)


def build_wheelhouse(
    config: Config,
    release: Release,
    recipes: list[Recipe],
    *,
    upper_constraints: bool,
    reporter: Reporter,
    allowed_failures: set[str] | None = None,
    http: Http | None = None,
    rebuild: bool = False,
    runner: Runner = RUNNER,
) -> WheelhouseResult:
    """Fetch or build every wanted wheel and publish them as the release's wheelhouse; with the same wanted
    pins, hashes and target as the recorded wheelhouse, and that one intact, nothing runs (``unchanged``)."""
    started = time.monotonic()
    wheelhouse = config.wheelhouse_dir(release)
    http = http or Http(config.index.retries, config.index.timeout, pool=config.wheels.download_jobs)
    allowed = set(config.wheels.allowed_failures) | (allowed_failures or set())
    with _exclusive(wheelhouse.parent / f".{wheelhouse.name}.lock"):
        previous = read_manifest(wheelhouse)
        wanted = collect_wanted(
            config, release, recipes, upper_constraints=upper_constraints, previous=(previous or {}).get("wheels")
        )
        target = target_for(config, release)
        inputs = wanted_digest(wanted, target, allowed)
        record = stage.read_record(record_path(wheelhouse), WheelhouseRecord)
        if record is not None and stage.why_build(record, inputs, intact(wheelhouse, record), rebuild) is None:
            reporter(Unchanged(STEP, f"{release.id} {target.key}", f"{wheelhouse} ({record.wheels} wheels) stands "
                                                                   f"(the same pins, hashes and target)"))
            return WheelhouseResult(wheelhouse, [], False, time.monotonic() - started, {"unchanged": record.wheels})
        run = _Run(config, release, reporter, http, allowed, runner)
        reporter(StepStarted(STEP, len(wanted), f"{release.id} {run.target.key} -> {wheelhouse}"))
        run.run(wanted)
        counts = {o.value: sum(1 for i in run.results if i.outcome == o) for o in Outcome}
        failed = [i for i in run.results if i.outcome == Outcome.FAILED]
        published = False
        if not failed:
            publish_wheelhouse(wheelhouse, release, run.target, run.results, run.wheel_paths)
            published = True
            wheels = sum(1 for i in run.results if i.outcome.ok and i.filename)
            stage.write_record(record_path(wheelhouse), WheelhouseRecord(
                release.id, target.key, wheels, sha256_file(wheelhouse / "SHA256SUMS"), inputs))
        seconds = time.monotonic() - started
        reporter(StepFinished(STEP, seconds, counts))
        return WheelhouseResult(wheelhouse, sorted(run.results, key=lambda i: canonicalize_name(i.name)), published, seconds, counts)
