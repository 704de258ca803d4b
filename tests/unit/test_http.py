"""stackyard.http.Http with file:// URLs (no network): reads and hash-checked downloads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from stackyard.errors import FetchError, IntegrityError
from stackyard.http import Http, NotFound

DATA = b"a wheel, more or less"
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def http() -> Http:
    return Http(retries=0, backoff=0)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    f = tmp_path / "src" / "demo-1.0-py3-none-any.whl"
    f.parent.mkdir()
    f.write_bytes(DATA)
    return f


def test_get_file(http: Http, source: Path) -> None:
    assert http.get(source.as_uri()) == (DATA, "text/html")
    assert http.get_text(source.as_uri()) == DATA.decode()


def test_get_directory_reads_its_index(http: Http, tmp_path: Path) -> None:
    d = tmp_path / "simple" / "demo"
    d.mkdir(parents=True)
    (d / "index.html").write_text("<html>demo</html>")
    assert http.get(d.as_uri() + "/")[0] == b"<html>demo</html>"


def test_get_percent_encoded_path(http: Http, tmp_path: Path) -> None:
    f = tmp_path / "a b+c.txt"
    f.write_text("x")
    assert http.get(f.as_uri())[0] == b"x"


def test_get_missing_is_not_found(http: Http, tmp_path: Path) -> None:
    with pytest.raises(NotFound) as info:
        http.get((tmp_path / "missing.html").as_uri())
    assert isinstance(info.value, FetchError)
    assert "missing.html" in str(info.value)


def test_download_verifies_sha256(http: Http, source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "deep" / source.name
    assert http.download(source.as_uri(), dest, DIGEST) == DIGEST
    assert dest.read_bytes() == DATA
    assert sorted(p.name for p in dest.parent.iterdir()) == [source.name]  # no partial file left


def test_download_without_expected_digest_returns_it(http: Http, source: Path, tmp_path: Path) -> None:
    assert http.download(source.as_uri(), tmp_path / "x.whl", None) == DIGEST
    assert (tmp_path / "x.whl").read_bytes() == DATA


def test_download_mismatch_raises_integrity_error(http: Http, source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out" / source.name
    wrong = "0" * 64
    with pytest.raises(IntegrityError) as info:
        http.download(source.as_uri(), dest, wrong)
    assert DIGEST in str(info.value) and wrong in str(info.value)
    assert source.as_uri() in str(info.value)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # the partial download is removed


def test_download_mismatch_after_retries(source: Path, tmp_path: Path) -> None:
    http = Http(retries=2, backoff=0)
    with pytest.raises(IntegrityError):
        http.download(source.as_uri(), tmp_path / "out" / source.name, "0" * 64)
    assert list((tmp_path / "out").iterdir()) == []


def test_download_keeps_an_existing_file_on_mismatch(http: Http, source: Path, tmp_path: Path) -> None:
    dest = tmp_path / source.name
    dest.write_bytes(b"previous good copy")
    with pytest.raises(IntegrityError):
        http.download(source.as_uri(), dest, "0" * 64)
    assert dest.read_bytes() == b"previous good copy"


def test_download_missing_is_not_found(http: Http, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        http.download((tmp_path / "nope.whl").as_uri(), tmp_path / "out" / "nope.whl", None)
    assert not (tmp_path / "out" / "nope.whl").exists()
