"""HTTP with bounded retries and exponential backoff, hash-checked downloads.

``file://`` URLs are served from disk so a local index works the same way.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.parse
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from stackyard.errors import FetchError, IntegrityError

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
RETRY_STATUS = {429, 500, 502, 503, 504}
TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class NotFound(FetchError):
    """The server answered 404: retrying will not help."""


class Http:
    def __init__(self, retries: int = 4, timeout: float = 60, pool: int = 16, backoff: float = 0.5) -> None:
        self.retries, self.timeout, self.backoff = retries, timeout, backoff
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or netrc from the machine's environment
        if Path(SYSTEM_CA_BUNDLE).exists():
            self.session.verify = SYSTEM_CA_BUNDLE  # the system's CAs, as apt and pip use them
        adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "stackyard"

    def _attempts(self, url: str):  # type: ignore[no-untyped-def]
        """Yields attempt numbers; sleeps with backoff between them."""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), 10))
            yield attempt

    def get(self, url: str, headers: dict[str, str] | None = None) -> tuple[bytes, str]:
        """Body and content type of ``url``."""
        if url.startswith("file://"):
            path = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
            if path.is_dir():
                path = path / "index.html"
            if not path.exists():
                raise NotFound(f"{url}: not found")
            return path.read_bytes(), "text/html"
        last: str = ""
        for _ in self._attempts(url):
            resp = self._open(url, headers)
            if isinstance(resp, str):
                last = resp
                continue
            return resp.content, resp.headers.get("Content-Type", "")
        raise FetchError(f"{url}: failed after {self.retries + 1} attempts ({last})", hint="check the network or the index URL in stackyard.toml")

    def _open(self, url: str, headers: dict[str, str] | None = None, stream: bool = False) -> requests.Response | str:
        """The response, or why the request is worth retrying; raises when retrying cannot help."""
        try:
            resp = self.session.get(url, headers=headers, timeout=self.timeout, stream=stream)
        except requests.exceptions.SSLError as exc:
            raise FetchError(f"{url}: TLS verification failed: {exc}", hint=f"install the index's CA into {SYSTEM_CA_BUNDLE}") from None
        except TRANSIENT as exc:
            return f"{type(exc).__name__}: {exc}"
        if resp.status_code < 400:
            return resp
        resp.close()
        if resp.status_code == 404:
            raise NotFound(f"{url}: 404 Not Found")
        if resp.status_code in RETRY_STATUS:
            return f"HTTP {resp.status_code}"
        raise FetchError(f"{url}: HTTP {resp.status_code}")

    def get_text(self, url: str) -> str:
        return self.get(url)[0].decode()

    def download(self, url: str, dest: Path, sha256: str | None) -> str:
        """Download ``url`` to ``dest`` atomically; verify ``sha256`` if given; return the digest."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        last = ""
        for attempt in self._attempts(url):
            digest = hashlib.sha256()
            try:
                if url.startswith("file://"):
                    data = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).read_bytes()
                    tmp.write_bytes(data)
                    digest.update(data)
                else:
                    opened = self._open(url, stream=True)
                    if isinstance(opened, str):
                        last = opened
                        continue
                    with opened as resp:
                        expected = resp.headers.get("Content-Length")
                        size = 0
                        with tmp.open("wb") as out:
                            for chunk in resp.iter_content(1 << 20):
                                out.write(chunk)
                                digest.update(chunk)
                                size += len(chunk)
                        if expected is not None and size != int(expected):
                            last = f"connection closed after {size} of {expected} bytes"
                            continue
            except TRANSIENT as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            except FileNotFoundError:
                raise NotFound(f"{url}: not found") from None
            hexdigest = digest.hexdigest()
            if sha256 and hexdigest != sha256:
                last = f"sha256 {hexdigest} does not match the index's {sha256}"
                tmp.unlink(missing_ok=True)
                if attempt == self.retries:
                    raise IntegrityError(f"{url}: {last}")
                continue
            os.replace(tmp, dest)
            return hexdigest
        tmp.unlink(missing_ok=True)
        raise FetchError(f"{url}: download failed after {self.retries + 1} attempts ({last})", hint="check the network; a re-run resumes from the cache")
