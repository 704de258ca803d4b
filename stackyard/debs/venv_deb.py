"""venv-<project> packages: debian/ rendered from the recipe, built with
dpkg-buildpackage and dh-virtualenv, offline from the release's wheelhouse.

Before building, every pin of the project's lock is matched to a wheel of the
wheelhouse and the hash chain is checked (a fetched wheel's sha256 is one the
lock allows; a built wheel came from an sdist the lock allows; the file on
disk has the sha256 the manifest records). After building, the package must
provide every console script and service command the recipe names, and
lintian must report no error.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import ClassVar

import yaml
from debian.changelog import Changelog
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError
from packaging.utils import canonicalize_name

from stackyard import __version__, stage
from stackyard.config import Config, Release
from stackyard.debs import dpkg
from stackyard.debs import record as deb_record
from stackyard.debs.dpkg import debs_dir
from stackyard.debs.record import DebRecord
from stackyard.debs.version import debian_upstream, decide, input_lines, recorded_inputs
from stackyard.errors import BuildError, ConfigError, InputError, IntegrityError
from stackyard.events import Note, Reporter, discard
from stackyard.recipes import Recipe
from stackyard.runner import RUNNER, Runner
from stackyard.wheels.cache import sha256_file
from stackyard.wheels.constraints import load_lock
from stackyard.wheels.lock import lock_path
from stackyard.wheels.upstream_requirements import read_source
from stackyard.wheels.wheelhouse import read_manifest


@dataclass(frozen=True)
class DebResult:
    project: str
    package: str
    version: str
    file: Path
    seconds: float
    new_entry: bool
    lintian_warnings: tuple[str, ...]
    log: Path
    unchanged: bool = False  # nothing it is made from changed: the existing file stands (no build, lintian or smoke)


def changelog_path(config: Config, release: Release, package: str) -> Path:
    """The package's changelog, kept between builds: it is the revision history."""
    return debs_dir(config, release) / "changelogs" / f"{package}.changelog"


def _lock_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def verify_wheelhouse(config: Config, release: Release, recipe: Recipe) -> Path:
    """Check the lock -> wheelhouse hash chain; returns the install requirements file."""
    wheelhouse = config.wheelhouse_dir(release)
    lock_file = lock_path(config, release, recipe.name)
    lock = load_lock(lock_file)
    manifest = read_manifest(wheelhouse)
    if manifest is None:
        raise InputError(f"{wheelhouse}: no wheelhouse", hint=f"run 'stackyard wheels --release {release.id} {recipe.name}'")
    wheels = {(canonicalize_name(w["name"]), w["version"]): w for w in manifest["wheels"]}
    by_url = {w.get("url"): w for w in manifest["wheels"] if w.get("url")}
    for entry in lock:
        wheel = by_url.get(entry.url) if entry.url else wheels.get((entry.key, entry.version))
        where = f"{lock_file}:{entry.line}"
        if wheel is None:
            raise InputError(
                f"{entry.name}=={entry.version or entry.url} ({where}) has no wheel in {wheelhouse}",
                hint=f"run 'stackyard wheels --release {release.id} {recipe.name}'",
            )
        allowed = {h.split(":", 1)[1] for h in entry.hashes}
        source_hash = wheel["sha256"] if wheel["origin"] == "fetched" else wheel.get("source_sha256")
        if allowed and source_hash not in allowed:
            raise IntegrityError(
                f"{wheel['filename']}: sha256 {source_hash} is not one {where} allows",
                hint=f"rebuild the wheelhouse: stackyard wheels --release {release.id} {recipe.name}",
            )
        path = wheelhouse / wheel["filename"]
        if not path.exists() or sha256_file(path) != wheel["sha256"]:
            raise IntegrityError(
                f"{path}: missing or its sha256 differs from the wheelhouse manifest",
                hint=f"rebuild the wheelhouse: stackyard wheels --release {release.id} {recipe.name}",
            )
    install = wheelhouse / "install" / f"{recipe.name}.txt"
    if not install.exists():
        raise InputError(f"{install}: missing", hint=f"run 'stackyard wheels --release {release.id} {recipe.name}'")
    return install


# scripts that debian/rules runs, copied into debian/ (as venv-fixup.py, lintian-overrides.py)
BUILD_HELPERS = ("venv_fixup.py", "lintian_overrides.py")


def lintian_candidates(config: Config, release: Release, recipe: Recipe) -> str:
    """recipes/debian/lintian-overrides for ``recipe``'s package: its name and paths filled in."""
    venv = f"{config.deb.prefix}/{recipe.name}".lstrip("/")
    fill = {"@PACKAGE@": recipe.package, "@PREFIX@": config.deb.prefix.strip("/"), "@VENV@": venv,
            "@SITE@": f"{venv}/lib/python{release.python}/site-packages"}
    text = (config.paths.recipes / "debian" / "lintian-overrides").read_text()
    for key, value in fill.items():
        text = text.replace(key, value)
    return text


def _templates(config: Config) -> Environment:
    return Environment(
        loader=FileSystemLoader(config.paths.recipes / "debian"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def _epoch(config: Config, release: Release) -> int:
    """A date from the inputs (the upstream requirements' commit date), never the clock."""
    source = read_source(config.requirements_dir(release))
    day = source.date if source and source.date else "1970-01-01"
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp())


def packaging_digest(config: Config, recipe: Recipe) -> str:
    """Everything besides the lock that shapes the package: recipe, templates, settings."""
    h = hashlib.sha256(f"{__version__}\0{config.deb.prefix}\0{config.deb.maintainer}\0".encode())
    # the recipe as data, without its image section: an image change rebuilds images, not debs
    data = {k: v for k, v in (yaml.safe_load(recipe.file.read_text()) or {}).items() if k != "image"}
    h.update(json.dumps(data, sort_keys=True).encode() + b"\0")
    files = [*(Path(__file__).with_name(h) for h in BUILD_HELPERS), *sorted((config.paths.recipes / "debian").iterdir())]
    for file in files:
        h.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return h.hexdigest()


def newest_published(config: Config, release: Release, package: str, *, runner: Runner = RUNNER) -> str | None:
    """The highest version of ``package`` in the release's distributions, if any."""
    from debian.debian_support import version_compare

    from stackyard.repo.apt import AptRepository, final, staging

    if not (config.repo.path / "db").exists():
        return None
    repo = AptRepository(config, runner)
    versions = [p.version for dist in (staging(release), final(release)) for p in repo.list(dist) if p.name == package]
    return max(versions, key=functools.cmp_to_key(version_compare)) if versions else None


def inputs_digest(changelog: Changelog) -> str:
    """One digest of the inputs the changelog's newest entry records (the lock's and the packaging's)."""
    inputs = recorded_inputs(changelog[0].changes())
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def next_changelog(config: Config, release: Release, recipe: Recipe, lock_text: str, *,
                   runner: Runner = RUNNER) -> tuple[Changelog, bool]:
    file = changelog_path(config, release, recipe.package)
    changelog = Changelog(file.read_text()) if file.exists() else Changelog()
    previous_version = str(changelog.version) if file.exists() else None
    previous_inputs = recorded_inputs(changelog[0].changes()) if file.exists() else {}
    seeded = None
    if previous_version is None:  # no changelog kept here: never reuse a published version
        previous_version = seeded = newest_published(config, release, recipe.package, runner=runner)
    inputs = {"lock": _lock_digest(lock_text), "packaging": packaging_digest(config, recipe)}
    upstream = recipe.version(release.id)
    decision = decide(previous_version, previous_inputs, upstream, release.id, inputs)
    if seeded and decision.version != f"{debian_upstream(upstream)}-{release.id}.1":
        decision = dataclasses.replace(
            decision, reason=f"Rebuild of {upstream} after the published {seeded} (its changelog was not kept here).")
    if decision.changed:
        # a date from the inputs, never the clock; each entry newer than the last
        epoch = _epoch(config, release)
        if file.exists() and changelog.date:
            epoch = max(epoch, int(parsedate_to_datetime(changelog.date).timestamp()) + 1)
        changelog.new_block(
            package=recipe.package, version=decision.version, distributions=f"{release.codename}-{release.id}",
            urgency="medium", author=config.deb.maintainer,
            date=format_datetime(datetime.fromtimestamp(epoch, timezone.utc)),
            changes=["", f"  * {decision.reason}", *input_lines(inputs), ""],
        )
    return changelog, decision.changed


def render_debian(config: Config, release: Release, recipe: Recipe, src: Path, changelog: Changelog) -> None:
    env = _templates(config)
    venv = f"{config.deb.prefix}/{recipe.name}"
    context = {
        "recipe": recipe, "release": release, "package": recipe.package, "prefix": config.deb.prefix, "venv": venv,
        "python": f"python{release.python}", "maintainer": config.deb.maintainer, "user": recipe.name,
        "services": recipe.services, "console_scripts": recipe.console_scripts,
        "runtime_packages": recipe.runtime_packages, "wheelhouse": str(config.wheelhouse_dir(release)),
        "upstream_version": recipe.version(release.id),
    }
    debian = src / "debian"
    debian.mkdir(parents=True)

    def render(template: str, dest: Path, **extra: object) -> None:
        try:
            text = env.get_template(template).render(context | extra)
        except TemplateError as exc:
            where = getattr(exc, "lineno", None)
            raise ConfigError(f"{config.paths.recipes / 'debian' / template}{':' + str(where) if where else ''}: {exc}") from None
        dest.write_text(text)

    pkg = recipe.package
    render("control.j2", debian / "control")
    render("rules.j2", debian / "rules")
    (debian / "rules").chmod(0o755)
    render("links.j2", debian / f"{pkg}.links")
    render("tmpfiles.j2", debian / f"{pkg}.tmpfiles")
    render("logrotate.j2", debian / f"{pkg}.logrotate")
    for script in ("postinst", "prerm", "postrm"):
        render(f"{script}.j2", debian / f"{pkg}.{script}")
    for service in recipe.services:
        render("service.j2", debian / f"{pkg}.{service.name}.service", service=service)
    etc = src / "etc" / recipe.name
    etc.mkdir(parents=True)
    render("conf.j2", etc / f"{recipe.name}.conf")
    for api in recipe.apis:
        render("api.service.j2", debian / f"{pkg}.{api.name}.service", api=api)
        render("uwsgi.ini.j2", etc / f"{api.name}-uwsgi.ini", api=api)
    if recipe.rootwrap or recipe.privsep:
        render("sudoers.j2", debian / "sudoers")
    (debian / f"{pkg}.install").write_text(
        "".join(f"etc/{recipe.name}/{f.name} etc/{recipe.name}/\n" for f in sorted(etc.iterdir())))
    shutil.copy(config.paths.recipes / "debian" / "copyright", debian / "copyright")
    # the candidates, scoped to this package's paths; debian/rules keeps those whose path the venv has
    (debian / "lintian-overrides.in").write_text(lintian_candidates(config, release, recipe))
    for helper in BUILD_HELPERS:
        shutil.copy(Path(__file__).with_name(helper), debian / helper.replace("_", "-"))
    (debian / "changelog").write_text(str(changelog))


def check_contents(deb: Path, recipe: Recipe, venv: str, *, runner: Runner = RUNNER) -> None:
    paths = dpkg.contents(deb, runner=runner)
    missing = [s for s in recipe.console_scripts if f"{venv}/bin/{s}" not in paths]
    missing += [
        f"{svc.command.split()[0]} (service {svc.name})" for svc in recipe.services
        if f"{venv}/bin/{svc.command.split()[0]}" not in paths
    ]
    helpers = [f"{recipe.name}-rootwrap"] * recipe.rootwrap + ["privsep-helper"] * recipe.privsep
    missing += [f"{h} (sudoers)" for h in helpers if f"{venv}/bin/{h}" not in paths]
    if recipe.rootwrap and f"/etc/{recipe.name}/rootwrap.conf" not in paths:
        missing.append(f"etc/{recipe.name}/rootwrap.conf (rootwrap: true, but the project ships none)")
    if missing:
        raise InputError(
            f"{recipe.file}: {recipe.package} does not provide {', '.join(missing)} in {venv}/bin",
            hint="fix console_scripts / services in the recipe to name commands the project installs",
        )


def _existing(config: Config, release: Release, package: str, version: str) -> tuple[Path, DebRecord] | None:
    """The built file of ``version`` whose record still matches its bytes, with that record."""
    for deb in sorted(debs_dir(config, release).glob(f"{package}_{version}_*.deb")):
        record = deb_record.intact(deb, version)
        if record is not None:
            return deb, record
    return None


def build_log(config: Config, release: Release, package: str, version: str) -> Path:
    return config.logs_dir("deb", release) / f"{package}_{version}.log"


def lintian_log(config: Config, release: Release, package: str, version: str) -> Path:
    return config.logs_dir("lintian", release) / f"{package}_{version}.log"


def smoke_log(config: Config, release: Release, package: str, version: str) -> Path:
    return config.logs_dir("smoke", release) / f"{package}_{version}_{config.architecture}.log"


STAGES = ("build", "lintian", "smoke")


@dataclass(frozen=True)
class DebStatus:
    """What ``stackyard deb`` would do for a project now, without building: ``todo`` is a tail of STAGES."""

    project: str
    package: str
    version: str  # the version a build would make (or the one that stands)
    todo: tuple[str, ...]  # () = inputs unchanged, the file stands, linted and smoke-tested
    reason: str
    file: Path | None  # the intact built file of ``version``, if any
    lintian_warnings: tuple[str, ...]  # recorded for that file (linted)

    @property
    def unchanged(self) -> bool:
        return not self.todo


def _entry_reason(changelog: Changelog) -> str:
    lines = [line.strip() for line in changelog[0].changes() if line.strip().startswith("* ")]
    return lines[0][2:] if lines else "a new changelog entry"


def deb_status(config: Config, release: Release, recipe: Recipe, *, runner: Runner = RUNNER) -> DebStatus:
    """The fast check before a build: the same decision ``build_deb`` takes (lock and packaging digests against
    the kept changelog, the file against its record), plus whether that file was linted and smoke-tested."""
    deb_stage = venv_deb_stage(config, release, recipe, runner=runner)
    changelog, new_entry, version = deb_stage.changelog, deb_stage.new_entry, deb_stage.version
    if new_entry:
        return DebStatus(recipe.name, recipe.package, version, STAGES, _entry_reason(changelog), None, ())
    found = _existing(config, release, recipe.package, version)
    if found is None:
        return DebStatus(recipe.name, recipe.package, version, STAGES,
                         f"inputs unchanged, but no intact file of {version} is here", None, ())
    deb, data = found
    warnings = data.lintian_warnings or ()
    if not data.linted:
        return DebStatus(recipe.name, recipe.package, version, STAGES[1:], f"{deb.name} is built but not linted", deb, ())
    if not data.smoke_passed:
        return DebStatus(recipe.name, recipe.package, version, STAGES[2:], f"{deb.name} has not passed its smoke test", deb,
                         warnings)
    return DebStatus(recipe.name, recipe.package, version, (),
                     f"inputs unchanged: {deb.name} stands (same lock and packaging; linted, smoke test passed)", deb, warnings)


def built_deb(config: Config, release: Release, recipe: Recipe) -> tuple[Path, DebRecord]:
    """The intact file of the version the kept changelog names, with its record (what lintian and smoke test)."""
    cl = changelog_path(config, release, recipe.package)
    if not cl.exists():
        raise InputError(f"{recipe.package} was never built for {release.id}",
                         hint=f"stackyard deb --release {release.id} {recipe.name}")
    version = str(Changelog(cl.read_text()).version)
    found = _existing(config, release, recipe.package, version)
    if found is None:
        raise InputError(f"{recipe.package} {version}: no intact file in {debs_dir(config, release)}",
                         hint=f"stackyard deb --release {release.id} {recipe.name}")
    return found


@dataclass(frozen=True)
class CheckResult:
    """What a check of one built file found: lintian's warnings, or the checks the smoke test passed."""

    package: str
    version: str
    file: Path
    log: Path
    seconds: float
    findings: tuple[str, ...]


def lint_deb(config: Config, release: Release, recipe: Recipe, *, report: Reporter = discard,
             runner: Runner = RUNNER) -> CheckResult:
    """lintian on the built file (``stackyard deb --no-lint`` left it unlinted): its warnings are recorded,
    its errors fail (ToolError) and leave the file unlinted, so it is neither smoke-tested nor published."""
    started = time.monotonic()
    deb, data = built_deb(config, release, recipe)
    log = lintian_log(config, release, recipe.package, data.version)
    log.parent.mkdir(parents=True, exist_ok=True)
    warnings = dpkg.lintian(deb, log, runner=runner)
    deb_record.update(deb, lintian_warnings=warnings)
    seconds = time.monotonic() - started
    report(Note("lintian", f"{deb.name}: " + (f"{len(warnings)} warnings" if warnings else "clean")
                + f" in {seconds:.1f}s (log: {log})"))
    for line in dpkg.tag_counts(warnings):
        report(Note("lintian", line))
    return CheckResult(recipe.package, data.version, deb, log, seconds, warnings)


@dataclass(frozen=True)
class VenvDebStage:
    """``venv-<project>`` as a stage (stackyard.stage): its inputs are the lock's and the packaging's digests the
    kept changelog's newest entry records (a new entry when they moved); its record lies beside the file of the
    version that entry names."""

    config: Config
    release: Release
    recipe: Recipe
    changelog: Changelog  # the kept changelog, with a new entry when the inputs moved
    new_entry: bool
    lint: bool
    runner: Runner
    install: Path | None = None  # the wheelhouse's requirements, hash-checked (verify_wheelhouse), if done already

    kind: ClassVar[str] = "deb"

    @property
    def name(self) -> str:
        return self.recipe.package

    @property
    def version(self) -> str:
        return str(self.changelog.version)

    def inputs(self) -> str:
        return inputs_digest(self.changelog)

    @property
    def deb(self) -> Path:
        """Where the file of this version lies (built here: this machine's architecture)."""
        return debs_dir(self.config, self.release) / f"{self.recipe.package}_{self.version}_{self.config.architecture}.deb"

    def record_path(self) -> Path:
        return stage.record_file(self.deb)

    def record_type(self) -> type[DebRecord]:
        return DebRecord

    def intact(self, record: DebRecord) -> bool:
        return record.version == self.version and self.deb.exists() and sha256_file(self.deb) == record.sha256

    def stands(self, record: DebRecord) -> str:
        return self.deb.name

    def build(self, inputs: str, previous: DebRecord | None, report: Reporter) -> DebRecord:
        config, release, recipe, runner = self.config, self.release, self.recipe, self.runner
        install = self.install or verify_wheelhouse(config, release, recipe)
        build_root = config.paths.output / "build" / release.id
        src = build_root / recipe.package
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        render_debian(config, release, recipe, src, self.changelog)
        shutil.copy(install, src / "requirements.txt")

        log = build_log(config, release, recipe.package, self.version)
        epoch = int(parsedate_to_datetime(self.changelog.date).timestamp()) if self.changelog.date else _epoch(config, release)
        started = time.monotonic()
        deb = dpkg.buildpackage(src, recipe.package, self.version, log, epoch, runner=runner)
        report(Note("deb", f"built {deb.name} in {time.monotonic() - started:.1f}s (log: {log})"))
        check_contents(deb, recipe, f"{config.deb.prefix}/{recipe.name}", runner=runner)
        warnings = _lint(deb, log, report, runner) if self.lint else None
        dest = self.deb
        if deb.name != dest.name:
            raise BuildError(f"dpkg-buildpackage made {deb.name}, not {dest.name} (log: {log})",
                             hint=f"{recipe.file}: the package's architecture must be this machine's ({config.architecture})")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(deb, dest)
        cl = changelog_path(config, release, recipe.package)
        cl.parent.mkdir(parents=True, exist_ok=True)
        cl.write_text(str(self.changelog))
        digest = sha256_file(dest)
        smoke = None
        if previous is not None and previous.sha256 == digest:  # an identical rebuild keeps its verdicts
            smoke = previous.smoke
            if warnings is None and previous.linted:
                warnings = previous.lintian_warnings
        return DebRecord(recipe.package, self.version, digest, warnings, smoke, inputs)


def _lint(deb: Path, log: Path, report: Reporter, runner: Runner) -> tuple[str, ...]:
    started = time.monotonic()
    warnings = dpkg.lintian(deb, log, runner=runner)
    seconds = time.monotonic() - started
    report(Note("lintian", f"{len(warnings)} warnings in {seconds:.1f}s" if warnings else f"clean in {seconds:.1f}s"))
    for line in dpkg.tag_counts(warnings):
        report(Note("lintian", line))
    return warnings


def venv_deb_stage(config: Config, release: Release, recipe: Recipe, *, lint: bool = True,
                   runner: Runner = RUNNER, install: Path | None = None) -> VenvDebStage:
    """The stage of ``venv-<project>`` now: the kept changelog with a new entry if its inputs moved."""
    lock_file = lock_path(config, release, recipe.name)
    if not lock_file.exists():
        raise InputError(f"{lock_file}: no lock for {recipe.name}", hint=f"run 'stackyard lock --release {release.id} {recipe.name}'")
    changelog, new_entry = next_changelog(config, release, recipe, lock_file.read_text(), runner=runner)
    return VenvDebStage(config, release, recipe, changelog, new_entry, lint, runner, install)


def build_deb(config: Config, release: Release, recipe: Recipe, *, rebuild: bool = False, lint: bool = True,
              report: Reporter = discard, runner: Runner = RUNNER) -> DebResult:
    """Build ``venv-<project>`` through ``stage.run``: with its inputs unchanged since the last build (same lock
    and packaging, so no new changelog entry) and that file intact, the file stands (``unchanged``) unless
    ``rebuild``. ``lint=False``: no lintian (``lint_deb`` later); the record says so (``lintian_warnings`` null).
    A file that stands but was built with ``lint=False`` is linted now."""
    started = time.monotonic()
    install = verify_wheelhouse(config, release, recipe)
    deb_stage = venv_deb_stage(config, release, recipe, lint=lint, runner=runner, install=install)
    why = f"{deb_stage.version}: {_entry_reason(deb_stage.changelog)}" if deb_stage.new_entry else None
    outcome = stage.run(deb_stage, rebuild=rebuild, report=report, reason=why)
    data = outcome.record
    dest = deb_stage.deb
    log = build_log(config, release, recipe.package, data.version)
    if outcome.unchanged and lint and not data.linted:  # built with --no-lint before: lint it now
        data = dataclasses.replace(data, lintian_warnings=lint_deb(config, release, recipe, report=report,
                                                                   runner=runner).findings)
    if not outcome.unchanged and data.lintian_warnings is None:
        report(Note("deb", "not linted (stackyard lintian), not smoke-tested"))
    return DebResult(recipe.name, recipe.package, data.version, dest, time.monotonic() - started, deb_stage.new_entry,
                     data.lintian_warnings or (), log, unchanged=outcome.unchanged)
