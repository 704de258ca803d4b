"""The registry's HTTP API (distribution v2), for what the engine does not tell.

Checks the login before anything is pushed (wrong credentials fail first, with
nothing moved) and reads the digest a tag points at. Requests are retried with
exponential backoff, a bounded number of times.
"""

from __future__ import annotations

import time

import requests

from stackyard.config import ImageSettings
from stackyard.errors import FetchError, InputError

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


class Registry:
    def __init__(self, images: ImageSettings, password: str, *, backoff: float = 1.0) -> None:
        self.images, self.backoff = images, backoff
        self.base = f"https://{images.registry}/v2/"
        self.session = requests.Session()
        self.session.auth = (images.username, password)
        # per request: requests lets REQUESTS_CA_BUNDLE override a session's verify
        self.verify: str | bool = str(images.ca_cert) if images.ca_cert else True

    def _request(self, method: str, url: str, **kwargs: object) -> requests.Response:
        last: Exception | None = None
        for attempt in range(self.images.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self.session.request(method, url, timeout=30, verify=self.verify, **kwargs)  # type: ignore[arg-type]
            except requests.exceptions.SSLError as exc:
                raise FetchError(f"registry {self.images.registry}: TLS verification failed: {exc}",
                                 hint="set [images] ca_cert to the CA that signed its certificate") from None
            except requests.RequestException as exc:
                last = exc
                continue
            if response.status_code >= 500:
                last = FetchError(f"HTTP {response.status_code}")
                continue
            return response
        raise FetchError(f"registry {self.images.registry} is unreachable after {self.images.retries + 1} attempts: {last}",
                         hint="start it (make up) or fix [images] registry")

    def check_login(self) -> None:
        r = self._request("GET", self.base)
        if r.status_code == 401:
            raise InputError(f"registry {self.images.registry} refused the login of {self.images.username!r}",
                             hint="fix [images] username and the password (password_file or STACKYARD_REGISTRY_PASSWORD)")
        if r.status_code != 200:
            raise FetchError(f"registry {self.images.registry}: GET /v2/ answered {r.status_code}")

    def digest(self, image: str, tag: str) -> str | None:
        """The manifest digest ``<namespace>/<image>:<tag>`` points at, or None."""
        r = self._request("HEAD", f"{self.base}{self.images.namespace}/{image}/manifests/{tag}",
                          headers={"Accept": MANIFEST_TYPES})
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise FetchError(f"registry {self.images.registry}: manifest {image}:{tag} answered {r.status_code}")
        return r.headers.get("Docker-Content-Digest")
