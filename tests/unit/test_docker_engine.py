"""docker_engine: a build's image id, steps and errors from the engine's stream; a push's layers, digest and retries."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import docker.errors
import pytest

from stackyard.config import Config
from stackyard.errors import BuildError, FetchError, InputError, ToolError
from stackyard.images import engine as docker_engine
from tests.fake_docker import FakeClient


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path / "ctx"


def test_an_engine_that_does_not_answer_is_a_tool_error_naming_it(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config: Config = make_config(extra=f'[images]\nengine = "unix://{tmp_path}/no-such.sock"\n')
    with pytest.raises(ToolError, match=rf"the Docker engine at unix://{tmp_path}/no-such.sock is not running") as info:
        docker_engine.connect(config.images)
    assert "make up" in (info.value.hint or "")


def test_a_build_returns_the_last_image_id_reports_steps_and_logs_the_stream(context: Path, tmp_path: Path) -> None:
    client = FakeClient()
    client.build_events.append([
        {"stream": "Step 1/2 : FROM scratch\n"}, {"aux": {"ID": "sha256:intermediate"}},
        {"stream": "Step 2/2 : RUN " + "x" * 200 + "\n"}, {"status": "Downloading", "id": "abc", "progress": "[==>  ]"},
        {"aux": {"ID": "sha256:final"}}])
    steps: list[tuple[int, int, str]] = []
    log = tmp_path / "image.log"
    image_id = docker_engine.build(client, context, "r/tiny:1", log, buildargs={"A": "1"}, nocache=True,  # type: ignore[arg-type]
                                   on_step=lambda i, n, s: steps.append((i, n, s)))
    assert image_id == "sha256:final"
    assert steps == [(1, 2, "FROM scratch"), (2, 2, "RUN " + "x" * 96)]
    assert log.read_text().splitlines()[:1] == ["Step 1/2 : FROM scratch"]
    assert "abc Downloading [==>  ]" in log.read_text()
    (build,) = client.builds
    assert build["nocache"] and build["buildargs"] == {"A": "1"} and build["network_mode"] == "host" and not build["pull"]


@pytest.mark.parametrize("events, message", [
    ([{"stream": "Step 1/1 : RUN false\n"}, {"error": "The command '/bin/sh -c false' returned a non-zero code: 1\n"}],
     "building r/tiny:1 failed: The command '/bin/sh -c false' returned a non-zero code: 1"),
    ([{"stream": "Step 1/1 : FROM scratch\n"}], "building r/tiny:1 failed: no image"),
])
def test_a_build_with_an_error_or_without_an_image_fails(context: Path, tmp_path: Path, events: list, message: str) -> None:
    client = FakeClient()
    client.build_events.append(events)
    log = tmp_path / "image.log"
    with pytest.raises(BuildError) as info:
        docker_engine.build(client, context, "r/tiny:1", log)  # type: ignore[arg-type]
    assert str(info.value) == f"{message}\n  fix: see {log}"
    if "error" in events[-1]:
        assert "ERROR: The command" in log.read_text()


def test_an_api_error_of_the_engine_is_a_build_error(context: Path, tmp_path: Path) -> None:
    client = FakeClient()

    def refuse(**kwargs: object) -> Iterator[dict]:
        raise docker.errors.APIError("500 Server Error", explanation="no space left on device")

    client.api.build = refuse  # type: ignore[method-assign]
    with pytest.raises(BuildError, match="building r/tiny:1: no space left on device"):
        docker_engine.build(client, context, "r/tiny:1", tmp_path / "image.log")  # type: ignore[arg-type]


DIGEST = "sha256:" + "a" * 64


def test_a_push_counts_sent_and_existing_layers(config: Config, tmp_path: Path) -> None:
    client = FakeClient()
    client.push_events.append([{"status": "Pushed", "id": "l1"}, {"status": "Pushed", "id": "l2"},
                               {"status": "Layer already exists", "id": "l3"}, {"status": "Mounted from stackyard/base", "id": "l4"},
                               {"status": f"1: digest: {DIGEST} size: 1"}])
    result = docker_engine.push(client, "r/tiny", "1", config.images, "pw", tmp_path / "push.log")  # type: ignore[arg-type]
    assert result == docker_engine.PushResult("r/tiny:1", DIGEST, 2, 2)
    assert client.pushes == [("r/tiny", "1", {"username": "stackyard", "password": "pw"})]


def test_a_failed_push_is_retried_then_fails_naming_the_last_error(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config: Config = make_config(extra="[images]\nretries = 2\n")
    client = FakeClient()
    client.push_events += [[{"error": "connection reset"}], [{"status": "Pushed", "id": "l1"}],  # no digest: not done
                           [{"status": "Pushed", "id": "l1"}, {"status": f"1: digest: {DIGEST} size: 1"}]]
    result = docker_engine.push(client, "r/tiny", "1", config.images, "pw", tmp_path / "push.log", backoff=0)  # type: ignore[arg-type]
    assert result.digest == DIGEST and len(client.pushes) == 3
    client.push_events += [[{"error": "connection reset"}]] * 3
    with pytest.raises(FetchError, match="pushing r/tiny:1 failed after 3 attempts: connection reset"):
        docker_engine.push(client, "r/tiny", "1", config.images, "pw", tmp_path / "push.log", backoff=0)  # type: ignore[arg-type]


def test_a_refused_login_is_not_retried(config: Config, tmp_path: Path) -> None:
    client = FakeClient()
    client.push_events.append([{"error": "unauthorized: authentication required"}])
    with pytest.raises(InputError, match="registry 127.0.0.1:5443 refused the push of r/tiny:1: unauthorized"):
        docker_engine.push(client, "r/tiny", "1", config.images, "pw", tmp_path / "push.log", backoff=0)  # type: ignore[arg-type]
    assert len(client.pushes) == 1


def test_an_api_error_during_a_push_counts_as_a_failed_attempt(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config: Config = make_config(extra="[images]\nretries = 0\n")
    client = FakeClient()

    def refuse(*args: object, **kwargs: object) -> Iterator[dict]:
        raise docker.errors.APIError("500", explanation="engine is shutting down")

    client.api.push = refuse  # type: ignore[method-assign]
    with pytest.raises(FetchError, match="failed after 1 attempts: engine is shutting down"):
        docker_engine.push(client, "r/tiny", "1", config.images, "pw", tmp_path / "push.log")  # type: ignore[arg-type]
