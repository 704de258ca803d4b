"""stackyard.wheels.lock: the two resolvers' command lines, uv's output in pip-compile's format, progress events.

No processes: subprocess.Popen is replaced where compile_lock runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO, Any, Callable

import pytest

from stackyard.config import Config, Release
from stackyard.errors import ConfigError, ResolutionError, ToolError
from stackyard.events import Event, ItemFinished, Note, Outcome, StepFinished, StepStarted
from stackyard.recipes import load_recipe
from stackyard.runner import Call, Completed
from stackyard.target import Target
from stackyard.wheels import lock
from stackyard.wheels.constraints import parse_constraints
from stackyard.wheels.lock import (
    LockInputs,
    LockResult,
    explain_uv_conflict,
    git_references,
    pip_compile_command,
    resolver_for,
    to_pip_compile_format,
    uv_command,
    uv_env,
)
from tests.fakes import FakeRunner

REPO = Path(__file__).resolve().parents[2]
UC = Path("/r/2025.1/upper-constraints.txt")

# what uv pip compile writes for a tiny closure: setuptools and pip in name order, among the others
UV_OUTPUT = """\
pbr==6.1.1 \\
    --hash=sha256:38d4daea5d9fa63b3f626131b9d34947fd0c8be9b05a29276870580050a25a76 \\
    --hash=sha256:93ea72ce6989eb2eed99d0f75721474f69ad88128afdef5ac377eb797c4bf76b
    # via
    #   -c upper-constraints.txt
    #   oslo-config
pip==25.2 \\
    --hash=sha256:578283f006390f85bb6282dffb876454593d637f5d1be494b5202ce4877e71f2
    # via -r demo.in
setuptools==84.2.1 \\
    --hash=sha256:3ff8b3b5492a0aa66960f4419365a86b84e013070d4313e4d4a6894f5d64d6bc \\
    --hash=sha256:ca140b45d5325a9478f880e351484f62fef15f336462e449ca0c03c873d589c2
    # via pbr
six==1.17.0 \\
    --hash=sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274 \\
    --hash=sha256:ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81
    # via -c upper-constraints.txt
"""

PIP_COMPILE_OUTPUT = """\
pbr==6.1.1 \\
    --hash=sha256:38d4daea5d9fa63b3f626131b9d34947fd0c8be9b05a29276870580050a25a76 \\
    --hash=sha256:93ea72ce6989eb2eed99d0f75721474f69ad88128afdef5ac377eb797c4bf76b
    # via
    #   -c upper-constraints.txt
    #   oslo-config
six==1.17.0 \\
    --hash=sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274 \\
    --hash=sha256:ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81
    # via -c upper-constraints.txt

# The following packages are considered to be unsafe in a requirements file:
pip==25.2 \\
    --hash=sha256:578283f006390f85bb6282dffb876454593d637f5d1be494b5202ce4877e71f2
    # via -r demo.in
setuptools==84.2.1 \\
    --hash=sha256:3ff8b3b5492a0aa66960f4419365a86b84e013070d4313e4d4a6894f5d64d6bc \\
    --hash=sha256:ca140b45d5325a9478f880e351484f62fef15f336462e449ca0c03c873d589c2
    # via pbr
"""

DEMO = """\
name: demo
source:
  pypi: demo-dist
versions:
  "2025.1": "1.2.3"
"""


# --- configuration ---------------------------------------------------------------


def test_uv_is_the_default_resolver(config: Config) -> None:
    assert config.lock.resolver == "uv"


def test_pip_compile_can_be_chosen(make_config: Callable[..., Config]) -> None:
    assert make_config(extra='[lock]\nresolver = "pip-compile"\n').lock.resolver == "pip-compile"


@pytest.mark.parametrize("extra", ['[lock]\nresolver = "poetry"\n', "[lock]\nsolver = \"uv\"\n"])
def test_a_bad_lock_table_names_the_key(make_config: Callable[..., Config], extra: str) -> None:
    with pytest.raises(ConfigError, match=r"stackyard.toml: lock\.(resolver|solver)"):
        make_config(extra=extra)


# --- command lines ---------------------------------------------------------------


def test_pip_compile_command(config: Config) -> None:
    cache = config.paths.cache
    assert pip_compile_command(config, "keystone", python="/py") == [
        "/py", "-m", "piptools", "compile",
        "--quiet", "--no-header", "--generate-hashes", "--allow-unsafe", "--strip-extras",
        "--no-emit-index-url", "--no-emit-trusted-host", "--no-emit-find-links",
        "--index-url", "https://pypi.org/simple",
        "--cache-dir", f"{cache}/pip-tools",
        "--pip-args", f"--isolated --cache-dir {cache}/pip --retries 0",
        "--constraint", "upper-constraints.txt",
        "--output-file", "lock.txt",
        "keystone.in",
    ]


def test_uv_command(make_config: Callable[..., Config]) -> None:
    config = make_config(index_url="https://mirror.example.org/pypi/simple")
    assert uv_command(config, "keystone", "/bin/uv", python="/py") == [
        "/bin/uv", "pip", "compile",
        "--no-config", "--no-python-downloads", "--color", "never", "--quiet",
        "--python", "/py",
        "--default-index", "https://mirror.example.org/pypi/simple",
        "--cache-dir", f"{config.paths.cache}/uv",
        "--no-header", "--generate-hashes", "--annotation-style", "split",
        "--constraints", "upper-constraints.txt",
        "--output-file", "lock.txt",
        "keystone.in",
    ]
    # the project's own index page is asked again: a version uploaded minutes ago is not in uv's cached page
    refreshed = uv_command(config, "placement", "/bin/uv", python="/py", refresh=("openstack-placement",))
    assert refreshed[-3:] == ["--refresh-package", "openstack-placement", "placement.in"]


def test_uv_command_has_no_option_that_changes_the_format(config: Config) -> None:
    cmd = uv_command(config, "keystone", "uv")
    # no markers for other platforms, no index lines, extras stripped (uv's default), annotations kept
    for option in ("--universal", "--emit-index-url", "--no-strip-extras", "--no-annotate", "--extra-index-url",
                   "--python-version", "--python-platform", "--emit-build-options", "--emit-find-links"):
        assert option not in cmd
    # the cache lives in stackyard's cache directory
    assert str(config.paths.cache / "uv") in cmd


def test_uv_env_drops_the_machines_uv_and_pip_settings(config: Config) -> None:
    base = {"PATH": "/usr/bin", "UV_INDEX_URL": "https://evil.example/simple", "UV_CONSTRAINT": "/etc/c.txt",
            "UV_EXTRA_INDEX_URL": "https://x", "PIP_CONFIG_FILE": "/dev/null", "SSL_CERT_FILE": "/etc/ca.pem"}
    env = uv_env(config, base)
    assert not {"UV_INDEX_URL", "UV_CONSTRAINT", "UV_EXTRA_INDEX_URL"} & env.keys()
    assert env["UV_NO_CONFIG"] == "1"
    assert env["UV_HTTP_TIMEOUT"] == "5" and env["UV_HTTP_RETRIES"] == "0"
    assert env["PATH"] == "/usr/bin" and env["SSL_CERT_FILE"] == "/etc/ca.pem"  # the trust store stays


def test_uv_env_from_the_process_environment(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_INDEX_URL", "https://evil.example/simple")
    monkeypatch.setenv("PIP_INDEX_URL", "https://evil.example/simple")
    env = uv_env(config)
    assert "UV_INDEX_URL" not in env and "PIP_INDEX_URL" not in env
    assert env["PIP_CONFIG_FILE"] == "/dev/null"


def test_path_and_archive_references_go_to_pip_compile_git_ones_stay_with_uv(make_config: Callable[..., Config]) -> None:
    uv = make_config()
    pc = make_config(extra='[lock]\nresolver = "pip-compile"\n')
    named = LockInputs("keystone[ldap]==27.0.2\nPyMySQL\n", "six==1.17.0\n")
    git = LockInputs("keystone[ldap] @ git+https://opendev.org/openstack/keystone@27.0.2\n", "six==1.17.0\n")
    replaced = LockInputs("keystone==27.0.2\noslo.db @ file:///src/oslo.db\n", "")
    git_and_path = LockInputs("keystone @ git+https://opendev.org/openstack/keystone@27.0.2\noslo.db @ file:///src/oslo.db\n", "")
    assert resolver_for(uv, named) == "uv"
    assert resolver_for(uv, git) == "uv"
    assert resolver_for(uv, replaced) == "pip-compile"
    assert resolver_for(uv, git_and_path) == "pip-compile"
    assert resolver_for(pc, named) == "pip-compile"
    assert resolver_for(pc, git) == "pip-compile"


# keystone 27.0.3 from a git tag (bench/pipeline's upstream), the entries around it: uv's output and
# pip-compile's lock for the same inputs (the whole files differ in these lines only)
UV_GIT = """\
jsonschema-specifications==2024.10.1 \\
    --hash=sha256:0f38b83639958ce1152d02a7f062902c41c8fd20d558b0c34344292d417ae272 \\
    --hash=sha256:a09a0680616357d9a0ecf05c12ad234479f549239d0f5b55f3deea67475da9bf
    # via
    #   -c upper-constraints.txt
    #   jsonschema
keystone @ git+file:///tmp/up/keystone.git@35401e187aa2ce8832acb9da5cbd47687d3d0cea
    # via -r keystone.in
keystoneauth1==5.10.0 \\
    --hash=sha256:34b870dbbcf806cdb5aec98483b62820a6568d364eca7b1174ca6a8b5a9c77ed \\
    --hash=sha256:fd634febb02708d7ab520495168009f1e119cbda96d3478e66a7d9b5b0146f5d
    # via
    #   -c upper-constraints.txt
    #   keystonemiddleware
"""
PIP_COMPILE_GIT = UV_GIT.replace(
    "keystone @ git+file:///tmp/up/keystone.git@35401e187aa2ce8832acb9da5cbd47687d3d0cea\n",
    "# WARNING: pip install will require the following package to be hashed.\n"
    "# Consider using a hashable URL like https://github.com/jazzband/pip-tools/archive/SOMECOMMIT.zip\n"
    "keystone @ git+file:/tmp/up/keystone.git@27.0.3\n")


def test_a_git_reference_uv_resolved_is_written_as_pip_compile_writes_it() -> None:
    git = git_references(LockInputs("keystone[ldap] @ git+file:///tmp/up/keystone.git@27.0.3\nPyMySQL\n", ""))
    assert git == {"keystone": "keystone[ldap] @ git+file:///tmp/up/keystone.git@27.0.3"}
    assert to_pip_compile_format(UV_GIT, git) == PIP_COMPILE_GIT
    assert to_pip_compile_format(UV_GIT) == UV_GIT  # without the .in's references: uv's lines kept


# --- uv's output in pip-compile's format ----------------------------------------------


def test_unsafe_packages_move_under_pip_compiles_heading() -> None:
    assert to_pip_compile_format(UV_OUTPUT) == PIP_COMPILE_OUTPUT


def test_the_format_is_a_fixed_point() -> None:
    assert to_pip_compile_format(PIP_COMPILE_OUTPUT) == PIP_COMPILE_OUTPUT
    no_unsafe = UV_OUTPUT.split("pip==")[0] + "six==1.17.0 \\\n    --hash=sha256:" + "0" * 64 + "\n"
    assert to_pip_compile_format(no_unsafe) == no_unsafe
    assert "unsafe" not in to_pip_compile_format(no_unsafe)


def test_entries_are_ordered_by_canonical_name() -> None:
    text = "Zope.Interface==7.2\n    # via x\noslo-config==9.7.2\n    # via y\nmarkupsafe==3.0.2\n"
    assert to_pip_compile_format(text) == "markupsafe==3.0.2\noslo-config==9.7.2\n    # via y\nZope.Interface==7.2\n    # via x\n"


@pytest.mark.parametrize("line", ["# This file was autogenerated by uv", "--index-url https://pypi.org/simple", "-e ./src"])
def test_unexpected_top_level_lines_are_an_error(line: str) -> None:
    with pytest.raises(ToolError, match="unexpected output line"):
        to_pip_compile_format(f"{line}\nsix==1.17.0\n")


@pytest.mark.parametrize("lock_file", sorted((REPO / "requirements").glob("*/locks/*.txt")), ids=lambda p: p.stem)
def test_committed_locks_survive_the_round_trip(lock_file: Path) -> None:
    """Each committed (pip-compile) lock, with its unsafe section put back in name order as uv writes it,
    comes back byte for byte."""
    text = lock_file.read_text()
    header, body = text[: text.index("\n", text.index("# generated by")) + 1], text[text.index("\n", text.index("# generated by")) + 1:]
    assert to_pip_compile_format(body) == body
    if lock.UNSAFE_HEADING in body:
        safe, unsafe = body.split("\n" + lock.UNSAFE_HEADING + "\n")
        entries = safe + unsafe
        lines = entries.splitlines(keepends=True)
        # re-sort the entries by name, as uv lists them
        blocks: list[list[str]] = []
        for line in lines:
            (blocks[-1].append(line) if line[0].isspace() else blocks.append([line]))
        uv_like = "".join("".join(b) for b in sorted(blocks, key=lambda b: b[0].split("==")[0]))
        assert uv_like != body
        assert header + to_pip_compile_format(uv_like) == text


# --- uv's failures ------------------------------------------------------------------


@pytest.fixture
def tiny_constraints(bookworm: Target):  # type: ignore[no-untyped-def]
    return parse_constraints("tinyext===1.0\ntinypure===9.9\noslo.config===9.0.0\n", UC, bookworm)


def test_explain_uv_conflict_with_an_upper_constraint(tiny_constraints) -> None:  # type: ignore[no-untyped-def]
    output = ("error: No solution found when resolving dependencies\n"
              "  cause: Because tinyapp==1.1 depends on tinyext>=2.0 and tinyext==1.0, we can conclude that "
              "tinyapp==1.1 cannot be used.\n")
    assert explain_uv_conflict(output, tiny_constraints, UC) == (
        f"tinyapp 1.1 requires tinyext>=2.0, but upper-constraints pins tinyext===1.0 ({UC}:1)"
    )


def test_explain_uv_conflict_drawn_and_wrapped(tiny_constraints) -> None:  # type: ignore[no-untyped-def]
    output = ("  × No solution found when resolving dependencies:\n"
              "  ╰─▶ Because keystone==27.0.2 depends on oslo-config>=9.7.0,<10 and you require\n"
              "      oslo-config==9.0.0, we can conclude that keystone==27.0.2 cannot be used.\n"
              "      And because you require keystone==27.0.2, we can conclude that your requirements are unsatisfiable.\n")
    message = explain_uv_conflict(output, tiny_constraints, UC)
    assert message == f"keystone 27.0.2 requires oslo-config>=9.7.0,<10, but upper-constraints pins oslo.config===9.0.0 ({UC}:3)"


def test_explain_uv_missing_version(tiny_constraints) -> None:  # type: ignore[no-untyped-def]
    output = ("error: No solution found when resolving dependencies\n"
              "  cause: Because there is no version of tinypure==9.9 and you require tinypure==9.9, we can conclude "
              "that your requirements are unsatisfiable.\n")
    assert explain_uv_conflict(output, tiny_constraints, UC) == (
        f"no distribution on the index satisfies tinypure==9.9 (pinned at {UC}:2)"
    )


def test_explain_uv_other_failures(tiny_constraints) -> None:  # type: ignore[no-untyped-def]
    assert explain_uv_conflict("error: Failed to fetch: `https://pypi.org/simple/six/`\n", tiny_constraints, UC) is None
    text = "error: No solution found when resolving dependencies\n  cause: Because a==1 depends on b>2 and c, ...\n"
    assert explain_uv_conflict(text, tiny_constraints, UC) == "conflicting requirements:\n" + text.strip()


# --- compile_lock and lock_projects without processes ----------------------------------------


class FakeResolver(FakeRunner):
    """The resolver behind the runner: writes ``output`` as lock.txt (or fails with ``error``) after ``seconds``."""

    output = UV_OUTPUT
    error = ""
    seconds = 0.0

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, Any]] = []

    def spawn(self, call: Call, sink: IO[str] | None) -> Completed:
        self.calls.append(call)
        cwd = Path(call.cwd or ".")
        self.seen.append({"cmd": list(call.argv), "cwd": cwd, "env": dict(call.env),
                          "in": (cwd / call.argv[-1]).read_text(), "uc": (cwd / "upper-constraints.txt").read_text()})
        time.sleep(self.seconds)
        if self.error:
            return Completed(1, self.error)
        (cwd / "lock.txt").write_text(self.output)
        return Completed(0)


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> FakeResolver:
    monkeypatch.setattr(lock, "verify_extras", lambda *a, **k: None)
    monkeypatch.setattr(lock, "find_uv", lambda: "/opt/uv/bin/uv")
    return FakeResolver()


def demo_setup(config: Config, release: Release, make_recipe: Callable[..., Path]):  # type: ignore[no-untyped-def]
    uc = config.requirements_dir(release) / "upper-constraints.txt"
    uc.parent.mkdir(parents=True)
    uc.write_text("demo-dist===1.2.3\nsix===1.17.0\npbr===6.1.1\n")
    return load_recipe(make_recipe("demo", DEMO))


def test_compile_lock_with_uv_writes_pip_compiles_format(config: Config, release: Release, resolver: FakeResolver,
                                                         make_recipe: Callable[..., Path]) -> None:
    recipe = demo_setup(config, release, make_recipe)
    events: list[Event] = []
    result = lock.compile_lock(config, release, recipe, report=events.append, runner=resolver)
    (call,) = resolver.seen
    assert call["cmd"][:3] == ["/opt/uv/bin/uv", "pip", "compile"] and call["env"]["UV_NO_CONFIG"] == "1"
    assert call["in"] == "demo-dist==1.2.3\n" and call["uc"] == "pbr==6.1.1\nsix==1.17.0\n"
    text = result.file.read_text()
    assert text.startswith("# stackyard lock: demo 1.2.3 for OpenStack 2025.1 (epoxy), python 3.11, Debian bookworm\n")
    assert text.endswith(PIP_COMPILE_OUTPUT)
    assert (result.changed, result.packages, result.resolver) == (True, 4, "uv")
    assert events == [Note("lock", "demo 1.2.3: resolving with uv ...")]
    # the same inputs again: the digest skips the resolver
    again = lock.compile_lock(config, release, recipe, report=events.append, runner=resolver)
    assert len(resolver.seen) == 1 and (again.changed, again.resolver, again.packages) == (False, "", 4)


def test_an_upper_constraints_move_rewrites_the_header_but_only_moved_pins_count(
        config: Config, release: Release, resolver: FakeResolver, make_recipe: Callable[..., Path]) -> None:
    recipe = demo_setup(config, release, make_recipe)
    first = lock.compile_lock(config, release, recipe, runner=resolver)
    assert first.changed and first.pins_changed  # a new lock
    uc = config.requirements_dir(release) / "upper-constraints.txt"
    uc.write_text(uc.read_text() + "unrelated===2.0\n")  # a pin this project does not install
    header_only = lock.compile_lock(config, release, recipe, runner=resolver)
    assert len(resolver.seen) == 2  # the inputs moved: resolved again
    assert header_only.changed and not header_only.pins_changed  # the file (its inputs digest) changed, its pins did not
    before = first.file.read_text()
    resolver.output = UV_OUTPUT.replace("six==1.17.0", "six==1.16.0")
    uc.write_text(uc.read_text().replace("six===1.17.0", "six===1.16.0"))
    moved = lock.compile_lock(config, release, recipe, runner=resolver)
    assert moved.changed and moved.pins_changed
    assert lock.pins_digest(before) != lock.pins_digest(moved.file.read_text())
    # the digest reads requirement and hash lines only: the header and '# via' annotations do not count
    assert lock.pins_digest("# a\nsix==1.17.0 \\\n    --hash=sha256:ab\n    # via x\n") == \
        lock.pins_digest("# b\n\nsix==1.17.0 \\\n    --hash=sha256:ab\n    # via y\n")


def test_compile_lock_with_pip_compile_keeps_its_output(make_config: Callable[..., Config], resolver: FakeResolver,
                                                        make_recipe: Callable[..., Path]) -> None:
    config = make_config(extra='[lock]\nresolver = "pip-compile"\n')
    release = config.release("2025.1")
    recipe = demo_setup(config, release, make_recipe)
    resolver.output = PIP_COMPILE_OUTPUT
    result = lock.compile_lock(config, release, recipe, runner=resolver)
    assert resolver.seen[0]["cmd"][1:4] == ["-m", "piptools", "compile"]
    assert "UV_NO_CONFIG" not in resolver.seen[0]["env"]
    assert result.file.read_text().endswith(PIP_COMPILE_OUTPUT) and result.resolver == "pip-compile"


def test_a_long_resolution_reports_that_it_is_still_working(config: Config, release: Release, resolver: FakeResolver,
                                                            make_recipe: Callable[..., Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = demo_setup(config, release, make_recipe)
    monkeypatch.setattr(lock, "HEARTBEAT", 0.02)
    resolver.seconds = 0.2
    events: list[Event] = []
    lock.compile_lock(config, release, recipe, report=events.append, runner=resolver)
    notes = [e.text for e in events if isinstance(e, Note)]
    assert notes[0] == "demo 1.2.3: resolving with uv ..."
    assert len(notes) >= 3 and all(n.startswith("demo 1.2.3: still resolving (") for n in notes[1:])
    count = len(events)
    time.sleep(0.1)
    assert len(events) == count  # the heartbeat stopped with the resolver


def test_a_uv_conflict_is_a_resolution_error_naming_the_pin(config: Config, release: Release, resolver: FakeResolver,
                                                            make_recipe: Callable[..., Path]) -> None:
    recipe = demo_setup(config, release, make_recipe)
    resolver.error = ("error: No solution found when resolving dependencies\n"
                        "  cause: Because demo-dist==1.2.3 depends on six>=1.18 and six==1.17.0, we can conclude "
                        "that demo-dist==1.2.3 cannot be used.\n")
    with pytest.raises(ResolutionError) as info:
        lock.compile_lock(config, release, recipe, runner=resolver)
    uc = config.requirements_dir(release) / "upper-constraints.txt"
    log = config.logs_dir("lock", release) / "demo.log"
    assert f"cannot lock demo 1.2.3 for 2025.1: uv exited 1 (log: {log}): demo-dist 1.2.3 requires six>=1.18, " \
           f"but upper-constraints pins six===1.17.0 ({uc}:2)" in str(info.value)
    assert not lock.lock_path(config, release, "demo").exists()


def test_uv_missing_names_the_fallback(config: Config, release: Release, resolver: FakeResolver,
                                       make_recipe: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = demo_setup(config, release, make_recipe)
    monkeypatch.setattr(lock, "find_uv", lambda: None)
    with pytest.raises(ToolError) as info:
        lock.compile_lock(config, release, recipe, runner=resolver)
    assert 'resolver = "pip-compile"' in str(info.value.hint) and resolver.calls == []


def test_lock_projects_reports_each_project(config: Config, release: Release, monkeypatch: pytest.MonkeyPatch,
                                            make_recipe: Callable[..., Path]) -> None:
    recipes = [load_recipe(make_recipe(n, DEMO.replace("name: demo", f"name: {n}"))) for n in ("alpha", "beta")]
    results = {"alpha": LockResult("alpha", Path("a.txt"), True, 105, 2.5, "uv"),
               "beta": LockResult("beta", Path("b.txt"), False, 71, 0.1, "")}
    monkeypatch.setattr(lock, "compile_lock", lambda c, r, recipe, **kw: results[recipe.name])
    events: list[Event] = []
    assert lock.lock_projects(config, release, recipes, report=events.append) == [results["alpha"], results["beta"]]
    assert events[0] == StepStarted("lock", 2, "for 2025.1 with uv")
    first, second = events[1], events[2]
    assert isinstance(first, ItemFinished) and isinstance(second, ItemFinished)
    assert (first.name, first.version, first.outcome, first.index, first.total) == ("alpha", "1.2.3", Outcome.BUILT, 1, 2)
    assert first.detail == "changed, 105 packages, uv" and first.seconds == 2.5
    assert second.outcome == Outcome.CACHED and second.detail == "up to date (inputs unchanged), 71 packages"
    assert isinstance(events[3], StepFinished) and events[3].counts == {"changed": 1, "unchanged": 1}
