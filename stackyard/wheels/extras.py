"""A recipe's extras against the extras the project declares.

pip installs ``keystone[memcache]`` even when keystone declares no
``memcache`` extra (a warning at most, and pip-compile --quiet hides it), so a
typo or an extra upstream dropped would silently leave its dependencies out of
the venv. ``check`` and ``lock`` compare the recipe's ``extras`` with the
``Provides-Extra`` fields of the project's metadata at the version the recipe
pins for the release, and fail naming the recipe, the extra and the extras
the project declares.

The metadata comes from the index: PEP 658 metadata of a wheel when the index
serves it, else the wheel's ``METADATA``, else the sdist's ``PKG-INFO``
(trusted from Metadata-Version 2.1 unless it says ``Dynamic: Provides-Extra``).
What was found is cached per project and version under the cache directory, so
a second ``check`` asks the index nothing. Projects built from git are not
checked here (their metadata exists only after a build).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from stackyard.config import Config, Release
from stackyard.errors import InputError, IntegrityError
from stackyard.http import Http
from stackyard.recipes import Recipe
from stackyard.wheels.cache import Cache
from stackyard.wheels.package_index import IndexFile, PackageIndex

METADATA_CACHE_FORMAT = 1


def normalize_extra(name: str) -> str:
    """PEP 685: extras compare like project names."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class DeclaredExtras:
    """The extras a project declares at one version; ``extras`` is None when its metadata cannot tell."""

    name: str
    version: str
    extras: tuple[str, ...] | None
    origin: str  # the file whose metadata said so


def provides_extra(metadata: str, *, sdist: bool = False) -> tuple[str, ...] | None:
    """The normalized Provides-Extra of a METADATA/PKG-INFO text; None if an sdist's cannot be trusted."""
    headers = HeaderParser().parsestr(metadata, headersonly=True)
    extras = tuple(sorted({normalize_extra(e.strip()) for e in headers.get_all("Provides-Extra") or [] if e.strip()}))
    if sdist:
        try:
            metadata_version = Version(str(headers.get("Metadata-Version", "1.0")).strip())
        except InvalidVersion:
            return None
        dynamic = {str(d).strip().lower() for d in headers.get_all("Dynamic") or []}
        if metadata_version < Version("2.1") or "provides-extra" in dynamic:
            return None
    return extras


def undeclared_extras(requested: tuple[str, ...], declared: tuple[str, ...]) -> list[str]:
    """The requested extras (as the recipe spells them) that the project does not declare."""
    have = {normalize_extra(e) for e in declared}
    return [e for e in requested if normalize_extra(e) not in have]


def check_recipe_extras(recipe: Recipe, release_id: str, declared: DeclaredExtras) -> None:
    """Raise InputError naming the recipe, the extra and the declared extras if an extra is unknown."""
    if declared.extras is None:
        return
    missing = undeclared_extras(recipe.extras, declared.extras)
    if not missing:
        return
    which = ", ".join(repr(e) for e in missing)
    noun = "extra" if len(missing) == 1 else "extras"
    raise InputError(
        f"{recipe.file}: extras: {declared.name} {declared.version} (release {release_id}) declares no {noun} {which}; "
        f"it declares: {', '.join(declared.extras) or 'no extras'}",
        hint=f"drop {which} from extras in {recipe.file}; list a distribution the venv needs under 'requirements'",
    )


# reading metadata from the index ------------------------------------------

def _wheel_preference(f: IndexFile) -> tuple[int, int, str]:
    # PEP 658 metadata first (one small request), then pure wheels (smallest, one for every target)
    return (0 if f.metadata else 1, 0 if f.filename.endswith("-none-any.whl") else 1, f.filename)


def _read_wheel_metadata(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        if not names:
            raise IntegrityError(f"{path.name}: no *.dist-info/METADATA in the wheel")
        return zf.read(names[0]).decode("utf-8", "replace")


def _read_sdist_metadata(path: Path) -> str | None:
    """The sdist's top-level PKG-INFO, or None if it has none."""
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if re.fullmatch(r"[^/]+/PKG-INFO", n)]
            return zf.read(names[0]).decode("utf-8", "replace") if names else None
    with tarfile.open(path) as tf:
        for member in tf:
            if member.isfile() and re.fullmatch(r"(\./)?[^/]+/PKG-INFO", member.name):
                handle = tf.extractfile(member)
                return handle.read().decode("utf-8", "replace") if handle else None
    return None


def _download(http: Http, cache: Cache, f: IndexFile, scratch: Path) -> Path:
    """The file, from the shared download cache when its digest is known (the wheelhouse reuses it)."""
    if f.sha256:
        cached, _ = cache.cached_file(f.sha256, f.filename)
        if cached:
            return cached
        dest = cache.file_path(f.sha256, f.filename)
    else:
        dest = scratch / f.filename
    http.download(f.url, dest, f.sha256)
    return dest


def _metadata_from_index(index: PackageIndex, http: Http, cache: Cache, name: str, version: str) -> DeclaredExtras:
    files = index.release_files(name, version)
    usable = [f for f in files if not f.yanked] or files
    wheels = sorted((f for f in usable if f.is_wheel), key=_wheel_preference)
    for f in wheels:
        if f.metadata:
            body, _ = http.get(f.metadata_url)
            if f.metadata_sha256 and hashlib.sha256(body).hexdigest() != f.metadata_sha256:
                raise IntegrityError(f"{f.metadata_url}: sha256 does not match the index's {f.metadata_sha256}")
            return DeclaredExtras(name, version, provides_extra(body.decode("utf-8", "replace")), f.filename)
    with tempfile.TemporaryDirectory(prefix="stackyard-metadata-") as tmp:
        if wheels:
            path = _download(http, cache, wheels[0], Path(tmp))
            return DeclaredExtras(name, version, provides_extra(_read_wheel_metadata(path)), wheels[0].filename)
        for f in usable:
            if f.is_sdist:
                text = _read_sdist_metadata(_download(http, cache, f, Path(tmp)))
                extras = provides_extra(text, sdist=True) if text is not None else None
                return DeclaredExtras(name, version, extras, f.filename)
    return DeclaredExtras(name, version, None, "no wheel or sdist")


def declared_extras(index: PackageIndex, http: Http, cache_root: Path, name: str, version: str) -> DeclaredExtras:
    """The extras ``name==version`` declares, from the metadata cache or the index."""
    record = cache_root / "metadata" / f"{canonicalize_name(name)}-{version}.json"
    try:
        data = json.loads(record.read_text())
        if data.get("format") == METADATA_CACHE_FORMAT:
            extras = data["extras"]
            return DeclaredExtras(name, version, tuple(extras) if extras is not None else None, data["origin"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        pass
    found = _metadata_from_index(index, http, Cache(cache_root), name, version)
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"format": METADATA_CACHE_FORMAT, "extras": found.extras, "origin": found.origin}))
    os.replace(tmp, record)
    return found


def verify_extras(config: Config, release: Release, recipe: Recipe, *, index: PackageIndex | None = None) -> DeclaredExtras | None:
    """Fail if the recipe asks for an extra its project does not declare at the release's version.

    Returns what the project declares, or None when there was nothing to check
    (no extras, or a git source).
    """
    if not recipe.extras or not recipe.source.pypi:
        return None
    version = recipe.version(release.id)
    if index is None:
        index = PackageIndex(config.index.url, Http(config.index.retries, config.index.timeout))
    declared = declared_extras(index, index.http, config.paths.cache, recipe.source.pypi, version)
    check_recipe_extras(recipe, release.id, declared)
    return declared

