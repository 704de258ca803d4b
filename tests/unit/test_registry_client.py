"""The registry client's decisions: a login check before anything moves, a tag's digest, retries and TLS errors
(its requests session answered by a test double: no registry, no network)."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import requests

from stackyard.config import Config
from stackyard.errors import FetchError, InputError
from stackyard.images.registry import MANIFEST_TYPES, Registry


def response(status: int, **headers: str) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.headers.update(headers)
    return r


class Session:
    """Answers requests in order: a Response, or an exception to raise."""

    def __init__(self, *answers: requests.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.requests.append((method, url, kwargs))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config(extra='[images]\nregistry = "registry.example:5000"\nnamespace = "sy"\nusername = "robot"\nretries = 2\n')


def registry(config: Config, *answers: requests.Response | Exception) -> tuple[Registry, Session]:
    r = Registry(config.images, "pw", backoff=0)
    session = Session(*answers)
    assert r.session.auth == ("robot", "pw")  # the real session carries the login ...
    r.session = session  # type: ignore[assignment]   # ... this one answers
    return r, session


def test_a_good_login_is_checked_against_v2_with_the_ca(config: Config) -> None:
    r, session = registry(config, response(200))
    r.check_login()
    ((method, url, kwargs),) = session.requests
    assert (method, url) == ("GET", "https://registry.example:5000/v2/")
    assert kwargs["verify"] == str(config.images.ca_cert) and kwargs["timeout"] == 30


def test_the_system_trust_store_is_used_without_a_ca(make_config: Callable[..., Config]) -> None:
    config = make_config(extra='[images]\nca_cert = ""\n')
    assert Registry(config.images, "pw").verify is True


def test_a_refused_login_names_the_user(config: Config) -> None:
    r, _ = registry(config, response(401))
    with pytest.raises(InputError, match="registry registry.example:5000 refused the login of 'robot'"):
        r.check_login()


def test_another_answer_to_the_login_check_is_a_fetch_error(config: Config) -> None:
    r, _ = registry(config, response(404))
    with pytest.raises(FetchError, match="GET /v2/ answered 404"):
        r.check_login()


def test_server_errors_and_connection_errors_are_retried_a_bounded_number_of_times(config: Config) -> None:
    r, session = registry(config, response(503), requests.ConnectionError("refused"), response(200))
    r.check_login()
    assert len(session.requests) == 3
    r, session = registry(config, response(502), response(500), requests.ConnectionError("connection refused"))
    with pytest.raises(FetchError, match="registry registry.example:5000 is unreachable after 3 attempts: connection refused"):
        r.check_login()
    assert len(session.requests) == 3


def test_a_tls_failure_is_not_retried_and_points_at_ca_cert(config: Config) -> None:
    r, session = registry(config, requests.exceptions.SSLError("certificate verify failed"), response(200))
    with pytest.raises(FetchError, match="TLS verification failed: certificate verify failed") as info:
        r.check_login()
    assert len(session.requests) == 1 and "ca_cert" in (info.value.hint or "")


def test_a_tags_digest_comes_from_the_manifest_head(config: Config) -> None:
    digest = "sha256:" + "a" * 64
    r, session = registry(config, response(200, **{"Docker-Content-Digest": digest}), response(404), response(403))
    assert r.digest("tiny", "2025.1-debian_bookworm") == digest
    method, url, kwargs = session.requests[0]
    assert (method, url) == ("HEAD", "https://registry.example:5000/v2/sy/tiny/manifests/2025.1-debian_bookworm")
    assert kwargs["headers"] == {"Accept": MANIFEST_TYPES}
    assert r.digest("tiny", "missing") is None
    with pytest.raises(FetchError, match="manifest tiny:x answered 403"):
        r.digest("tiny", "x")
