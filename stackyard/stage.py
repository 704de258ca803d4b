"""The shape every artifact kind shares: an inputs digest, a build, a typed record.

A stage (the wheelhouse's deb, a venv deb, an image) names what it makes, computes
a digest of everything the artifact is made from, and builds it. Its record is a
frozen dataclass declared with ``@record(kind)``, written as one JSON format
(``schema`` and ``kind`` first, then the record's fields), beside the artifact or
under ``<output>/<kind>/``. ``run`` skips the build when the last record carries
the same inputs digest and the artifact it names is intact, and says so with an
``Unchanged`` event: the CLI and Buildbot see every kind the same way.

A record of another schema, another kind or that does not parse is no record:
the artifact is built again (it is made from its inputs, never trusted blindly).
A record written before records had a schema (stackyard 0.x: the same fields,
no ``schema``/``kind``) is read when its fields fit, so an upgrade of stackyard
does not rebuild what stands.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Generic, Protocol, TypeVar, dataclass_transform

from stackyard.events import Building, Reporter, Unchanged, discard

SCHEMA = 1


class Record(Protocol):
    """A frozen dataclass with the kind it records and the inputs digest it was made from."""

    KIND: ClassVar[str]
    inputs: str


R = TypeVar("R", bound=Record)
T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def record(kind: str) -> Callable[[type[T]], type[T]]:
    """Declare a stage record: ``@record("image") class ImageRecord: ...`` is a frozen dataclass whose ``KIND`` is "image"."""

    def declare(cls: type[T]) -> type[T]:
        cls.KIND = kind  # type: ignore[attr-defined]
        return dataclass(frozen=True)(cls)

    return declare


def record_file(artifact: Path) -> Path:
    """Where the record of a file artifact lives: beside it, ``<name>.json``."""
    return artifact.parent / f"{artifact.name}.json"


def to_json(record: Record) -> dict[str, Any]:
    return {"schema": SCHEMA, "kind": record.KIND, **dataclasses.asdict(record)}


def write_record(path: Path, record: Record) -> None:
    """Atomically: a reader sees the old record or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(to_json(record), indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _value(tp: Any, value: Any) -> Any:
    """JSON ``value`` as the field type ``tp``: lists to tuples, dicts to nested records, optionals."""
    origin = typing.get_origin(tp)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _value(inner[0], value) if len(inner) == 1 else value
    if origin is tuple:
        (item, *_rest) = typing.get_args(tp) or (Any,)
        return tuple(_value(item, v) for v in value)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return _from_dict(tp, value)
    return value


def _from_dict(cls: type[Any], data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: _value(hints[k], v) for k, v in data.items() if k in fields})


def read_record(path: Path, cls: type[R]) -> R | None:
    """The record at ``path`` if it is one of this schema and kind, else None (the artifact is then made again)."""
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            return None
        legacy = "schema" not in data and "kind" not in data
        if not legacy and (data.get("schema") != SCHEMA or data.get("kind") != cls.KIND):
            return None
        return _from_dict(cls, data)
    except (OSError, ValueError, TypeError):
        return None


class Stage(Protocol[R]):
    """One artifact kind: ``run`` drives it."""

    kind: str
    name: str  # what it makes, for events: "venv-keystone", "keystone (image)"

    def inputs(self) -> str:
        """A digest of everything the artifact is made from."""

    def record_path(self) -> Path: ...

    def record_type(self) -> type[R]: ...

    def intact(self, record: R) -> bool:
        """Whether the artifact ``record`` names is still there, as recorded."""

    def stands(self, record: R) -> str:
        """What stands when nothing is built: "registry/ns/keystone:2025.1-...", "venv-keystone_27.0.0-2025.1.1_all.deb"."""

    def build(self, inputs: str, previous: R | None, report: Reporter) -> R:
        """Make the artifact; the record returned carries ``inputs``."""


@dataclass(frozen=True)
class StageResult(Generic[R]):
    record: R
    unchanged: bool


def why_build(previous: Record | None, inputs: str, intact: bool, rebuild: bool) -> str | None:
    """None when the last build stands; else why it is built again."""
    if rebuild:
        return "--rebuild"
    if previous is None:
        return "no record of a previous build"
    if previous.inputs != inputs:
        return "inputs changed"
    if not intact:
        return "the recorded artifact is missing or differs from its record"
    return None


def run(stage: Stage[R], *, rebuild: bool = False, report: Reporter = discard,
        reason: str | None = None) -> StageResult[R]:
    """Build ``stage``'s artifact unless its inputs are unchanged and it is intact; record it.
    ``reason``: what the stage knows of why it builds (a new changelog entry's), said instead of the generic one."""
    inputs = stage.inputs()
    path = stage.record_path()
    previous = read_record(path, stage.record_type())
    why = why_build(previous, inputs, previous is not None and stage.intact(previous), rebuild)
    if why is None and previous is not None:
        report(Unchanged(stage.kind, stage.name, f"{stage.stands(previous)} stands (inputs unchanged)"))
        return StageResult(previous, unchanged=True)
    report(Building(stage.kind, stage.name, reason or why or ""))
    record = stage.build(inputs, previous, report)
    write_record(path, record)
    return StageResult(record, unchanged=False)
