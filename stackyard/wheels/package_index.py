"""Reading a PEP 691 (JSON) or PEP 503 (HTML) simple index."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from dataclasses import dataclass
from html.parser import HTMLParser

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from stackyard.errors import ResolutionError
from stackyard.http import Http, NotFound

JSON_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"


@dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str
    sha256: str | None
    yanked: bool = False
    metadata: bool = False  # PEP 658/714: the core metadata is served at url + ".metadata"
    metadata_sha256: str | None = None

    @property
    def metadata_url(self) -> str:
        return f"{self.url}.metadata"

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def is_sdist(self) -> bool:
        return self.filename.endswith((".tar.gz", ".zip", ".tar.bz2"))

    def version(self) -> Version | None:
        try:
            if self.is_wheel:
                return parse_wheel_filename(self.filename)[1]
            if self.filename.endswith((".tar.gz", ".zip")):
                return parse_sdist_filename(self.filename)[1]
        except (ValueError, InvalidVersion):
            return None
        return None


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            d = dict(attrs)
            if d.get("href"):
                self.links.append((d["href"] or "", d))


def _sha256_fragment(url: str) -> tuple[str, str | None]:
    base, _, fragment = url.partition("#")
    m = re.match(r"sha256=([0-9a-f]{64})", fragment)
    return base, (m.group(1) if m else None)


class PackageIndex:
    def __init__(self, url: str, http: Http) -> None:
        self.url = url.rstrip("/")
        self.http = http
        self._pages: dict[str, list[IndexFile]] = {}
        self._lock = threading.Lock()

    def project_url(self, name: str) -> str:
        return f"{self.url}/{canonicalize_name(name)}/"

    def files(self, name: str) -> list[IndexFile]:
        key = canonicalize_name(name)
        with self._lock:
            if key in self._pages:
                return self._pages[key]
        page_url = self.project_url(name)
        try:
            body, ctype = self.http.get(page_url, headers={"Accept": JSON_ACCEPT})
        except NotFound:
            raise ResolutionError(f"{name}: no such project on {self.url}", hint="check the name in the constraints or lock file") from None
        files = self._parse(body, ctype, page_url)
        with self._lock:
            self._pages[key] = files
        return files

    @staticmethod
    def _parse(body: bytes, ctype: str, page_url: str) -> list[IndexFile]:
        if "json" in ctype:
            data = json.loads(body)
            out = []
            for f in data.get("files", []):
                url = urllib.parse.urljoin(page_url, f["url"])
                url, frag = _sha256_fragment(url)
                meta = f.get("core-metadata", f.get("dist-info-metadata", False))
                meta_sha = meta.get("sha256") if isinstance(meta, dict) else None
                out.append(IndexFile(f["filename"], url, f.get("hashes", {}).get("sha256") or frag, bool(f.get("yanked")),
                                     bool(meta), meta_sha))
            return out
        parser = _Links()
        parser.feed(body.decode("utf-8", "replace"))
        out = []
        for href, attrs in parser.links:
            url, sha = _sha256_fragment(urllib.parse.urljoin(page_url, href))
            filename = urllib.parse.unquote(url.rsplit("/", 1)[-1])
            key = next((k for k in ("data-core-metadata", "data-dist-info-metadata") if k in attrs), None)
            meta = (attrs[key] or "true") if key else "false"
            meta_sha = re.match(r"sha256=([0-9a-f]{64})$", meta)
            out.append(IndexFile(filename, url, sha, "data-yanked" in attrs, meta != "false",
                                 meta_sha.group(1) if meta_sha else None))
        return out

    def release_files(self, name: str, version: str) -> list[IndexFile]:
        """Files of one release; raises naming the pin if there are none."""
        wanted = Version(version)
        files = [f for f in self.files(name) if f.version() == wanted]
        if not files:
            raise ResolutionError(
                f"{name}=={version}: no such release on {self.url}",
                hint="fix the pin in upper-constraints or the lock (see 'stackyard lock')",
            )
        return files
