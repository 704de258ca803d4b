"""The Docker Engine API through the Docker SDK: connect, build, push.

Builds use host networking (the engines here run without a bridge). Every
line the engine streams goes to the step's log; the caller gets the build's
steps as they start, and a push's layer counts.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import docker
import docker.errors
import requests

from stackyard.config import ImageSettings
from stackyard.errors import BuildError, FetchError, InputError, ToolError

STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)")


@dataclass(frozen=True)
class PushResult:
    reference: str
    digest: str
    pushed_layers: int
    existing_layers: int


def connect(images: ImageSettings) -> docker.DockerClient:
    try:
        client = docker.DockerClient(base_url=images.engine, version="auto", timeout=900)
        client.ping()
        return client
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise ToolError(f"the Docker engine at {images.engine} is not running ({type(exc).__name__})",
                        hint="'make up' (stackyard services up) starts the embedded one; "
                             "for your own engine, start it or fix [images] engine") from None


def _follow(stream: Iterable[dict[str, Any]], log: Path, on_line: Callable[[dict[str, Any]], None]) -> None:
    with log.open("a") as handle:
        for event in stream:
            text = event.get("stream") or event.get("status") or ""
            if text:
                progress = f" {event['progress']}" if event.get("progress") else ""
                handle.write(f"{event.get('id', '')} {text.rstrip()}{progress}\n".lstrip())
            if "error" in event:
                handle.write(f"ERROR: {event['error']}\n")
            on_line(event)


def build(client: docker.DockerClient, context: Path, tag: str, log: Path, *, buildargs: dict[str, str] | None = None,
          nocache: bool = False, on_step: Callable[[int, int, str], None] = lambda i, n, s: None) -> str:
    """Build ``context`` (its Dockerfile) as ``tag``; the image id."""
    image_id: list[str] = []
    errors: list[str] = []

    def on_line(event: dict[str, Any]) -> None:
        if "aux" in event and "ID" in event["aux"]:
            image_id.append(event["aux"]["ID"])
        if "error" in event:
            errors.append(event["error"].strip())
        m = STEP.match(event.get("stream", ""))
        if m:
            on_step(int(m.group(1)), int(m.group(2)), m.group(3).strip()[:100])

    try:
        stream = client.api.build(path=str(context), tag=tag, buildargs=buildargs or {},
                                  network_mode="host", rm=True, forcerm=True, decode=True, pull=False, nocache=nocache)
        _follow(stream, log, on_line)
    except docker.errors.APIError as exc:
        raise BuildError(f"building {tag}: {exc.explanation or exc}", hint=f"see {log}") from None
    if errors or not image_id:
        raise BuildError(f"building {tag} failed: {errors[-1] if errors else 'no image'}", hint=f"see {log}")
    return image_id[-1]


def _push_once(client: docker.DockerClient, repository: str, tag: str, auth: dict[str, str],
               log: Path) -> tuple[dict[str, str], str, str]:
    """One push: each layer's final status, the manifest digest, the last error."""
    layers: dict[str, str] = {}
    digest, error = "", ""

    def on_line(event: dict[str, Any]) -> None:
        nonlocal digest, error
        status = event.get("status", "")
        if event.get("id") and status in ("Pushed", "Layer already exists") or status.startswith("Mounted from"):
            layers[event["id"]] = status
        m = re.search(r"digest: (sha256:[0-9a-f]{64})", status)
        if m:
            digest = m.group(1)
        if "error" in event:
            error = event["error"].strip()

    try:
        _follow(client.api.push(repository, tag=tag, auth_config=auth, stream=True, decode=True), log, on_line)
    except docker.errors.APIError as exc:
        error = str(exc.explanation or exc)
    return layers, digest, error


def push(client: docker.DockerClient, repository: str, tag: str, images: ImageSettings, password: str, log: Path,
         *, backoff: float = 1.0) -> PushResult:
    """Push ``repository:tag`` with the registry login; bounded retries with backoff."""
    auth = {"username": images.username, "password": password}
    error = ""
    for attempt in range(images.retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        layers, digest, error = _push_once(client, repository, tag, auth, log)
        if not error and digest:
            pushed = sum(1 for s in layers.values() if s == "Pushed")
            return PushResult(f"{repository}:{tag}", digest, pushed, len(layers) - pushed)
        error = error or "no digest reported"
        if re.search(r"unauthorized|authentication required|no basic auth", error, re.I):
            raise InputError(f"registry {images.registry} refused the push of {repository}:{tag}: {error}",
                             hint="fix [images] username and the password (password_file or STACKYARD_REGISTRY_PASSWORD)")
    raise FetchError(f"pushing {repository}:{tag} failed after {images.retries + 1} attempts: {error}", hint=f"see {log}")
