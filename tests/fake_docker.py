"""Test doubles for the Docker SDK client (the engine is a daemon: unit tests never reach one), and a .deb writer.

``FakeClient`` keeps the images it "built" (tag and id), answers ``images.get`` from them, records ``api.build``
(with the Dockerfile it was given), ``api.tag`` and ``api.push``; a build or push streams the events a test queues.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path
from typing import Any, Iterator

import docker.errors

Event = dict[str, Any]


class _Image:
    def __init__(self, image_id: str, size: int) -> None:
        self.id = image_id
        self.attrs = {"Size": size, "Id": image_id}


class _Images:
    def __init__(self, client: "FakeClient") -> None:
        self.client = client

    def get(self, name: str) -> _Image:
        image_id = self.client.tags.get(name, name if name in self.client.tags.values() else None)
        if image_id is None:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return _Image(image_id, self.client.size)


class _API:
    def __init__(self, client: "FakeClient") -> None:
        self.client = client

    def build(self, **kwargs: Any) -> Iterator[Event]:
        context = Path(kwargs["path"])
        self.client.builds.append({**kwargs, "dockerfile": (context / "Dockerfile").read_text(),
                                   "files": sorted(p.name for p in context.iterdir())})
        events = self.client.build_events.pop(0) if self.client.build_events else None
        if events is None:
            image_id = f"sha256:{len(self.client.builds):064x}"
            events = [{"stream": "Step 1/2 : FROM scratch\n"}, {"stream": "Step 2/2 : CMD x\n"},
                      {"aux": {"ID": image_id}}, {"stream": f"Successfully built {image_id[7:19]}\n"}]
        for event in events:
            if "aux" in event:
                self.client.tags[kwargs["tag"]] = event["aux"]["ID"]
            yield event

    def tag(self, image: str, repository: str, tag: str) -> bool:
        self.client.tagged.append((image, repository, tag))
        self.client.tags[f"{repository}:{tag}"] = image
        return True

    def push(self, repository: str, *, tag: str, auth_config: dict[str, str], stream: bool, decode: bool) -> Iterator[Event]:
        self.client.pushes.append((repository, tag, auth_config))
        if self.client.push_events:
            yield from self.client.push_events.pop(0)
            return
        digest = "sha256:" + f"{len(self.client.pushes)}".rjust(64, "d")
        yield from [{"status": "Preparing", "id": "aaa"}, {"status": "Pushed", "id": "aaa"},
                    {"status": "Layer already exists", "id": "bbb"}, {"status": f"{tag}: digest: {digest} size: 1234"}]


class FakeClient:
    def __init__(self, size: int = 123_000_000) -> None:
        self.size = size
        self.tags: dict[str, str] = {}
        self.builds: list[dict[str, Any]] = []
        self.tagged: list[tuple[str, str, str]] = []
        self.pushes: list[tuple[str, str, dict[str, str]]] = []
        self.build_events: list[list[Event] | None] = []  # per build, in order (None: a successful build)
        self.push_events: list[list[Event]] = []
        self.images = _Images(self)
        self.api = _API(self)


def _ar_member(name: str, data: bytes) -> bytes:
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def _targz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    # gzip's header holds a time: mtime=0, or the same deb written a second later has another sha256
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_deb(path: Path, control: str, files: dict[str, bytes]) -> Path:
    """A real (minimal) .deb: debian-binary, control.tar.gz with ./control, data.tar.gz with ``files``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"!<arch>\n" + _ar_member("debian-binary", b"2.0\n")
                     + _ar_member("control.tar.gz", _targz({"./control": control.encode()}))
                     + _ar_member("data.tar.gz", _targz(files)))
    return path
