"""stackyard.stage: the record format every artifact kind shares and the skip decision."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from stackyard import stage
from stackyard.events import Building, Event, Unchanged


@dataclass(frozen=True)
class Verdict:
    passed: bool
    checks: tuple[str, ...]


@stage.record("thing")
class Thing:
    name: str
    inputs: str
    warnings: tuple[str, ...] | None = None
    verdict: Verdict | None = None


class ThingStage:
    kind = "thing"

    def __init__(self, root: Path, inputs: str) -> None:
        self.root, self._inputs, self.name, self.builds = root, inputs, "t", 0

    def inputs(self) -> str:
        return self._inputs

    def record_path(self) -> Path:
        return self.root / "t.json"

    def record_type(self) -> type[Thing]:
        return Thing

    def intact(self, record: Thing) -> bool:
        return (self.root / "t.out").exists()

    def stands(self, record: Thing) -> str:
        return "t.out"

    def build(self, inputs: str, previous: Thing | None, report: object) -> Thing:
        self.builds += 1
        (self.root / "t.out").write_text(inputs)
        return Thing("t", inputs, ("W: a",), Verdict(True, ("x",)))


def test_a_record_round_trips_with_its_schema_and_kind_and_nested_types(tmp_path: Path) -> None:
    record = Thing("t", "abc", ("W: one", "W: two"), Verdict(True, ("a", "b")))
    stage.write_record(tmp_path / "t.json", record)
    data = json.loads((tmp_path / "t.json").read_text())
    assert (data["schema"], data["kind"], data["warnings"]) == (stage.SCHEMA, "thing", ["W: one", "W: two"])
    assert stage.read_record(tmp_path / "t.json", Thing) == record
    assert not list(tmp_path.glob(".*tmp"))


def test_a_record_of_another_schema_or_kind_or_unreadable_is_no_record(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    assert stage.read_record(path, Thing) is None  # absent
    for text in ('{"schema": 0, "kind": "thing", "name": "t", "inputs": "a"}',
                 '{"schema": 1, "kind": "image", "name": "t", "inputs": "a"}',
                 '{"name": "t"}', "not json", "[1]"):
        path.write_text(text)
        assert stage.read_record(path, Thing) is None, text


def test_run_builds_once_then_says_unchanged_and_builds_again_when_inputs_or_artifact_change(tmp_path: Path) -> None:
    events: list[Event] = []
    first = ThingStage(tmp_path, "i1")
    assert not stage.run(first, report=events.append).unchanged and first.builds == 1
    again = ThingStage(tmp_path, "i1")
    result = stage.run(again, report=events.append)
    assert result.unchanged and again.builds == 0 and result.record.verdict == Verdict(True, ("x",))
    assert events == [Building("thing", "t", "no record of a previous build"),
                      Unchanged("thing", "t", "t.out stands (inputs unchanged)")]
    changed = ThingStage(tmp_path, "i2")
    assert not stage.run(changed).unchanged and changed.builds == 1
    (tmp_path / "t.out").unlink()
    vanished = ThingStage(tmp_path, "i2")
    assert not stage.run(vanished).unchanged and vanished.builds == 1
    forced = ThingStage(tmp_path, "i2")
    assert not stage.run(forced, rebuild=True).unchanged and forced.builds == 1


def test_a_record_from_before_schemas_is_read_when_its_fields_fit(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"name": "t", "inputs": "a", "warnings": ["W: x"], "verdict": {"passed": true, "checks": ["c"]}}')
    assert stage.read_record(path, Thing) == Thing("t", "a", ("W: x",), Verdict(True, ("c",)))


def test_why_build_names_the_reason() -> None:
    rec = Thing("t", "a")
    assert stage.why_build(rec, "a", True, False) is None
    assert stage.why_build(rec, "b", True, False) == "inputs changed"
    assert stage.why_build(rec, "a", False, False) == "the recorded artifact is missing or differs from its record"
    assert stage.why_build(None, "a", True, False) == "no record of a previous build"
    assert stage.why_build(rec, "a", True, True) == "--rebuild"
