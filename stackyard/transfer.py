"""Scale-out: artifacts between machines and the release's wheelhouse over HTTP.

A build worker packs what the publisher needs of a tested deb (the ``.deb``,
its build and smoke record, its changelog: the revision history) into one
bundle with a ``.sha256`` beside it (``stackyard bundle``). Buildbot carries
both to the master and on to the publisher; each hop checks the sum
(``stackyard verify-artifact``), and the publisher unpacks it into its own
``var/`` (``stackyard receive``), checking the deb against its smoke record,
before ``stackyard publish`` sees it. Nothing relies on a shared ``var/``.

A build worker with an empty ``var/`` gets the project's locked wheels from
the publisher's wheelhouse over HTTP (``stackyard serve-wheelhouse`` there,
``stackyard fetch-wheelhouse`` here): each file through the PEP 503 index,
its sha256 the index names, the wheelhouse manifest names and the lock
allows, all checked. No other index is asked.
"""

from __future__ import annotations

import hashlib
import html.parser
import io
import json
import os
import shutil
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

from packaging.utils import canonicalize_name

from stackyard.config import Config, Release
from stackyard.errors import FetchError, InputError, IntegrityError
from stackyard.http import Http, NotFound
from stackyard.recipes import Recipe
from stackyard.wheels.cache import sha256_file
from stackyard.wheels.constraints import load_lock
from stackyard.wheels.lock import lock_path
from stackyard.wheels.simple_index import write_simple_index

SUFFIX = ".sha256"
BUNDLE = ".bundle.tar"


# --- sha256 beside a file ----------------------------------------------------------------------------------------------


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def write_sha256(path: Path) -> str:
    """``<path>.sha256`` in sha256sum's format; returns the digest."""
    digest = sha256_file(path)
    tmp = sidecar(path).with_name(sidecar(path).name + ".tmp")
    tmp.write_text(f"{digest}  {path.name}\n")
    os.replace(tmp, sidecar(path))
    return digest


def verify_sha256(path: Path) -> str:
    """``path`` against the sum in ``<path>.sha256``; raises IntegrityError naming the file when they differ."""
    side = sidecar(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file", hint="was the transfer step before this one skipped or did it fail?")
    try:
        fields = side.read_text().split()
    except FileNotFoundError:
        raise IntegrityError(f"{side}: missing: {path.name} arrived without its sha256",
                             hint="send the file and its .sha256 together (stackyard bundle writes both)") from None
    if len(fields) != 2 or len(fields[0]) != 64 or fields[1] != path.name:
        raise IntegrityError(f"{side}: not a sha256sum line for {path.name}: {side.read_text()[:200]!r}")
    actual = sha256_file(path)
    if actual != fields[0]:
        raise IntegrityError(f"{path}: sha256 {actual} differs from {fields[0]} in {side.name}: damaged in transfer",
                             hint="nothing was published; run the build again")
    return actual


# --- the deb's bundle: build worker -> master -> publisher ---------------------------------------------------------------


@dataclass(frozen=True)
class Bundle:
    path: Path
    sha256: str
    package: str
    version: str
    deb: str  # the deb's file name


def _deterministic(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
    return info


WHEELS = "wheels"  # in a bundle: wheels/<file>.whl and wheels/wheels.json (their manifest entries)


def _built_wheels(config: Config, release: Release, wanted: list[str]) -> list[tuple[Path, dict[str, Any]]]:
    """The wheels of this machine's wheelhouse that ``wanted`` names (``name==version`` or ``name==url``, as
    fetch-wheelhouse lists what the central wheelhouse lacks), each checked against its manifest entry."""
    from stackyard.wheels.wheelhouse import read_manifest

    if not wanted:
        return []
    local = config.wheelhouse_dir(release)
    manifest = read_manifest(local)
    if manifest is None:
        raise InputError(f"{local}: no wheelhouse here, so no wheels to send", hint=f"stackyard wheels --release {release.id} ...")
    out = []
    for item in wanted:
        name, _, version = item.partition("==")
        found = [w for w in manifest["wheels"] if canonicalize_name(w["name"]) == canonicalize_name(name)
                 and version in (w["version"], w.get("url"))]
        if not found:
            raise InputError(f"{local}: has no wheel of {item}", hint=f"stackyard wheels --release {release.id} <project> builds it")
        wheel = found[0]
        path = local / wheel["filename"]
        if sha256_file(path) != wheel["sha256"]:
            raise IntegrityError(f"{path}: its sha256 is not the {wheel['sha256']} {local}/manifest.json names",
                                 hint=f"stackyard wheels --release {release.id} <project> makes it again")
        out.append((path, wheel))
    return out


def bundle(config: Config, release: Release, recipe: Recipe, out: Path, wheels: list[str] | None = None) -> Bundle:
    """Pack the tested deb of ``recipe``, its record and its changelog into ``out``, with a ``.sha256`` beside it;
    with the wheels ``wheels`` names that this machine built (the central wheelhouse lacked them) for the publisher
    to merge into the release's wheelhouse."""
    from debian.changelog import Changelog

    from stackyard.debs.record import smoke_passed as passed
    from stackyard.debs.venv_deb import changelog_path, debs_dir

    cl = changelog_path(config, release, recipe.package)
    if not cl.exists():
        raise InputError(f"{recipe.package} was never built for {release.id}", hint=f"stackyard deb --release {release.id} {recipe.name}")
    version = str(Changelog(cl.read_text()).version)
    found = sorted(debs_dir(config, release).glob(f"{recipe.package}_{version}_*.deb"))
    if not found or not passed(found[0]):
        raise InputError(f"{recipe.package} {version} has not passed its smoke test; it is not sent to the publisher",
                         hint=f"stackyard deb --release {release.id} {recipe.name}")
    deb = found[0]
    built = _built_wheels(config, release, wheels or [])
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{recipe.package}_{version}{BUNDLE}"
    tmp = path.with_name(path.name + ".tmp")
    with tarfile.open(tmp, "w") as tf:
        for member, arcname in ((deb, deb.name), (deb.with_name(deb.name + ".json"), deb.name + ".json"),
                                (cl, f"changelogs/{cl.name}")):
            tf.add(member, arcname=arcname, recursive=False, filter=_deterministic)
        if built:
            for wheel_path, _ in built:
                tf.add(wheel_path, arcname=f"{WHEELS}/{wheel_path.name}", recursive=False, filter=_deterministic)
            data = (json.dumps([w for _, w in built], indent=1, sort_keys=True) + "\n").encode()
            info = _deterministic(tarfile.TarInfo(f"{WHEELS}/wheels.json"))
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)
    return Bundle(path, write_sha256(path), recipe.package, version, deb.name)


def merge_wheels(config: Config, release: Release, incoming: dict[str, Path], entries: list[dict[str, Any]], source: Path) -> list[str]:
    """Merge wheels a build worker built (``incoming``: file name -> file; ``entries``: their manifest entries, from
    ``source``) into the release's wheelhouse, under its lock: a new generation with SHA256SUMS, the PEP 503 index
    and manifest.json regenerated, swapped in atomically. A wheel already there with the same bytes is no change;
    a wheel whose name and version are there with other bytes is an error naming both, and nothing changes.
    Returns the file names added."""
    from stackyard import stage
    from stackyard.wheels.wheelhouse import (
        WheelhouseRecord,
        _exclusive,
        link_or_copy,
        read_manifest,
        record_path,
        swap_in,
        write_sums_and_index,
    )

    if not entries:  # nothing to merge: the wheelhouse is not needed (a bundle without wheels)
        return []
    wheelhouse = config.wheelhouse_dir(release)
    with _exclusive(wheelhouse.parent / f".{wheelhouse.name}.lock"):
        manifest = read_manifest(wheelhouse)
        if manifest is None:
            raise InputError(f"{wheelhouse}: no wheelhouse to merge {source.name}'s wheels into",
                             hint=f"run the wheels-{release.id} builder (stackyard wheels --release {release.id}) on the publisher")
        current = {(canonicalize_name(w["name"]), w["version"]): w for w in manifest["wheels"]}
        by_file = {w["filename"]: w for w in manifest["wheels"]}
        added: list[dict[str, Any]] = []
        for entry in entries:
            name = entry["filename"]
            have = by_file.get(name) or current.get((canonicalize_name(entry["name"]), entry["version"]))
            if have is None:
                added.append(entry)
            elif have["sha256"] != entry["sha256"]:
                raise IntegrityError(
                    f"{source}: {name} (sha256 {entry['sha256']}) is {entry['name']} {entry['version']}, which the release's "
                    f"wheelhouse {wheelhouse} has as {have['filename']} with other bytes (sha256 {have['sha256']})",
                    hint="a wheel's name and version name one file: rebuild the project on a worker that fetches it from "
                         "the wheelhouse (its lock's hashes decide), or rebuild the wheelhouse")
        if not added:
            return []
        generation = wheelhouse.resolve()
        wheels = sorted([*manifest["wheels"], *({**e, "merged_from": source.name} for e in added)], key=lambda w: w["filename"])
        digest = hashlib.sha256("\n".join(f"{w['filename']} {w['sha256']}" for w in wheels).encode()).hexdigest()[:16]
        gen = generation.parent / f"{wheelhouse.name}-{digest}"
        tmp = generation.parent / f".{gen.name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            for w in manifest["wheels"]:
                link_or_copy(generation / w["filename"], tmp / w["filename"])
            for w in added:
                shutil.copy2(incoming[w["filename"]], tmp / w["filename"])
                if sha256_file(tmp / w["filename"]) != w["sha256"]:
                    raise IntegrityError(f"{source}: {w['filename']} changed while it was merged")
            write_sums_and_index(tmp, {w["filename"]: w["sha256"] for w in wheels})
            (tmp / "manifest.json").write_text(json.dumps(manifest | {"wheels": wheels}, indent=1) + "\n")
            if (generation / "install").is_dir():
                shutil.copytree(generation / "install", tmp / "install")
            swap_in(wheelhouse, tmp, gen)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        record = stage.read_record(record_path(wheelhouse), WheelhouseRecord)
        if record is not None:  # the merged wheelhouse is intact; its inputs stay those it was built from
            stage.write_record(record_path(wheelhouse), WheelhouseRecord(record.release, record.target, len(wheels),
                                                                         sha256_file(wheelhouse / "SHA256SUMS"), record.inputs))
        return [w["filename"] for w in added]


def receive(config: Config, release: Release, path: Path) -> Bundle:
    """Check ``path`` against its ``.sha256``, then unpack it into this machine's debs directory; the deb must match
    the sha256 its smoke record names. The wheels it carries (each checked against its entry) are merged into the
    release's wheelhouse first. Nothing is unpacked from a bundle that fails a check."""
    from debian.changelog import Changelog

    from stackyard.debs.record import smoke_passed as passed
    from stackyard.debs.venv_deb import debs_dir

    digest = verify_sha256(path)
    with tarfile.open(path) as tf:
        members = {m.name: m for m in tf.getmembers()}
        debs = [n for n in members if n.endswith(".deb") and "/" not in n]
        changelogs = [n for n in members if n.startswith("changelogs/") and n.endswith(".changelog") and n.count("/") == 1]
        wheel_names = [n for n in members if n.startswith(f"{WHEELS}/") and n.endswith(".whl") and n.count("/") == 1]
        listed = {debs[0], debs[0] + ".json", changelogs[0], *wheel_names} if len(debs) == 1 and len(changelogs) == 1 else set()
        if wheel_names:
            listed.add(f"{WHEELS}/wheels.json")
        if len(debs) != 1 or len(changelogs) != 1 or set(members) != listed or not all(m.isfile() for m in members.values()):
            raise IntegrityError(f"{path}: not a bundle of stackyard bundle (members: {', '.join(sorted(members))})")
        entries: list[dict[str, Any]] = []
        if wheel_names:
            try:
                entries = json.loads(tf.extractfile(members[f"{WHEELS}/wheels.json"]).read())  # type: ignore[union-attr]
            except ValueError:
                raise IntegrityError(f"{path}: {WHEELS}/wheels.json is not JSON") from None
            if sorted(f"{WHEELS}/{e.get('filename')}" for e in entries) != sorted(wheel_names):
                raise IntegrityError(f"{path}: {WHEELS}/wheels.json does not list exactly the wheels the bundle carries")
        staging = debs_dir(config, release) / f".incoming-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            (staging / WHEELS).mkdir()
            for name, member in members.items():
                target = staging / name if name.startswith(f"{WHEELS}/") else staging / Path(name).name
                with tf.extractfile(member) as src, target.open("wb") as dst:  # type: ignore[union-attr]
                    shutil.copyfileobj(src, dst)
            deb = staging / debs[0]
            if not passed(deb):
                raise IntegrityError(f"{path}: {debs[0]} differs from the deb its smoke record names (or it did not pass)",
                                     hint="nothing was published; run the build again")
            incoming = {e["filename"]: staging / WHEELS / e["filename"] for e in entries}
            for e in entries:
                if sha256_file(incoming[e["filename"]]) != e["sha256"]:
                    raise IntegrityError(f"{path}: {e['filename']} differs from the sha256 {e['sha256']} {WHEELS}/wheels.json names",
                                         hint="nothing was published; run the build again")
            merge_wheels(config, release, incoming, entries, path)
            changelog = staging / Path(changelogs[0]).name
            version = str(Changelog(changelog.read_text()).version)
            package = debs[0].split("_", 1)[0]
            final = debs_dir(config, release)
            (final / "changelogs").mkdir(parents=True, exist_ok=True)
            os.replace(deb, final / deb.name)
            os.replace(staging / (deb.name + ".json"), final / (deb.name + ".json"))
            os.replace(changelog, final / "changelogs" / changelog.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return Bundle(path, digest, package, version, debs[0])


# --- the wheelhouse over HTTP -----------------------------------------------------------------------------------------------


def wheelhouse_url(config: Config, release: Release, base: str) -> str:
    """The URL of ``release``'s wheelhouse under a server of ``stackyard serve-wheelhouse`` at ``base``."""
    rel = config.wheelhouse_dir(release).relative_to(config.paths.output / "wheelhouse")
    return f"{base.rstrip('/')}/{rel.as_posix()}/"


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


@dataclass
class Fetched:
    url: str  # the wheelhouse's URL
    wheelhouse: Path  # where the wheels are now
    fetched: list[str] = field(default_factory=list)  # wheel file names downloaded
    kept: list[str] = field(default_factory=list)  # already here with the right sha256
    missing: list[str] = field(default_factory=list)  # lock entries the remote wheelhouse has no wheel for

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "wheelhouse": str(self.wheelhouse), "fetched": self.fetched, "kept": self.kept,
                "missing": self.missing}


def _index_links(http: Http, page: str) -> dict[str, tuple[str, str | None]]:
    """PEP 503 project page -> {file name: (absolute URL, sha256 from its fragment or None)}."""
    parser = _Links()
    parser.feed(http.get_text(page))
    out: dict[str, tuple[str, str | None]] = {}
    for href in parser.hrefs:
        url, fragment = urldefrag(urljoin(page, href))
        name = url.rsplit("/", 1)[-1]
        out[name] = (url, fragment.split("=", 1)[1] if fragment.startswith("sha256=") else None)
    return out


def _served_json(http: Http, url: str, base: str, what: str, kind: str, *, missing_ok: bool = False) -> Any:
    """The JSON document at ``url`` of the publisher's server ``base``; its absence (NotFound) is passed on when
    ``missing_ok``, any other failure names the server and the setting that points at it."""
    try:
        return json.loads(http.get_text(url))
    except FetchError as exc:
        if missing_ok and isinstance(exc, NotFound):
            raise
        raise FetchError(f"{what} at {url} cannot be read: {exc}",
                         hint=f"is 'stackyard serve-wheelhouse' running on the publisher and {base} reachable from here? "
                              "([buildbot] wheelhouse_url)") from None
    except ValueError:
        raise IntegrityError(f"{url}: not {kind} (not JSON)") from None


def fetch_wheelhouse(config: Config, release: Release, recipe: Recipe, base: str, *, http: Http | None = None) -> Fetched:
    """Get the wheels of ``recipe``'s lock from the wheelhouse served at ``base`` into this machine's wheelhouse.

    A wheel is taken only if the PEP 503 index's sha256, the remote manifest's and the downloaded file's agree and
    the lock allows it (a fetched wheel's own sha256, a built one's sdist sha256). Lock entries the remote has no
    wheel for are listed in ``missing`` (a new tag's own source: the build makes it); the local wheelhouse is written
    only when nothing is missing, so 'stackyard deb' checks the chain again and installs offline."""
    from stackyard.wheels.wheelhouse import _exclusive, read_manifest

    http = http or Http(config.index.retries, config.index.timeout)
    url = wheelhouse_url(config, release, base)
    manifest = _served_json(http, url + "manifest.json", base, "the wheelhouse", "a wheelhouse manifest")
    lock_file = lock_path(config, release, recipe.name)
    lock = load_lock(lock_file)
    wheels = {(canonicalize_name(w["name"]), w["version"]): w for w in manifest["wheels"]}
    by_url = {w.get("url"): w for w in manifest["wheels"] if w.get("url")}
    local = config.wheelhouse_dir(release)
    result = Fetched(url, local)
    chosen: list[dict[str, Any]] = []
    for entry in lock:
        wheel = by_url.get(entry.url) if entry.url else wheels.get((entry.key, entry.version))
        if wheel is None:
            result.missing.append(f"{entry.name}=={entry.version or entry.url}")
            continue
        allowed = {h.split(":", 1)[1] for h in entry.hashes}
        source_hash = wheel["sha256"] if wheel["origin"] == "fetched" else wheel.get("source_sha256")
        if allowed and source_hash not in allowed:
            raise IntegrityError(f"{url}: {wheel['filename']}: sha256 {source_hash} is not one {lock_file}:{entry.line} allows",
                                 hint=f"the publisher's wheelhouse is of another lock: run the wheels-{release.id} builder")
        chosen.append(wheel)
    if result.missing:
        return result
    with _exclusive(local.parent / f".{local.name}.lock"):
        previous = read_manifest(local) if local.exists() else None
        kept_entries = {w["filename"]: w for w in (previous or {}).get("wheels", [])
                        if (local / w["filename"]).exists()}
        incoming = local.parent / f".{local.name}.{os.getpid()}.fetch"
        shutil.rmtree(incoming, ignore_errors=True)
        incoming.mkdir(parents=True)
        try:
            pages: dict[str, dict[str, tuple[str, str | None]]] = {}
            for wheel in chosen:
                name = wheel["filename"]
                have = local / name
                if have.exists() and sha256_file(have) == wheel["sha256"]:
                    shutil.copy2(have, incoming / name)
                    result.kept.append(name)
                    continue
                project = canonicalize_name(wheel["name"])
                if project not in pages:
                    pages[project] = _index_links(http, f"{url}simple/{project}/")
                link = pages[project].get(name)
                if link is None:
                    raise IntegrityError(f"{url}simple/{project}/: no link to {name}, which its manifest.json lists",
                                         hint="the publisher's wheelhouse is damaged: run its wheels builder again")
                file_url, indexed = link
                if indexed != wheel["sha256"]:
                    raise IntegrityError(f"{url}simple/{project}/: {name} has sha256 {indexed} on the index, "
                                         f"{wheel['sha256']} in manifest.json")
                http.download(file_url, incoming / name, wheel["sha256"])  # raises when the file's sha256 differs
                result.fetched.append(name)
            for name in kept_entries:  # what other projects fetched before stays
                if not (incoming / name).exists():
                    shutil.copy2(local / name, incoming / name)
            entries = {w["filename"]: w for w in [*kept_entries.values(), *chosen]}
            for name, entry in entries.items():
                sources = set(entry.get("sources", [])) | ({f"lock:{recipe.name}"} if entry in chosen else set())
                entries[name] = entry | {"sources": sorted(sources)}
            write_simple_index(incoming, {n: e["sha256"] for n, e in entries.items()})
            (incoming / "SHA256SUMS").write_text("".join(f"{entries[n]['sha256']}  {n}\n" for n in sorted(entries)))
            (incoming / "manifest.json").write_text(json.dumps(manifest | {"wheels": sorted(entries.values(), key=lambda e: e["filename"]),
                                                                           "fetched_from": url}, indent=1) + "\n")
            (incoming / "install").mkdir()
            if previous and (local / "install").is_dir():
                for f in (local / "install").glob("*.txt"):
                    shutil.copy2(f, incoming / "install" / f.name)
            lines = [f"# {recipe.name}: install from this wheelhouse with --no-index --require-hashes\n"]
            lines += [f"{canonicalize_name(w['name'])}=={w['version']} --hash=sha256:{w['sha256']}\n"
                      for w in sorted(chosen, key=lambda w: canonicalize_name(w["name"]))]
            (incoming / "install" / f"{recipe.name}.txt").write_text("".join(lines))
            if local.is_symlink():
                local.unlink()
            elif local.exists():
                old = local.with_name(f".{local.name}.{os.getpid()}.old")
                os.replace(local, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(incoming, local)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
    return result


# --- the revision history: what the publisher published, for build workers with an empty var/ -------------------------
#
# A build worker with no changelog of its own would restart a package's revision at ``.1``: the publisher would then
# be sent a version it already has, with other bytes. So the publisher keeps, per published package, the changelog
# of the version staging has (``stackyard share-history``, after each publish) beside a record naming that version and
# the changelog's sha256; build workers get both over HTTP from the wheelhouse's server (``/history/<release>/``) and
# continue from there (``stackyard fetch-history``).

HISTORY = "history"


def history_dir(config: Config, release: Release) -> Path:
    return config.paths.output / HISTORY / release.id


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def share_history(config: Config, release: Release, recipe: Recipe, *, runner: Any = None) -> dict[str, str]:
    """On the publisher, after publishing: the changelog of the version of ``recipe`` its repository has, and a
    record of it (version, sha256), under ``history_dir`` for ``stackyard serve-wheelhouse``."""
    from debian.changelog import Changelog

    from stackyard.debs.venv_deb import changelog_path, newest_published
    from stackyard.runner import RUNNER

    published = newest_published(config, release, recipe.package, runner=runner or RUNNER)
    if published is None:
        raise InputError(f"{recipe.package} is not published for {release.id}: there is no history to share",
                         hint=f"stackyard publish --release {release.id} {recipe.name}")
    cl = changelog_path(config, release, recipe.package)
    text = cl.read_text() if cl.exists() else ""
    kept = str(Changelog(text).version) if text else None
    if kept != published:
        raise IntegrityError(f"{cl}: names {recipe.package} {kept}, the repository has {published}: the changelog kept "
                             "here is not the published one's",
                             hint=f"publish what was received: stackyard publish --release {release.id} {recipe.name}")
    out = history_dir(config, release)
    out.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    record = {"package": recipe.package, "version": published, "changelog": f"{recipe.package}.changelog",
              "sha256": hashlib.sha256(data).hexdigest()}
    _write_atomic(out / record["changelog"], data)  # the changelog first: a record never names a changelog not there
    _write_atomic(out / f"{recipe.package}.json", (json.dumps(record, indent=1) + "\n").encode())
    return record


def fetch_history(config: Config, release: Release, recipe: Recipe, base: str, *, http: Http | None = None) -> dict[str, str]:
    """On a build worker, before the deb's version is decided: continue ``recipe``'s changelog from the one the
    publisher published. The record's sha256 and version are checked against the changelog fetched. The local
    changelog is replaced when the published one is at least as new and differs (another worker built since);
    a newer local one (built here, not yet published) stays. Returns what was done (``history``: seeded, kept,
    none) and the published version."""
    from debian.changelog import Changelog
    from debian.debian_support import version_compare

    from stackyard.debs.venv_deb import changelog_path

    http = http or Http(config.index.retries, config.index.timeout)
    url = f"{base.rstrip('/')}/{HISTORY}/{release.id}/{recipe.package}.json"
    try:
        record = _served_json(http, url, base, "the published history", "a history record", missing_ok=True)
    except NotFound:
        return {"history": "none", "published": ""}  # never published: the revision starts at .1
    if not isinstance(record, dict) or record.get("package") != recipe.package or \
            not all(isinstance(record.get(k), str) for k in ("version", "changelog", "sha256")) or "/" in record["changelog"]:
        raise IntegrityError(f"{url}: not a history record of {recipe.package}: {str(record)[:200]}")
    cl_url = urljoin(url, record["changelog"])
    data, _ = http.get(cl_url)
    digest = hashlib.sha256(data).hexdigest()
    if digest != record["sha256"]:
        raise IntegrityError(f"{cl_url}: sha256 {digest} differs from {record['sha256']} in {url}",
                             hint="the publisher's history is damaged or was rewritten mid-transfer: run the build again")
    try:
        published = str(Changelog(data.decode()).version)
    except Exception as exc:  # python-debian's parse errors have no common base
        raise IntegrityError(f"{cl_url}: not a Debian changelog ({exc})") from None
    if published != record["version"]:
        raise IntegrityError(f"{cl_url}: its newest entry is {published}, {url} names {record['version']}")
    local = changelog_path(config, release, recipe.package)
    if local.exists():
        here = local.read_bytes()
        if here == data:
            return {"history": "kept", "published": published}
        mine = str(Changelog(here.decode()).version)
        if version_compare(mine, published) > 0:
            return {"history": "kept", "published": published}
    local.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(local, data)
    return {"history": "seeded", "published": published}


class _ReadOnly(SimpleHTTPRequestHandler):
    history: Path | None = None

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def translate_path(self, path: str) -> str:
        prefix = f"/{HISTORY}/"
        if self.history is not None and path.startswith(prefix):  # the publisher's published history
            rest = super().translate_path("/" + path[len(prefix):])
            return str(self.history / Path(rest).relative_to(self.directory))
        return super().translate_path(path)

    def list_directory(self, path: str) -> io.BytesIO | None:  # PEP 503 pages are index.html files; no listings
        self.send_error(404, "no directory listing")
        return None


class WheelhouseServer:
    """Every release's wheelhouse (``<output>/wheelhouse``) read-only over HTTP: ``stackyard serve-wheelhouse``."""

    def __init__(self, directory: Path, host: str, port: int, history: Path | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        handler_class = type("_Handler", (_ReadOnly,), {"history": history})  # /history/...: published changelogs
        handler = lambda *a, **kw: handler_class(*a, directory=str(directory), **kw)  # noqa: E731
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}", hint="choose another --port or --host") from None
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> "WheelhouseServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
