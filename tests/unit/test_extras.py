"""stackyard.wheels.extras: a recipe's extras against the project's Provides-Extra (metadata text and a file:// index)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Callable

import pytest

from stackyard.config import Config
from stackyard.errors import InputError, IntegrityError, exit_code
from stackyard.http import Http
from stackyard.recipes import Recipe, load_recipe
from stackyard.wheels.extras import (
    DeclaredExtras,
    check_recipe_extras,
    declared_extras,
    normalize_extra,
    provides_extra,
    undeclared_extras,
    verify_extras,
)
from stackyard.wheels.package_index import PackageIndex

# keystone 27.0.2's METADATA, shortened: ldap and test, no memcache
KEYSTONE_27 = """\
Metadata-Version: 2.1
Name: keystone
Version: 27.0.2
Requires-Python: >=3.9
Requires-Dist: pbr>=6.0.0
Requires-Dist: oslo.cache>=1.26.0
Provides-Extra: ldap
Requires-Dist: python-ldap>=3.0.0; extra == "ldap"
Requires-Dist: ldappool>=2.3.1; extra == "ldap"
Provides-Extra: test
Requires-Dist: stestr>=1.0.0; extra == "test"

Provides-Extra: memcache
(the description: a header-looking line here is not a field)
"""

KEYSTONE = """\
name: keystone
source:
  pypi: keystone
versions:
  "2025.1": "27.0.2"
extras: [ldap, memcache]
"""


@pytest.fixture
def keystone(make_recipe: Callable[..., Path]) -> Recipe:
    return load_recipe(make_recipe("keystone", KEYSTONE))


def test_provides_extra_reads_the_fields_not_the_description() -> None:
    assert provides_extra(KEYSTONE_27) == ("ldap", "test")
    assert provides_extra("Metadata-Version: 2.1\nName: x\nVersion: 1\n") == ()


def test_extras_are_normalized_as_pep_685_says() -> None:
    assert normalize_extra("Memcache_Pool") == normalize_extra("memcache.pool") == "memcache-pool"
    assert provides_extra("Metadata-Version: 2.1\nProvides-Extra: Memcache_Pool\nProvides-Extra: memcache-pool\n") == ("memcache-pool",)
    assert undeclared_extras(("memcache_pool", "LDAP", "redis"), ("memcache-pool", "ldap")) == ["redis"]


@pytest.mark.parametrize(
    ("pkg_info", "expected"),
    [
        ("Metadata-Version: 2.1\nName: a\nVersion: 1\nProvides-Extra: fast\n", ("fast",)),
        ("Metadata-Version: 2.1\nName: a\nVersion: 1\n", ()),  # setuptools and pbr write every extra from 2.1 on
        ("Metadata-Version: 2.2\nName: a\nVersion: 1\nDynamic: Provides-Extra\nProvides-Extra: fast\n", None),
        ("Metadata-Version: 2.4\nName: a\nVersion: 1\nDynamic: Requires-Dist\nProvides-Extra: fast\n", ("fast",)),
        ("Metadata-Version: 1.2\nName: a\nVersion: 1\n", None),  # too old to say
        ("Metadata-Version: two\nName: a\n", None),
    ],
)
def test_sdist_pkg_info_is_trusted_only_when_it_can_tell(pkg_info: str, expected: tuple[str, ...] | None) -> None:
    assert provides_extra(pkg_info, sdist=True) == expected


def test_an_undeclared_extra_fails_naming_recipe_extra_and_declared(keystone: Recipe) -> None:
    declared = DeclaredExtras("keystone", "27.0.2", provides_extra(KEYSTONE_27), "keystone-27.0.2-py3-none-any.whl")
    with pytest.raises(InputError) as info:
        check_recipe_extras(keystone, "2025.1", declared)
    err = info.value
    assert exit_code(err) == 2
    assert err.message == (
        f"{keystone.file}: extras: keystone 27.0.2 (release 2025.1) declares no extra 'memcache'; it declares: ldap, test"
    )
    assert "\n" not in err.message and "requirements" in (err.hint or "")


def test_declared_extras_pass_and_unknown_metadata_is_not_a_failure(keystone: Recipe) -> None:
    check_recipe_extras(keystone, "2025.1", DeclaredExtras("keystone", "27.0.2", ("ldap", "memcache"), "w"))
    check_recipe_extras(keystone, "2025.1", DeclaredExtras("keystone", "27.0.2", None, "an sdist with dynamic extras"))
    with pytest.raises(InputError, match=r"declares no extras 'ldap', 'memcache'; it declares: no extras"):
        check_recipe_extras(keystone, "2025.1", DeclaredExtras("keystone", "27.0.2", (), "w"))


# the metadata, from a file:// index -------------------------------------------------

def _wheel(path: Path, metadata: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("keystone/__init__.py", "")
        zf.writestr("keystone-27.0.2.dist-info/METADATA", metadata)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _sdist(path: Path, pkg_info: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, text in (("keystone-27.0.2/setup.cfg", "[metadata]\n"), ("keystone-27.0.2/PKG-INFO", pkg_info)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _index(root: Path, links: list[str]) -> PackageIndex:
    page = root / "simple" / "keystone"
    page.mkdir(parents=True)
    (page / "index.html").write_text("<html><body>\n" + "\n".join(links) + "\n</body></html>")
    return PackageIndex((root / "simple").as_uri(), Http(retries=0, backoff=0))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_pep658_metadata_is_preferred_and_cached(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "keystone-27.0.2-py3-none-any.whl", "Metadata-Version: 2.1\nProvides-Extra: from-the-wheel\n")
    (tmp_path / "keystone-27.0.2-py3-none-any.whl.metadata").write_text(KEYSTONE_27)
    meta_sha = _sha(KEYSTONE_27.encode())
    index = _index(tmp_path, [
        f'<a href="../../keystone-27.0.2-py3-none-any.whl#sha256={_sha(wheel)}" data-core-metadata="sha256={meta_sha}">w</a>',
    ])
    cache = tmp_path / "cache"
    found = declared_extras(index, index.http, cache, "keystone", "27.0.2")
    assert found == DeclaredExtras("keystone", "27.0.2", ("ldap", "test"), "keystone-27.0.2-py3-none-any.whl")
    assert not (cache / "files").exists()  # the wheel itself was not downloaded
    record = json.loads((cache / "metadata" / "keystone-27.0.2.json").read_text())
    assert record["extras"] == ["ldap", "test"]
    # a second look asks the index nothing
    (tmp_path / "simple" / "keystone" / "index.html").unlink()
    fresh = PackageIndex((tmp_path / "simple").as_uri(), Http(retries=0, backoff=0))
    assert declared_extras(fresh, fresh.http, cache, "keystone", "27.0.2").extras == ("ldap", "test")


def test_pep658_metadata_with_a_wrong_digest_is_an_integrity_error(tmp_path: Path) -> None:
    _wheel(tmp_path / "keystone-27.0.2-py3-none-any.whl", KEYSTONE_27)
    (tmp_path / "keystone-27.0.2-py3-none-any.whl.metadata").write_text(KEYSTONE_27)
    index = _index(tmp_path, [f'<a href="../../keystone-27.0.2-py3-none-any.whl" data-dist-info-metadata="sha256={"0" * 64}">w</a>'])
    with pytest.raises(IntegrityError) as info:
        declared_extras(index, index.http, tmp_path / "cache", "keystone", "27.0.2")
    assert exit_code(info.value) == 4


def test_wheel_metadata_without_pep658_lands_in_the_download_cache(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "keystone-27.0.2-py3-none-any.whl", KEYSTONE_27)
    sdist = _sdist(tmp_path / "keystone-27.0.2.tar.gz", "Metadata-Version: 2.1\nProvides-Extra: from-the-sdist\n")
    index = _index(tmp_path, [
        f'<a href="../../keystone-27.0.2.tar.gz#sha256={_sha(sdist)}">s</a>',
        f'<a href="../../keystone-27.0.2-py3-none-any.whl#sha256={_sha(wheel)}">w</a>',
    ])
    cache = tmp_path / "cache"
    found = declared_extras(index, index.http, cache, "keystone", "27.0.2")
    assert found.extras == ("ldap", "test") and found.origin == "keystone-27.0.2-py3-none-any.whl"
    assert (cache / "files" / "sha256" / _sha(wheel)[:2] / _sha(wheel) / "keystone-27.0.2-py3-none-any.whl").exists()


def test_sdist_only_projects_use_pkg_info(tmp_path: Path) -> None:
    sdist = _sdist(tmp_path / "keystone-27.0.2.tar.gz", "Metadata-Version: 2.1\nName: keystone\nProvides-Extra: ldap\n")
    index = _index(tmp_path, [f'<a href="../../keystone-27.0.2.tar.gz#sha256={_sha(sdist)}">s</a>'])
    found = declared_extras(index, index.http, tmp_path / "cache", "keystone", "27.0.2")
    assert found == DeclaredExtras("keystone", "27.0.2", ("ldap",), "keystone-27.0.2.tar.gz")


def test_verify_extras_for_a_release(tmp_path: Path, make_config: Callable[..., Config], keystone: Recipe) -> None:
    (tmp_path / "keystone-27.0.2-py3-none-any.whl.metadata").write_text(KEYSTONE_27)
    _index(tmp_path, ['<a href="../../keystone-27.0.2-py3-none-any.whl" data-core-metadata="true">w</a>'])
    config = make_config(index_url=(tmp_path / "simple").as_uri())
    release = config.release("2025.1")
    with pytest.raises(InputError, match="declares no extra 'memcache'; it declares: ldap, test"):
        verify_extras(config, release, keystone)
    assert (config.paths.cache / "metadata" / "keystone-27.0.2.json").exists()


def test_recipes_without_extras_or_from_git_need_no_index(
    make_config: Callable[..., Config], make_recipe: Callable[..., Path]
) -> None:
    config = make_config(index_url="http://127.0.0.1:9/simple")  # nothing listens: any request would fail
    release = config.release("2025.1")
    plain = load_recipe(make_recipe("plain", 'name: plain\nsource: {pypi: plain}\nversions: {"2025.1": "1.0"}\n'))
    git = load_recipe(make_recipe("gitty", 'name: gitty\nsource: {git: "https://example.invalid/gitty.git"}\n'
                                  'versions: {"2025.1": "1.0"}\nextras: [nosuch]\n'))
    assert verify_extras(config, release, plain) is None
    assert verify_extras(config, release, git) is None
