"""stackyard.wheels.wheelhouse: what goes in (merge/collect), which file is chosen, and a
wheels-only run against a file:// index (threads, no processes, no network)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import pytest

from stackyard.config import Config, Release
from stackyard.errors import IntegrityError, ResolutionError
from stackyard.events import Event, ItemFinished, Outcome, StepFinished, StepStarted, discard
from stackyard.http import Http
from stackyard.recipes import Recipe, load_recipe
from stackyard.wheels.package_index import IndexFile
from stackyard.wheels.simple_index import write_simple_index
from stackyard.wheels.wheelhouse import (
    UPPER_CONSTRAINTS,
    Wanted,
    _Run,
    build_wheelhouse,
    collect_wanted,
    merge_wanted,
    read_manifest,
    wanted_from_lock,
)

H1, H2, H3 = "1" * 64, "2" * 64, "3" * 64


# --- merge_wanted ---------------------------------------------------------------


def test_merge_wanted_intersects_hashes_of_overlapping_sources() -> None:
    a = Wanted("oslo.config", "9.7.2", frozenset({H1, H2}), frozenset({"lock:keystone"}))
    b = Wanted("oslo_config", "9.7.2", frozenset({H2, H3}), frozenset({"lock:nova"}))
    (merged,) = merge_wanted([a, b])
    assert merged.hashes == frozenset({H2})
    assert merged.sources == frozenset({"lock:keystone", "lock:nova"})
    assert merged.name == "oslo.config"  # the first spelling is kept
    assert merged.key == "oslo-config"


def test_merge_wanted_unhashed_source_keeps_the_lock_hashes() -> None:
    lock = Wanted("six", "1.17.0", frozenset({H1}), frozenset({"lock:nova"}))
    uc = Wanted("six", "1.17.0", sources=frozenset({UPPER_CONSTRAINTS}))
    for items in ([lock, uc], [uc, lock]):
        (merged,) = merge_wanted(items)
        assert merged.hashes == frozenset({H1})
        assert merged.sources == frozenset({"lock:nova", UPPER_CONSTRAINTS})


def test_merge_wanted_disjoint_hashes_raise() -> None:
    a = Wanted("six", "1.17.0", frozenset({H1}), frozenset({"lock:keystone"}))
    b = Wanted("six", "1.17.0", frozenset({H2}), frozenset({"lock:nova"}))
    with pytest.raises(IntegrityError) as info:
        merge_wanted([a, b])
    text = str(info.value)
    assert "six==1.17.0" in text
    assert "lock:keystone" in text and "lock:nova" in text


def test_merge_wanted_keeps_different_versions_and_direct_references_apart() -> None:
    items = [
        Wanted("six", "1.17.0", sources=frozenset({"lock:a"})),
        Wanted("Six", "1.16.0", sources=frozenset({"lock:b"})),
        Wanted("mylib", "", sources=frozenset({"lock:a"}), url="file:///src/mylib"),
        Wanted("mylib", "", sources=frozenset({"lock:b"}), url="file:///src/mylib"),
        Wanted("alembic", "1.14.1", sources=frozenset({"lock:a"})),
    ]
    merged = merge_wanted(items)
    assert [(w.key, w.version) for w in merged] == [("alembic", "1.14.1"), ("mylib", ""), ("six", "1.16.0"), ("six", "1.17.0")]
    mylib = merged[1]
    assert mylib.sources == frozenset({"lock:a", "lock:b"})
    assert mylib.label == "mylib @ file:///src/mylib"
    assert merged[2].label == "Six==1.16.0"


# --- collecting from locks, upper-constraints and the previous manifest --------------


LOCK_TEXT = f"""\
# stackyard lock: demo
demo-dist==1.2.3 \\
    --hash=sha256:{H1}
six==1.17.0 \\
    --hash=sha256:{H2} \\
    --hash=sha256:{H3}
    # via demo-dist
mylib @ file:///src/mylib
"""


@pytest.fixture
def demo(make_recipe: Callable[..., Path]) -> Recipe:
    return load_recipe(make_recipe("demo", 'name: demo\nsource: {pypi: demo-dist}\nversions: {"2025.1": "1.2.3"}\n'))


def write_inputs(config: Config, release: Release, lock: str, uc: str) -> None:
    d = config.requirements_dir(release)
    (d / "locks").mkdir(parents=True, exist_ok=True)
    (d / "locks" / "demo.txt").write_text(lock)
    (d / "upper-constraints.txt").write_text(uc)


def test_wanted_from_lock(tmp_path: Path) -> None:
    lock = tmp_path / "demo.txt"
    lock.write_text(LOCK_TEXT)
    wanted = {w.key: w for w in wanted_from_lock(lock, "demo")}
    assert wanted["six"].hashes == frozenset({H2, H3})
    assert wanted["demo-dist"].sources == frozenset({"lock:demo"})
    assert wanted["mylib"].url == "file:///src/mylib"
    assert wanted["mylib"].hashes == frozenset()


def test_collect_wanted_locks_and_upper_constraints(config: Config, release: Release, demo: Recipe) -> None:
    write_inputs(config, release, LOCK_TEXT, "six===1.17.0\nPyYAML===6.0.2\ntomli===2.2.1;python_version<'3.11'\n")
    wanted = {w.key: w for w in collect_wanted(config, release, [demo], upper_constraints=True)}
    assert sorted(wanted) == ["demo-dist", "mylib", "pyyaml", "six"]
    assert wanted["six"].sources == frozenset({"lock:demo", UPPER_CONSTRAINTS})
    assert wanted["six"].hashes == frozenset({H2, H3})
    assert wanted["pyyaml"].hashes == frozenset()
    only_locks = collect_wanted(config, release, [demo], upper_constraints=False)
    assert sorted(w.key for w in only_locks) == ["demo-dist", "mylib", "six"]


def test_collect_wanted_keeps_what_other_sources_put_in_the_previous_wheelhouse(
    config: Config, release: Release, demo: Recipe
) -> None:
    write_inputs(config, release, LOCK_TEXT, "six===1.17.0\n")
    previous = [
        # from another project's lock: kept, with the hash of the fetched file
        {"name": "oslo.config", "version": "9.7.2", "sha256": H1, "origin": "fetched", "sources": ["lock:nova"]},
        # built from an sdist: kept, pinned to the sdist it was built from (the wheel's hash is ours)
        {"name": "netifaces", "version": "0.11.0", "sha256": H2, "origin": "built", "source_sha256": H3,
         "sources": ["lock:nova"]},
        # an older manifest without source_sha256: kept, unhashed
        {"name": "pyasn1", "version": "0.6.1", "sha256": H2, "origin": "built", "sources": ["lock:nova"]},
        # only from this run's sources: replaced by what the lock says now
        {"name": "demo-dist", "version": "1.2.2", "sha256": H3, "origin": "fetched", "sources": ["lock:demo"]},
        # a direct reference of another lock: kept as a direct reference (rebuilt from its URL)
        {"name": "otherlib", "version": "1.0", "sha256": H3, "origin": "built", "sources": ["lock:nova", "lock:demo"],
         "url": "file:///x"},
    ]
    wanted = {(w.key, w.version): w for w in collect_wanted(config, release, [demo], upper_constraints=False, previous=previous)}
    assert sorted(wanted) == [
        ("demo-dist", "1.2.3"), ("mylib", ""), ("netifaces", "0.11.0"), ("oslo-config", "9.7.2"), ("otherlib", ""),
        ("pyasn1", "0.6.1"), ("six", "1.17.0"),
    ]
    assert wanted[("oslo-config", "9.7.2")].hashes == frozenset({H1})
    assert wanted[("oslo-config", "9.7.2")].sources == frozenset({"lock:nova"})
    assert wanted[("netifaces", "0.11.0")].hashes == frozenset({H3})
    assert wanted[("pyasn1", "0.6.1")].hashes == frozenset()
    assert wanted[("otherlib", "")].url == "file:///x"
    assert wanted[("otherlib", "")].sources == frozenset({"lock:nova"})


# --- choosing a file -----------------------------------------------------------------


@pytest.fixture
def run(config: Config, release: Release) -> _Run:
    return _Run(config, release, discard, Http(retries=0, backoff=0), set())


def f(filename: str, yanked: bool = False, sha: str | None = None) -> IndexFile:
    return IndexFile(filename, f"https://files.example/{filename}", sha, yanked)


def test_choose_best_binary_wheel(run: _Run) -> None:
    files = [
        f("numpy-2.2.3.tar.gz"),
        f("numpy-2.2.3-py3-none-any.whl"),
        f("numpy-2.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        f("numpy-2.2.3-cp311-cp311-musllinux_1_2_x86_64.whl"),
        f("numpy-2.2.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        f("numpy-2.2.3-cp311-cp311-manylinux_2_28_x86_64.whl"),
        f("numpy-2.2.3-cp311-cp311-manylinux_2_17_aarch64.whl"),
    ]
    assert run._choose(files).filename == "numpy-2.2.3-cp311-cp311-manylinux_2_28_x86_64.whl"
    assert run._choose(files[:4]).filename == "numpy-2.2.3-py3-none-any.whl"


def test_choose_skips_yanked_files_unless_all_are(run: _Run) -> None:
    good = f("six-1.17.0-py3-none-any.whl")
    yanked = f("six-1.17.0-cp311-cp311-manylinux_2_36_x86_64.whl", yanked=True)
    assert run._choose([yanked, good]) is good
    assert run._choose([yanked]) is yanked


def test_choose_sdist_when_no_wheel_fits(run: _Run) -> None:
    files = [f("lxml-5.3.0.zip"), f("lxml-5.3.0-cp312-cp312-manylinux_2_28_x86_64.whl"), f("lxml-5.3.0.tar.gz")]
    assert run._choose(files).filename == "lxml-5.3.0.tar.gz"
    assert run._choose(files[:2]).filename == "lxml-5.3.0.zip"
    assert run._choose([f("lxml-5.3.0-cp312-cp312-manylinux_2_28_x86_64.whl")]) is None
    assert run._choose([]) is None


# --- a file:// index -----------------------------------------------------------------------

NUMPY_311 = "numpy-2.2.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
NUMPY_312 = "numpy-2.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
NUMPY_MUSL = "numpy-2.2.3-cp311-cp311-musllinux_1_2_x86_64.whl"
NUMPY_ANY = "numpy-2.2.3-py3-none-any.whl"
SIX = "six-1.17.0-py2.py3-none-any.whl"
DEMO = "demo_dist-1.2.3-py3-none-any.whl"


def make_index(root: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    shas = {}
    for name in [NUMPY_311, NUMPY_312, NUMPY_MUSL, NUMPY_ANY, SIX, DEMO]:
        data = f"contents of {name}".encode()
        (root / name).write_bytes(data)
        shas[name] = hashlib.sha256(data).hexdigest()
    write_simple_index(root, shas)
    return shas


@pytest.fixture
def index(tmp_path: Path) -> tuple[str, dict[str, str]]:
    shas = make_index(tmp_path / "index")
    return (tmp_path / "index" / "simple").as_uri(), shas


@pytest.fixture
def indexed(make_config: Callable[..., Config], index: tuple[str, dict[str, str]]) -> Config:
    return make_config(index_url=index[0])


def lock_for(shas: dict[str, str], six_hashes: list[str] | None = None) -> str:
    def hashes(names: list[str]) -> str:
        return " \\\n".join(f"    --hash=sha256:{h}" for h in names)

    numpy = [shas[n] for n in (NUMPY_311, NUMPY_312, NUMPY_MUSL, NUMPY_ANY)]
    six = six_hashes or [shas[SIX]]
    return (
        f"demo-dist==1.2.3 \\\n{hashes([shas[DEMO]])}\n"
        f"numpy==2.2.3 \\\n{hashes(numpy)}\n"
        f"six==1.17.0 \\\n{hashes(six)}\n"
    )


def test_resolve_picks_the_best_file_and_caches_it(indexed: Config, index: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    _, shas = index
    release = indexed.release("2025.1")
    run = _Run(indexed, release, discard, Http(retries=0, backoff=0), set())
    best = run.resolve(Wanted("numpy", "2.2.3", frozenset(shas.values()), frozenset({"lock:demo"})))
    assert best.filename == NUMPY_311
    assert best.sha256 == shas[NUMPY_311]
    assert best.url == (tmp_path / "index" / NUMPY_311).as_uri()
    # the resolution is cached: a new run does not need the index any more
    (tmp_path / "index" / "simple" / "numpy" / "index.html").unlink()
    again = _Run(indexed, release, discard, Http(retries=0, backoff=0), set()).resolve(
        Wanted("numpy", "2.2.3", frozenset({shas[NUMPY_311]}), frozenset({"lock:demo"}))
    )
    assert again == best


def test_resolve_only_considers_files_the_lock_allows(indexed: Config, index: tuple[str, dict[str, str]]) -> None:
    _, shas = index
    run = _Run(indexed, indexed.release("2025.1"), discard, Http(retries=0, backoff=0), set())
    pure = run.resolve(Wanted("numpy", "2.2.3", frozenset({shas[NUMPY_ANY], shas[NUMPY_312]}), frozenset({"lock:other"})))
    assert pure.filename == NUMPY_ANY


def test_resolve_errors(indexed: Config, index: tuple[str, dict[str, str]]) -> None:
    run = _Run(indexed, indexed.release("2025.1"), discard, Http(retries=0, backoff=0), set())
    with pytest.raises(IntegrityError) as info:
        run.resolve(Wanted("six", "1.17.0", frozenset({H1}), frozenset({"lock:demo"})))
    assert "six==1.17.0" in str(info.value) and "lock:demo" in str(info.value)
    with pytest.raises(ResolutionError):
        run.resolve(Wanted("six", "1.16.0", sources=frozenset({UPPER_CONSTRAINTS})))
    with pytest.raises(ResolutionError):
        run.resolve(Wanted("absent", "1.0", sources=frozenset({UPPER_CONSTRAINTS})))


def test_build_wheelhouse_from_a_file_index(
    indexed: Config, index: tuple[str, dict[str, str]], make_recipe: Callable[..., Path]
) -> None:
    _, shas = index
    release = indexed.release("2025.1")
    recipe = load_recipe(make_recipe("demo", 'name: demo\nsource: {pypi: demo-dist}\nversions: {"2025.1": "1.2.3"}\n'))
    write_inputs(indexed, release, lock_for(shas), "six===1.17.0\nnumpy===2.2.3\n")
    events: list[Event] = []
    result = build_wheelhouse(indexed, release, [recipe], upper_constraints=True, reporter=events.append, http=Http(retries=0, backoff=0))

    assert result.published
    assert result.failed == []
    assert result.counts[Outcome.FETCHED.value] == 3
    wheelhouse = indexed.wheelhouse_dir(release)
    assert result.path == wheelhouse
    assert wheelhouse.is_symlink()
    files = sorted(p.name for p in wheelhouse.iterdir())
    assert files == sorted([DEMO, NUMPY_311, SIX, "SHA256SUMS", "install", "manifest.json", "simple"])
    install = (wheelhouse / "install" / "demo.txt").read_text().splitlines()[1:]
    assert install == sorted(f"{n}=={v} --hash=sha256:{shas[f]}" for n, v, f in
                             (("demo-dist", "1.2.3", DEMO), ("numpy", "2.2.3", NUMPY_311), ("six", "1.17.0", SIX)))
    for name in (DEMO, NUMPY_311, SIX):
        assert hashlib.sha256((wheelhouse / name).read_bytes()).hexdigest() == shas[name]
    sums = (wheelhouse / "SHA256SUMS").read_text().splitlines()
    assert sums == [f"{shas[n]}  {n}" for n in sorted((DEMO, NUMPY_311, SIX))]
    manifest = read_manifest(wheelhouse)
    assert manifest is not None
    assert manifest["release"] == "2025.1" and manifest["target"] == "bookworm-cp311-glibc2.36-x86_64"
    by_name = {w["name"]: w for w in manifest["wheels"]}
    assert by_name["six"]["sources"] == ["lock:demo", UPPER_CONSTRAINTS]
    assert by_name["numpy"]["filename"] == NUMPY_311
    assert by_name["demo-dist"]["origin"] == "fetched"
    assert (wheelhouse / "simple" / "numpy" / "index.html").exists()
    assert isinstance(events[0], StepStarted) and events[0].total == 3
    assert isinstance(events[-1], StepFinished)
    assert sorted(e.name for e in events if isinstance(e, ItemFinished)) == ["demo-dist", "numpy", "six"]

    # nothing changed: nothing runs and the wheelhouse stands
    generation = wheelhouse.resolve()
    events.clear()
    same = build_wheelhouse(indexed, release, [recipe], upper_constraints=True, reporter=events.append, http=Http(retries=0, backoff=0))
    assert not same.published and same.counts == {"unchanged": 3} and [type(e).__name__ for e in events] == ["Unchanged"]
    # rebuilt: everything from the cache, the same generation, still published
    again = build_wheelhouse(indexed, release, [recipe], upper_constraints=True, reporter=discard, http=Http(retries=0, backoff=0),
                             rebuild=True)
    assert again.published
    assert again.counts[Outcome.CACHED.value] == 3
    assert wheelhouse.resolve() == generation
    stable = ("name", "version", "filename", "sha256", "origin", "sources")
    rewritten = json.loads((wheelhouse / "manifest.json").read_text())["wheels"]
    assert [{k: w[k] for k in stable} for w in rewritten] == [{k: w[k] for k in stable} for w in manifest["wheels"]]
    assert {w["outcome"] for w in rewritten} == {Outcome.CACHED.value}


def test_failed_run_leaves_the_previous_wheelhouse(
    indexed: Config, index: tuple[str, dict[str, str]], make_recipe: Callable[..., Path]
) -> None:
    _, shas = index
    release = indexed.release("2025.1")
    recipe = load_recipe(make_recipe("demo", 'name: demo\nsource: {pypi: demo-dist}\nversions: {"2025.1": "1.2.3"}\n'))
    write_inputs(indexed, release, lock_for(shas), "")
    first = build_wheelhouse(indexed, release, [recipe], upper_constraints=False, reporter=discard, http=Http(retries=0, backoff=0))
    assert first.published
    wheelhouse = indexed.wheelhouse_dir(release)
    before = (wheelhouse / "manifest.json").read_text()

    write_inputs(indexed, release, lock_for(shas, six_hashes=[H1]), "")  # six re-uploaded upstream?
    second = build_wheelhouse(indexed, release, [recipe], upper_constraints=False, reporter=discard, http=Http(retries=0, backoff=0))
    assert not second.published
    assert [i.name for i in second.failed] == ["six"]
    failed = second.failed[0]
    assert "lock" in failed.error and failed.log is not None and failed.log.exists()
    assert (wheelhouse / "manifest.json").read_text() == before


def test_allowed_failures_do_not_block_publishing(
    indexed: Config, index: tuple[str, dict[str, str]], make_recipe: Callable[..., Path]
) -> None:
    _, shas = index
    release = indexed.release("2025.1")
    recipe = load_recipe(make_recipe("demo", 'name: demo\nsource: {pypi: demo-dist}\nversions: {"2025.1": "1.2.3"}\n'))
    write_inputs(indexed, release, lock_for(shas, six_hashes=[H1]), "")
    result = build_wheelhouse(
        indexed, release, [recipe], upper_constraints=False, reporter=discard,
        allowed_failures={"Six"}, http=Http(retries=0, backoff=0),
    )
    assert result.published
    assert result.counts[Outcome.ALLOWED_FAILURE.value] == 1
    names = {w["name"] for w in read_manifest(indexed.wheelhouse_dir(release))["wheels"]}
    assert names == {"demo-dist", "numpy"}
