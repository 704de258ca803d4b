"""Per-project locks: the full dependency closure, pinned and hashed.

``<project>[extras]==<version>`` is resolved against the release's
upper-constraints evaluated for the target python, in a scratch directory with
fixed relative file names and no header, so the same inputs give a
byte-identical lock. The format is pip-compile's (pip-tools: ``--generate-hashes
--allow-unsafe --strip-extras``, split ``# via`` annotations).

Two resolvers write it (``[lock] resolver``):

- ``uv`` (default): ``uv pip compile`` with the same inputs, isolated from any
  uv configuration, resolving for this very interpreter as pip-compile does.
  Its output differs from pip-compile's in one way only: setuptools, pip and
  distribute are listed in order instead of under pip-compile's "unsafe"
  heading; ``to_pip_compile_format`` moves them there. Hashes are the same set
  (every file of the pinned version on the index: pip-compile's
  ``allow_all_wheels``). tests/e2e/test_lock_resolvers.py shows the two write
  identical files for real projects. A git source (``name @ git+URL@ref``)
  stays with uv: it writes the commit it resolved and no warning where
  pip-compile writes the recipe's ref under its "cannot hash" warning;
  ``to_pip_compile_format`` writes pip-compile's lines (keystone from a git tag:
  the same file, 1.5 s instead of 42-83 s). Any other direct reference (a path
  or an archive in ``replace``) goes to pip-compile.
- ``pip-compile``: pip-tools itself, ten to fifty times slower when its cache is cold.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from stackyard.config import Config, Release
from stackyard.errors import ResolutionError, ToolError
from stackyard.events import ItemFinished, Note, Outcome, Reporter, StepFinished, StepStarted, discard
from stackyard.recipes import Recipe
from stackyard.runner import RUNNER, Result, Runner
from stackyard.target import target_for
from stackyard.wheels.constraints import Constraints, load_constraints
from stackyard.wheels.extras import verify_extras
from stackyard.wheels.pip import isolated_env

LOCK_FORMAT = 1
CONSTRAINTS_FILE = "upper-constraints.txt"  # the name '# via -c ...' annotations show
OUTPUT_FILE = "lock.txt"
UNSAFE_PACKAGES = frozenset({"setuptools", "distribute", "pip"})  # pip-tools' UNSAFE_PACKAGES
UNSAFE_HEADING = "# The following packages are considered to be unsafe in a requirements file:"
HEARTBEAT = 10.0  # seconds between "still resolving" notes
RESOLVE_TIMEOUT = 3600.0  # seconds: a resolver that hangs is killed


@dataclass(frozen=True)
class LockInputs:
    """Everything a lock depends on; its digest is recorded in the lock header."""

    requirement_in: str
    constraints_txt: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{LOCK_FORMAT}\0{self.requirement_in}\0{self.constraints_txt}".encode()).hexdigest()


@dataclass(frozen=True)
class LockResult:
    project: str
    file: Path
    changed: bool
    packages: int
    seconds: float
    resolver: str = ""  # "" when the inputs' digest was unchanged and nothing ran
    pins_changed: bool = False  # the pins and hashes changed, not only the header (the inputs' digest, comments)


def pins_digest(text: str) -> str:
    """sha256 of a lock's requirement and ``--hash`` lines: what a venv installs, without the header and the
    ``# via`` annotations. Any upper-constraints move rewrites every lock's header (its inputs digest); only a
    lock whose pins digest moved needs its package built again."""
    lines = [line.strip() for line in text.splitlines()]
    return hashlib.sha256("\n".join(line for line in lines if line and not line.startswith("#")).encode()).hexdigest()


def lock_path(config: Config, release: Release, project: str) -> Path:
    return config.requirements_dir(release) / "locks" / f"{project}.txt"


def lock_inputs(recipe: Recipe, release: Release, constraints: Constraints) -> LockInputs:
    version = recipe.version(release.id)
    replaced = {name for name, _ in recipe.constraints.replace}
    effective = constraints.without({recipe.source.distribution, *recipe.constraints.drop, *replaced})
    extras = f"[{','.join(sorted(recipe.extras))}]" if recipe.extras else ""
    source = recipe.source.requirement(version)
    name, _, rest = source.partition("==") if "==" in source else source.partition(" @ ")
    req = f"{name}{extras}=={version}" if "==" in source else f"{name}{extras} @ {rest}"
    lines = [req, *recipe.requirements] + [f"{lib} @ {target}" for lib, target in recipe.constraints.replace]
    cons = [effective.pins[k].as_constraint() for k in sorted(effective.pins)]
    return LockInputs("\n".join(lines) + "\n", "\n".join(cons) + "\n")


def _header(recipe: Recipe, release: Release, inputs: LockInputs) -> str:
    return (
        f"# stackyard lock: {recipe.name} {recipe.version(release.id)} for OpenStack {release.id} "
        f"({release.series}), python {release.python}, Debian {release.codename}\n"
        f"# inputs sha256: {inputs.digest}\n"
        "# generated by 'stackyard lock'; do not edit\n"
    )


def recorded_digest(file: Path) -> str | None:
    try:
        with file.open() as handle:
            for line in handle:
                if line.startswith("# inputs sha256: "):
                    return line.split(":", 1)[1].strip()
                if not line.startswith("#"):
                    return None
    except FileNotFoundError:
        return None
    return None


def _candidate(text: str) -> str:
    """'name version' of a pip candidate repr (a URL to a wheel or sdist, or 'name==version')."""
    filename = text.split("#", 1)[0].split(" ", 1)[0].rsplit("/", 1)[-1]
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
        return f"{name} {version}"
    except ValueError:
        return text.replace("==", " ")


def explain_conflict(output: str, constraints: Constraints, uc_file: Path) -> str | None:
    """Turn pip's ResolutionImpossible into 'P needs X<spec>, upper-constraints pins X===V (file:line)'."""
    caused = output.split("The conflict is caused by:", 1)
    if len(caused) == 2:
        block = caused[1].split("\n\n", 1)[0]
        # "keystone 27.0.2 depends on oslo.config[extra]!=9.1.0 and >=9.7.0; python_version >= '3.8'"
        wants = re.findall(r"^\s*(\S+ \S+) depends on ([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*([^;\n]*)", block, re.M)
        requested = re.findall(r"The user requested \(constraint\) (\S+?)==(\S+)", block)
        for dependent, dep, spec in wants:
            spec = spec.strip()
            for name, pinned in requested:
                if canonicalize_name(name) == canonicalize_name(dep):
                    pin = constraints.get(name)
                    where = f"{uc_file}:{pin.line}" if pin else str(uc_file)
                    return (
                        f"{dependent} requires {dep}{spec or ' (any version)'}, but upper-constraints pins "
                        f"{name}==={pinned} ({where})"
                    )
        if block.strip():
            return "conflicting requirements:\n" + block.strip("\n")
    # pip-tools --quiet: only the exception's repr, e.g.
    # ResolutionImpossible: [RequirementInformation(requirement=SpecifierRequirement('tinyext>=2.0'),
    #                        parent=LinkCandidate('http://.../tinyapp-1.1.tar.gz#sha256=... (from ...)'))]
    for req_text, parent in re.findall(r"SpecifierRequirement\('([^']+)'\), parent=\w+\('([^']*)'", output):
        try:
            req = Requirement(req_text)
        except InvalidRequirement:
            continue
        pin = constraints.get(req.name)
        if pin is None or req.specifier.contains(pin.version, prereleases=True):
            continue
        dependent = _candidate(parent)
        return (
            f"{dependent} requires {req}, but upper-constraints pins "
            f"{pin.name}==={pin.version} ({uc_file}:{pin.line})"
        )
    missing = re.search(r"No matching distribution found for (\S+)", output)
    if missing:
        req = missing.group(1)
        name = re.split(r"[<>=!~\[ ]", req, maxsplit=1)[0]
        pin = constraints.get(name)
        where = f" (pinned at {uc_file}:{pin.line})" if pin else ""
        return f"no distribution on the index satisfies {req}{where}"
    return None


def pip_compile_command(config: Config, project: str, python: str = sys.executable) -> list[str]:
    """pip-compile (pip-tools) run in the scratch directory holding ``<project>.in`` and the constraints."""
    return [
        python, "-m", "piptools", "compile",
        "--quiet", "--no-header", "--generate-hashes", "--allow-unsafe", "--strip-extras",
        "--no-emit-index-url", "--no-emit-trusted-host", "--no-emit-find-links",
        "--index-url", config.index.url,
        "--cache-dir", str(config.paths.cache / "pip-tools"),
        "--pip-args", f"--isolated --cache-dir {config.paths.cache / 'pip'} --retries {config.index.retries}",
        "--constraint", CONSTRAINTS_FILE,
        "--output-file", OUTPUT_FILE,
        f"{project}.in",
    ]


def uv_command(config: Config, project: str, uv: str, python: str = sys.executable,
               refresh: tuple[str, ...] = ()) -> list[str]:
    """``uv pip compile`` with pip-compile's options: no header, hashes, extras stripped, split annotations.

    uv pins setuptools/pip like ``--allow-unsafe`` and writes no index URL unless asked; ``--python`` makes it
    evaluate markers for this interpreter, the one pip-compile would run on (no ``--universal``). ``refresh``
    names distributions whose index pages uv must ask again (the project itself: a version uploaded minutes
    ago is not in uv's cached page)."""
    return [
        uv, "pip", "compile",
        "--no-config", "--no-python-downloads", "--color", "never", "--quiet",
        "--python", python,
        "--default-index", config.index.url,
        "--cache-dir", str(config.paths.cache / "uv"),
        "--no-header", "--generate-hashes", "--annotation-style", "split",
        "--constraints", CONSTRAINTS_FILE,
        "--output-file", OUTPUT_FILE,
        *[arg for dist in refresh for arg in ("--refresh-package", dist)],
        f"{project}.in",
    ]


def uv_env(config: Config, base: dict[str, str] | None = None) -> dict[str, str]:
    """pip's isolated environment without any UV_* variable of the machine, plus uv's own isolation."""
    env = {k: v for k, v in (isolated_env() if base is None else base).items() if not k.startswith("UV_")}
    env.update(
        UV_NO_CONFIG="1",
        UV_NO_PROGRESS="1",
        NO_COLOR="1",
        UV_HTTP_TIMEOUT=str(int(config.index.timeout)),
        UV_HTTP_RETRIES=str(config.index.retries),
    )
    return env


def find_uv() -> str | None:
    """The uv binary of stackyard's own environment (the ``uv`` wheel), else one on PATH."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def _direct_references(inputs: LockInputs) -> list[tuple[str, str]]:
    """The .in's ``name @ URL`` lines, each with its URL."""
    return [(line, line.partition(" @ ")[2]) for line in inputs.requirement_in.splitlines() if " @ " in line]


def git_references(inputs: LockInputs) -> dict[str, str]:
    """The .in's ``name @ git+URL@ref`` lines (a git source), by canonical name."""
    return {canonicalize_name(Requirement(line).name): line for line, url in _direct_references(inputs) if url.startswith("git+")}


def resolver_for(config: Config, inputs: LockInputs) -> str:
    """The configured resolver, but pip-compile for direct references other than git ones (a path or an archive
    in 'replace': uv writes them differently); a git reference uv resolves is written back as pip-compile writes
    it (``to_pip_compile_format``)."""
    if config.lock.resolver == "uv" and any(not url.startswith("git+") for _, url in _direct_references(inputs)):
        return "pip-compile"
    return config.lock.resolver


# what pip-compile --generate-hashes writes above a direct reference it cannot hash (a git URL)
UNHASHABLE_WARNING = ("# WARNING: pip install will require the following package to be hashed.\n"
                      "# Consider using a hashable URL like https://github.com/jazzband/pip-tools/archive/SOMECOMMIT.zip")


def pip_compile_reference(line: str) -> str:
    """A git reference of the .in as pip-compile --strip-extras writes it: pip-tools' own formatter (it spells
    ``file:///x`` as ``file:/x``); the ref as the recipe gives it (uv writes the commit it resolved instead)."""
    from pip._internal.req.constructors import install_req_from_line
    from piptools.utils import format_requirement

    req = Requirement(line)
    req.extras = set()
    return str(format_requirement(install_req_from_line(str(req))))


_REQUIREMENT_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?(==| @ )")


def to_pip_compile_format(text: str, git: dict[str, str] | None = None) -> str:
    """uv's ``--no-header --generate-hashes`` requirements as pip-compile ``--allow-unsafe`` writes them.

    ``git``: the .in's git references by canonical name; uv writes each as ``name @ git+URL@<commit>`` with no
    warning, pip-compile as the .in's reference (``pip_compile_reference``) under its "cannot hash" warning:
    their first line is replaced by pip-compile's (their ``# via`` lines are the same).

    Each entry (a pin line with its ``--hash`` and ``# via`` continuation lines) is kept verbatim; entries are
    ordered by canonical name (what both tools do) and setuptools, pip and distribute move under
    pip-compile's "unsafe" heading after a blank line. Anything else at the top level (a comment, an option
    line) means uv wrote something this format has no place for: an error rather than a different lock."""
    entries: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if not line.strip() or line == UNSAFE_HEADING:  # (pip-compile's own output is a fixed point)
            continue
        if line[0].isspace():
            if not entries:
                raise ToolError(f"uv pip compile: unexpected output line {line!r}")
            entries[-1][1].append(line)
            continue
        match = _REQUIREMENT_LINE.match(line)
        if not match:
            raise ToolError(f"uv pip compile: unexpected output line {line!r}",
                            hint="set [lock] resolver = \"pip-compile\" in stackyard.toml")
        name = canonicalize_name(match.group(1))
        if git and name in git and match.group(3) == " @ ":
            entries.append((name, [*UNHASHABLE_WARNING.split("\n"), pip_compile_reference(git[name])]))
        else:
            entries.append((name, [line]))
    entries.sort(key=lambda e: e[0])
    safe = [lines for name, lines in entries if name not in UNSAFE_PACKAGES]
    unsafe = [lines for name, lines in entries if name in UNSAFE_PACKAGES]
    out = [line for lines in safe for line in lines]
    if unsafe:
        out += ["", UNSAFE_HEADING, *(line for lines in unsafe for line in lines)]
    return "\n".join(out) + "\n"


def explain_uv_conflict(output: str, constraints: Constraints, uc_file: Path) -> str | None:
    """uv's 'No solution found' derivation as 'P V requires X<spec>, but upper-constraints pins X===V'."""
    if "No solution found" not in output and "there is no version of" not in output:
        return None
    # one paragraph: drop the tree drawing and the wrapping
    flat = " ".join(re.sub(r"^[\s×╰─▶│]+", "", line) for line in output.splitlines())
    flat = re.sub(r"\s+", " ", flat)
    name_re = r"[A-Za-z0-9][A-Za-z0-9._-]*"
    # "tinyapp==1.1 depends on tinyext>=2.0" / "keystone==27.0.2 depends on oslo-config>=9.7.0,<10"
    for dependent, version, dep, spec in re.findall(
        rf"({name_re})==(\S+?) depends on ({name_re})(?:\[[^\]]*\])?((?:[<>=!~]=?[^\s,]+)(?:,\s?[<>=!~]=?[^\s,]+)*)", flat
    ):
        pin = constraints.get(dep)
        if pin is None:
            continue
        try:
            if Requirement(f"{dep}{spec}").specifier.contains(pin.version, prereleases=True):
                continue
        except InvalidRequirement:
            continue
        return (
            f"{canonicalize_name(dependent)} {version} requires {canonicalize_name(dep)}{spec}, "
            f"but upper-constraints pins {pin.name}==={pin.version} ({uc_file}:{pin.line})"
        )
    missing = re.search(rf"there is no version of ({name_re})(\S*)", flat)
    if missing:
        name, spec = missing.group(1), missing.group(2).rstrip(".,")
        pin = constraints.get(name)
        where = f" (pinned at {uc_file}:{pin.line})" if pin else ""
        return f"no distribution on the index satisfies {name}{spec}{where}"
    block = output.strip()
    return "conflicting requirements:\n" + block[-3000:] if block else None


def _resolve(cmd: list[str], cwd: Path, env: dict[str, str], log: Path, report: Reporter, label: str,
             runner: Runner) -> Result:
    """Run the resolver through the runner (its output in ``log``); a note every HEARTBEAT seconds while it runs."""
    started = time.monotonic()
    finished = threading.Event()

    def heartbeat() -> None:
        while not finished.wait(HEARTBEAT):
            report(Note("lock", f"{label}: still resolving ({time.monotonic() - started:.0f}s)"))

    beat = threading.Thread(target=heartbeat, name="lock-heartbeat", daemon=True)
    beat.start()
    try:
        return runner.run(cmd, cwd=cwd, env=env, inherit_env=False, log=log, check=False, timeout=RESOLVE_TIMEOUT,
                          what=f"resolving {label}")
    finally:
        finished.set()
        beat.join()


def compile_lock(config: Config, release: Release, recipe: Recipe, *, force: bool = False,
                 report: Reporter = discard, runner: Runner = RUNNER) -> LockResult:
    started = time.monotonic()
    if sys.version_info[:2] != tuple(int(x) for x in release.python.split(".")):
        raise ToolError(
            f"release {release.id} targets python {release.python}, stackyard runs on "
            f"{sys.version_info.major}.{sys.version_info.minor}",
            hint=f"install stackyard with python{release.python} (make deps does) to lock for this release",
        )
    uc_file = config.requirements_dir(release) / "upper-constraints.txt"
    constraints = load_constraints(uc_file, target_for(config, release))
    inputs = lock_inputs(recipe, release, constraints)
    verify_extras(config, release, recipe)  # pip would ignore an extra the project does not declare
    out = lock_path(config, release, recipe.name)
    if not force and recorded_digest(out) == inputs.digest:
        from stackyard.wheels.constraints import load_lock

        return LockResult(recipe.name, out, False, len(load_lock(out)), time.monotonic() - started)

    resolver = resolver_for(config, inputs)
    label = f"{recipe.name} {recipe.version(release.id)}"
    if resolver == "uv":
        uv = find_uv()
        if uv is None:
            raise ToolError("uv is not installed (the 'uv' wheel or a uv on PATH)",
                            hint='install stackyard\'s dependencies (make deps), or set [lock] resolver = "pip-compile"')
        refresh = (recipe.source.distribution,) if recipe.source.pypi else ()
        cmd, env = uv_command(config, recipe.name, uv, refresh=refresh), uv_env(config)
    else:
        cmd, env = pip_compile_command(config, recipe.name), isolated_env()
    if resolver != config.lock.resolver:
        report(Note("lock", f"{label}: a direct reference in its requirements: {resolver} instead of {config.lock.resolver}"))
    report(Note("lock", f"{label}: resolving with {resolver} ..."))

    with tempfile.TemporaryDirectory(prefix="stackyard-lock-") as tmp:
        work = Path(tmp)
        (work / f"{recipe.name}.in").write_text(inputs.requirement_in)
        (work / CONSTRAINTS_FILE).write_text(inputs.constraints_txt)
        log = config.logs_dir("lock", release) / f"{recipe.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        result = _resolve(cmd, work, env, log, report, label, runner)
        if result.returncode != 0:
            output = result.output
            explained = (explain_uv_conflict if resolver == "uv" else explain_conflict)(output, constraints, uc_file)
            raise ResolutionError(
                f"cannot lock {recipe.name} {recipe.version(release.id)} for {release.id}: {resolver} exited "
                f"{result.returncode} (log: {log}): " + (explained or output.strip()[-3000:]),
                hint="drop or replace the pin in the recipe's 'constraints' section, or pick another version",
            )
        body = (work / OUTPUT_FILE).read_text()
    if resolver == "uv":
        body = to_pip_compile_format(body, git_references(inputs))
    text = _header(recipe, release, inputs) + body
    previous = out.read_text() if out.exists() else None
    changed = previous != text
    pins_changed = previous is None or pins_digest(previous) != pins_digest(text)
    if changed:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = out.with_suffix(".tmp")
        tmp_out.write_text(text)
        tmp_out.replace(out)
    from stackyard.wheels.constraints import parse_lock

    return LockResult(recipe.name, out, changed, len(parse_lock(text, out)), time.monotonic() - started, resolver,
                      pins_changed=pins_changed)


def lock_projects(config: Config, release: Release, recipes: Iterable[Recipe], *, force: bool = False,
                  report: Reporter = discard, runner: Runner = RUNNER) -> list[LockResult]:
    """Lock each recipe in turn: a StepStarted, notes while one resolves, an ItemFinished per project."""
    chosen = list(recipes)
    started = time.monotonic()
    report(StepStarted("lock", len(chosen), f"for {release.id} with {config.lock.resolver}"))
    results = []
    for index, recipe in enumerate(chosen, 1):
        result = compile_lock(config, release, recipe, force=force, report=report, runner=runner)
        results.append(result)
        state = "changed" if result.changed else "unchanged" if result.resolver else "up to date (inputs unchanged)"
        detail = f"{state}, {result.packages} packages" + (f", {result.resolver}" if result.resolver else "")
        report(ItemFinished("lock", recipe.name, recipe.version(release.id),
                            Outcome.BUILT if result.changed else Outcome.CACHED, result.seconds, index, len(chosen),
                            detail=detail))
    counts = {"changed": sum(r.changed for r in results), "unchanged": sum(not r.changed for r in results)}
    report(StepFinished("lock", time.monotonic() - started, counts))
    return results
