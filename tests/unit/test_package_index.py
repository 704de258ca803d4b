"""stackyard.wheels.package_index: PEP 691 JSON and PEP 503 HTML simple pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.version import Version

from stackyard.errors import ResolutionError
from stackyard.http import Http
from stackyard.wheels.package_index import IndexFile, PackageIndex

PAGE = "https://index.example/simple/oslo-config/"
A = "a" * 64
B = "b" * 64
C = "c" * 64


def test_parse_pep691_json() -> None:
    body = json.dumps(
        {
            "meta": {"api-version": "1.1"},
            "name": "oslo-config",
            "files": [
                {
                    "filename": "oslo.config-9.7.2-py3-none-any.whl",
                    "url": "../../packages/oslo.config-9.7.2-py3-none-any.whl",
                    "hashes": {"sha256": A},
                },
                {
                    "filename": "oslo.config-9.7.1.tar.gz",
                    "url": f"https://files.example/oslo.config-9.7.1.tar.gz#sha256={B}",
                    "hashes": {},
                    "yanked": "broken metadata",
                },
                {
                    "filename": "oslo.config-9.7.0.tar.gz",
                    "url": "https://files.example/oslo.config-9.7.0.tar.gz",
                    "hashes": {"md5": "0" * 32},
                    "yanked": False,
                },
            ],
        }
    ).encode()
    files = PackageIndex._parse(body, "application/vnd.pypi.simple.v1+json", PAGE)
    assert files == [
        IndexFile("oslo.config-9.7.2-py3-none-any.whl", "https://index.example/packages/oslo.config-9.7.2-py3-none-any.whl", A, False),
        IndexFile("oslo.config-9.7.1.tar.gz", "https://files.example/oslo.config-9.7.1.tar.gz", B, True),
        IndexFile("oslo.config-9.7.0.tar.gz", "https://files.example/oslo.config-9.7.0.tar.gz", None, False),
    ]


def test_parse_pep503_html() -> None:
    body = f"""<!DOCTYPE html>
<html><body>
<h1>Links for oslo-config</h1>
<a href="../../packages/oslo.config-9.7.2-py3-none-any.whl#sha256={A}" data-requires-python="&gt;=3.9">oslo.config-9.7.2-py3-none-any.whl</a><br>
<a href="https://files.example/oslo.config-9.7.1.tar.gz#sha256={B}" data-yanked="">oslo.config-9.7.1.tar.gz</a><br>
<a href="https://files.example/oslo.config-9.7.0.tar.gz#md5={'0' * 32}" data-yanked>oslo.config-9.7.0.tar.gz</a><br>
<a href="/p/oslo.config-9.6.0%2Blocal-py3-none-any.whl#sha256={C}">x</a>
<a name="anchor-without-href">ignored</a>
</body></html>""".encode()
    files = PackageIndex._parse(body, "text/html", PAGE)
    assert files == [
        IndexFile("oslo.config-9.7.2-py3-none-any.whl", "https://index.example/packages/oslo.config-9.7.2-py3-none-any.whl", A, False),
        IndexFile("oslo.config-9.7.1.tar.gz", "https://files.example/oslo.config-9.7.1.tar.gz", B, True),
        IndexFile("oslo.config-9.7.0.tar.gz", "https://files.example/oslo.config-9.7.0.tar.gz", None, True),
        IndexFile("oslo.config-9.6.0+local-py3-none-any.whl", "https://index.example/p/oslo.config-9.6.0%2Blocal-py3-none-any.whl", C, False),
    ]


def test_index_file_kind_and_version() -> None:
    wheel = IndexFile("oslo.config-9.7.2-py3-none-any.whl", "u", None)
    sdist = IndexFile("oslo.config-9.7.2.tar.gz", "u", None)
    zipped = IndexFile("oslo_config-9.7.2.zip", "u", None)
    other = IndexFile("oslo.config-9.7.2.exe", "u", None)
    assert wheel.is_wheel and not wheel.is_sdist
    assert sdist.is_sdist and not sdist.is_wheel
    assert wheel.version() == sdist.version() == zipped.version() == Version("9.7.2")
    assert other.version() is None
    assert IndexFile("garbage.tar.gz", "u", None).version() is None


def write_page(root: Path, project: str, links: list[str]) -> None:
    d = root / "simple" / project
    d.mkdir(parents=True)
    (d / "index.html").write_text("<html><body>" + "".join(f'<a href="{h}">{h}</a>' for h in links) + "</body></html>")


def test_files_from_a_file_index(tmp_path: Path) -> None:
    write_page(tmp_path, "oslo-config", [f"../../oslo.config-9.7.2-py3-none-any.whl#sha256={A}", "../../oslo.config-9.7.1.tar.gz"])
    index = PackageIndex((tmp_path / "simple").as_uri() + "/", Http(retries=0, backoff=0))
    assert index.project_url("Oslo_Config") == (tmp_path / "simple").as_uri() + "/oslo-config/"
    files = index.files("oslo.config")
    assert [f.filename for f in files] == ["oslo.config-9.7.2-py3-none-any.whl", "oslo.config-9.7.1.tar.gz"]
    assert files[0].url == (tmp_path / "oslo.config-9.7.2-py3-none-any.whl").as_uri()
    assert files[0].sha256 == A
    # pages are cached per canonical name: a removed page is not read again
    (tmp_path / "simple" / "oslo-config" / "index.html").unlink()
    assert index.files("OSLO-config") == files
    assert [f.filename for f in index.release_files("oslo.config", "9.7.1")] == ["oslo.config-9.7.1.tar.gz"]


def test_release_files_errors(tmp_path: Path) -> None:
    write_page(tmp_path, "six", ["../../six-1.17.0-py2.py3-none-any.whl"])
    index = PackageIndex((tmp_path / "simple").as_uri(), Http(retries=0, backoff=0))
    with pytest.raises(ResolutionError) as info:
        index.release_files("six", "1.16.0")
    assert "six==1.16.0" in str(info.value)
    with pytest.raises(ResolutionError) as info:
        index.files("no-such-project")
    assert "no-such-project: no such project" in str(info.value)


def test_pep658_metadata_availability() -> None:
    body = json.dumps({"files": [
        {"filename": "a-1-py3-none-any.whl", "url": "a-1-py3-none-any.whl", "hashes": {}, "core-metadata": {"sha256": A}},
        {"filename": "a-2-py3-none-any.whl", "url": "a-2-py3-none-any.whl", "hashes": {}, "dist-info-metadata": True},
        {"filename": "a-3-py3-none-any.whl", "url": "a-3-py3-none-any.whl", "hashes": {}, "core-metadata": False},
    ]}).encode()
    files = PackageIndex._parse(body, "application/vnd.pypi.simple.v1+json", PAGE)
    assert [(f.metadata, f.metadata_sha256) for f in files] == [(True, A), (True, None), (False, None)]
    assert files[0].metadata_url == PAGE + "a-1-py3-none-any.whl.metadata"
    html = (f'<a href="a-1-py3-none-any.whl" data-core-metadata="sha256={A}">1</a>'
            '<a href="a-2-py3-none-any.whl" data-dist-info-metadata="true">2</a>'
            '<a href="a-3-py3-none-any.whl" data-core-metadata>3</a>'
            '<a href="a-4-py3-none-any.whl">4</a>').encode()
    files = PackageIndex._parse(html, "text/html", PAGE)
    assert [(f.metadata, f.metadata_sha256) for f in files] == [(True, A), (True, None), (True, None), (False, None)]
