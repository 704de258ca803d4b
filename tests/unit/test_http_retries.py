"""stackyard.http.Http over HTTP(S) with its requests session answered by a test double (no network):
which failures are retried, which are final, and what a download must satisfy before it lands."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import requests

from stackyard.errors import FetchError, IntegrityError
from stackyard.http import Http, NotFound

URL = "https://index.example/simple/six/"
DATA = b"a wheel, more or less"
DIGEST = hashlib.sha256(DATA).hexdigest()


class Answer:
    """A streamed response: its status, headers and body (optionally cut short)."""

    def __init__(self, status: int = 200, body: bytes = DATA, headers: dict[str, str] | None = None,
                 length: int | None = None) -> None:
        self.status_code, self.body = status, body
        self.headers = headers if headers is not None else {"Content-Type": "text/html"}
        if length is not None:
            self.headers["Content-Length"] = str(length)
        self.closed = False

    @property
    def content(self) -> bytes:
        return self.body

    def iter_content(self, size: int) -> list[bytes]:
        return [self.body[i:i + 7] for i in range(0, len(self.body), 7)]

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> "Answer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Session:
    def __init__(self, *answers: Answer | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get(self, url: str, **kwargs: Any) -> Answer:
        self.calls.append((url, kwargs))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def http(*answers: Answer | Exception, retries: int = 2) -> tuple[Http, Session]:
    h = Http(retries=retries, timeout=7, backoff=0)
    assert h.session.trust_env is False and h.session.headers["User-Agent"] == "stackyard"
    session = Session(*answers)
    h.session = session  # type: ignore[assignment]
    return h, session


def test_a_page_comes_back_with_its_content_type() -> None:
    h, session = http(Answer(headers={"Content-Type": "application/vnd.pypi.simple.v1+json"}))
    assert h.get(URL, headers={"Accept": "json"}) == (DATA, "application/vnd.pypi.simple.v1+json")
    assert session.calls == [(URL, {"headers": {"Accept": "json"}, "timeout": 7, "stream": False})]


def test_transient_failures_are_retried_then_reported_with_the_last_reason() -> None:
    h, session = http(Answer(503), requests.ConnectionError("reset by peer"), Answer())
    assert h.get_text(URL) == DATA.decode() and len(session.calls) == 3
    h, _ = http(Answer(502), Answer(429), requests.Timeout("read timed out"))
    with pytest.raises(FetchError, match=r"failed after 3 attempts \(Timeout: read timed out\)"):
        h.get(URL)


def test_404_and_other_client_errors_are_final() -> None:
    missing = Answer(404)
    h, session = http(missing, Answer())
    with pytest.raises(NotFound, match="404 Not Found"):
        h.get(URL)
    assert len(session.calls) == 1 and missing.closed
    h, session = http(Answer(403), Answer())
    with pytest.raises(FetchError, match=f"{URL}: HTTP 403"):
        h.get(URL)
    assert len(session.calls) == 1


def test_a_tls_failure_names_the_ca_bundle_and_is_not_retried() -> None:
    h, session = http(requests.exceptions.SSLError("self-signed certificate"), Answer())
    with pytest.raises(FetchError, match="TLS verification failed: self-signed certificate") as info:
        h.get(URL)
    assert len(session.calls) == 1 and "CA" in (info.value.hint or "")


def test_a_download_lands_atomically_with_its_digest(tmp_path: Path) -> None:
    h, session = http(Answer(length=len(DATA)))
    dest = tmp_path / "wheels" / "six-1.17.0-py3-none-any.whl"
    assert h.download(URL, dest, DIGEST) == DIGEST
    assert dest.read_bytes() == DATA and [p.name for p in dest.parent.iterdir()] == [dest.name]
    assert session.calls[0][1]["stream"] is True


def test_a_short_read_is_retried(tmp_path: Path) -> None:
    h, session = http(Answer(length=len(DATA) + 10), Answer(length=len(DATA)))
    assert h.download(URL, tmp_path / "x.whl", DIGEST) == DIGEST and len(session.calls) == 2
    h, _ = http(Answer(length=99), Answer(length=99), Answer(length=99))
    with pytest.raises(FetchError, match=rf"download failed after 3 attempts \(connection closed after {len(DATA)} of 99 bytes\)"):
        h.download(URL, tmp_path / "y.whl", DIGEST)
    assert not list(tmp_path.glob(".y.whl.*"))  # no partial file left


def test_a_wrong_hash_is_retried_and_at_last_an_integrity_error(tmp_path: Path) -> None:
    h, session = http(Answer(body=b"tampered"), Answer())
    assert h.download(URL, tmp_path / "x.whl", DIGEST) == DIGEST and len(session.calls) == 2
    h, _ = http(Answer(body=b"tampered"), Answer(body=b"tampered"), Answer(body=b"tampered"))
    with pytest.raises(IntegrityError, match=f"does not match the index's {DIGEST}"):
        h.download(URL, tmp_path / "y.whl", DIGEST)
    assert not (tmp_path / "y.whl").exists()


def test_a_download_that_fails_to_connect_every_time_is_a_fetch_error(tmp_path: Path) -> None:
    h, _ = http(Answer(500), requests.ConnectionError("refused"), retries=1)
    with pytest.raises(FetchError, match=r"download failed after 2 attempts \(ConnectionError: refused\)"):
        h.download(URL, tmp_path / "x.whl", None)
