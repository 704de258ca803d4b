"""stackyard.wheels.simple_index: the PEP 503 index written beside a wheelhouse."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from stackyard.http import Http
from stackyard.wheels.package_index import PackageIndex
from stackyard.wheels.simple_index import write_simple_index

WHEELS = {
    "oslo_config-9.7.2-py3-none-any.whl": b"oslo.config wheel",
    "oslo.config-9.7.1-py3-none-any.whl": b"older oslo.config wheel",
    "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": b"pyyaml wheel",
    "six-1.17.0-py2.py3-none-any.whl": b"six wheel",
}


def make_wheelhouse(root: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    shas = {}
    for name, data in WHEELS.items():
        (root / name).write_bytes(data)
        shas[name] = hashlib.sha256(data).hexdigest()
    write_simple_index(root, shas)
    return shas


def test_one_page_per_canonical_project(tmp_path: Path) -> None:
    make_wheelhouse(tmp_path)
    simple = tmp_path / "simple"
    assert sorted(p.name for p in simple.iterdir() if p.is_dir()) == ["oslo-config", "pyyaml", "six"]
    root = (simple / "index.html").read_text()
    assert re.findall(r'<a href="([^"]+)">', root) == ["oslo-config/", "pyyaml/", "six/"]


def test_links_are_relative_with_sha256_fragments(tmp_path: Path) -> None:
    shas = make_wheelhouse(tmp_path)
    page = (tmp_path / "simple" / "oslo-config" / "index.html").read_text()
    hrefs = re.findall(r'<a href="([^"]+)">', page)
    assert hrefs == [
        f"../../oslo.config-9.7.1-py3-none-any.whl#sha256={shas['oslo.config-9.7.1-py3-none-any.whl']}",
        f"../../oslo_config-9.7.2-py3-none-any.whl#sha256={shas['oslo_config-9.7.2-py3-none-any.whl']}",
    ]
    assert "Links for oslo-config" in page
    six = (tmp_path / "simple" / "six" / "index.html").read_text()
    assert re.findall(r'<a href="([^"]+)">', six) == [f"../../six-1.17.0-py2.py3-none-any.whl#sha256={shas['six-1.17.0-py2.py3-none-any.whl']}"]


def test_links_resolve_to_the_wheel_files(tmp_path: Path) -> None:
    """Read back with the index reader: every link points at an existing file with the right digest."""
    shas = make_wheelhouse(tmp_path / "wh")
    index = PackageIndex((tmp_path / "wh" / "simple").as_uri(), Http(retries=0, backoff=0))
    seen = {}
    for project in ["oslo.config", "PyYAML", "six"]:
        for f in index.files(project):
            path = Path(f.url.removeprefix("file://"))
            assert path.parent == tmp_path / "wh"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256
            seen[f.filename] = f.sha256
    assert seen == shas


def test_rewriting_replaces_pages(tmp_path: Path) -> None:
    make_wheelhouse(tmp_path)
    write_simple_index(tmp_path, {"six-1.17.0-py2.py3-none-any.whl": "0" * 64})
    six = (tmp_path / "simple" / "six" / "index.html").read_text()
    assert "#sha256=" + "0" * 64 in six
    root = (tmp_path / "simple" / "index.html").read_text()
    assert re.findall(r'<a href="([^"]+)">', root) == ["six/"]
