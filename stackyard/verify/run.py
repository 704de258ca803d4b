"""``stackyard verify``: a control plane from the release's packages answers a scenario.

In a fresh bookworm root booted with systemd-nspawn (``container.py``), as an
operator would: apt points at the release's staging (or promoted)
distribution with the signed key (``operator_data.apt_plan`` / ``apt_files``,
``file:/srv/repo``) and installs MariaDB, RabbitMQ, memcached and the
``venv-*`` packages; configuration files are written as puppet writes them
(``plan.py``, ``templates/``); the database commands run as the service users;
every service starts through the unit its package ships; then the
``openstack`` client of ``venv-python-openstackclient`` runs the scenario
(``scenario.py``). The result is a ``VerifyRecord``: what the promotion gate
reads.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import re
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

from stackyard.config import Config, Release
from stackyard.errors import BuildError, InputError, StackyardError
from stackyard.events import Event, Note, Unchanged
from stackyard.recipes import load_recipes
from stackyard.repo.apt import final, staging
from stackyard.repo.signing import KEYRING_NAME
from stackyard.rootfs import BASE_PACKAGES as ROOT_BASE
from stackyard.rootfs import rootfs_tarball
from stackyard.runner import RUNNER, Runner, tail
from stackyard.verify.container import APT_ARCHIVES, Container, clean_leftovers
from stackyard.verify.plan import BASE_PACKAGES, Override, VerifyPlan, make_plan
from stackyard.verify.record import PackageRecord, StepRecord, VerifyRecord, passed_with, read_packages_index, write_record
from stackyard.verify.upgrade import Upgrade

# the cached root: what boots (systemd, dbus) and Debian's MariaDB, RabbitMQ and
# memcached, baked in so that a verify does not install them every time
ROOT_PACKAGES = (*ROOT_BASE, "systemd-sysv", "dbus", *BASE_PACKAGES, "curl")
ROOT_OPTIONS = ("--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/locale/*",
                "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright")
JOURNAL_LINES = 30
JOURNAL_SCAN = 400  # lines of a failed unit's journal searched for its first errors
FIRST_ERRORS = 3
Reporter = Callable[[Event], None]


class VerifyError(BuildError):
    """The control plane did not come up or did not answer the scenario (exit 5)."""


class StepFailed(Exception):
    """Inside a step: what failed, and which units' journals say why."""

    def __init__(self, message: str, units: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message, self.units = message, units


@dataclass
class VerifyResult:
    record: VerifyRecord
    path: Path  # record.json
    workdir: Path
    cleaned: list[str]
    unchanged: bool = False  # the latest record passed with the very same packages: nothing ran


def machine_name(release: Release, workdir: Path) -> str:
    """The machine's name and hostname: per release and per output directory (two checkouts may verify at once)."""
    return f"sy-verify-{release.id.replace('.', '-')}-{hashlib.sha256(str(workdir).encode()).hexdigest()[:6]}"


def workdir_of(config: Config, release: Release) -> Path:
    return config.paths.output / "verify" / release.id


def snapshot_repo(base: Path, distribution: str, into: Path, component: str, architecture: str) -> dict[str, PackageRecord]:
    """The distribution's indexes (copied) and pool files (hard links) under ``into``; name -> package."""
    source = base / "dists" / distribution
    if not (source / "InRelease").exists():
        return {}
    shutil.copytree(source, into / "dists" / distribution, ignore=shutil.ignore_patterns("snapshots"))
    packages = read_packages_index(into / "dists" / distribution, component, architecture)
    for p in packages.values():
        target = into / p.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(base / p.filename, target)
        except OSError:
            shutil.copy2(base / p.filename, target)
    return packages


@contextmanager
def _exclusive(workdir: Path, release: Release) -> Iterator[None]:
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another verify of {release.id} is running ({workdir / '.lock'} is held)",
                             hint="wait for it, or stop it: it cleans up after itself") from None
        yield


@contextmanager
def _terminated_is_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the container is killed on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class MemorySampler:
    """Peak memory of the container, once a second: the PSS of every process in its pid namespace plus what
    its root's tmpfs holds."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.peak = 0
        self._leader = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="verify-memory", daemon=True)

    def start(self, leader: int) -> None:
        self._leader = leader
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def sample(self) -> int:
        try:
            ns = os.readlink(f"/proc/{self._leader}/ns/pid")
            fs = os.statvfs(self.root)
        except OSError:
            return 0
        total = (fs.f_blocks - fs.f_bfree) * fs.f_frsize
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{entry.name}/ns/pid") != ns:
                    continue
                with open(f"/proc/{entry.name}/smaps_rollup") as fh:
                    for line in fh:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1]) * 1024
                            break
            except (OSError, ValueError):
                continue
        return total

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self.peak = max(self.peak, self.sample())


class Session:
    """One verify: the container, the plan, the steps done so far."""

    def __init__(self, config: Config, release: Release, plan: VerifyPlan, container: Container, report: Reporter) -> None:
        self.config, self.release, self.plan, self.c, self.report = config, release, plan, container, report
        self.steps: list[StepRecord] = []
        self.failure: dict[str, str] | None = None

    @contextmanager
    def step(self, name: str, kind: str = "phase", service: str = "", units: tuple[str, ...] = (),
             infrastructure: bool = False) -> Iterator[StepRecord]:
        """A step of the record; its failure becomes a VerifyError (an ``infrastructure`` step's stays as it is:
        the machine failed, not the packages)."""
        entry = StepRecord(name=name, kind=kind, service=service)
        started = time.monotonic()
        try:
            yield entry
        except StackyardError as exc:
            if not infrastructure:
                raise self._failed(entry, started, exc.message, units) from None
            entry.seconds, entry.result, entry.detail = round(time.monotonic() - started, 1), "failed", exc.message[:300]
            self.steps.append(entry)
            raise
        except StepFailed as exc:
            raise self._failed(entry, started, exc.message, exc.units or units) from None
        entry.seconds = round(time.monotonic() - started, 1)
        self.steps.append(entry)
        self.report(Note("verify", f"{name}: {entry.detail or entry.state or 'ok'} ({entry.seconds:.1f}s)"))

    def _failed(self, entry: StepRecord, started: float, message: str, units: tuple[str, ...]) -> VerifyError:
        entry.seconds = round(time.monotonic() - started, 1)
        entry.result = "failed"
        entry.detail = message.strip().splitlines()[0][:300] if message.strip() else ""
        self.steps.append(entry)
        return self.fail(entry.name, message, units)

    def fail(self, step: str, message: str, units: tuple[str, ...]) -> VerifyError:
        """The error naming the step, its unit(s), the first errors and the last lines of their journals."""
        journals = []
        if self.c.running:
            # the unit that is not running is the one to blame; else each named unit
            broken = [u for u in units if self.c.unit_state(u).get("ActiveState") != "active"] or list(units)
            for unit in broken:
                state = self.c.unit_state(unit)
                journals.append((unit, f"{state.get('ActiveState', '?')}/{state.get('SubState', '?')}",
                                 self.c.journal(unit, JOURNAL_SCAN)))
        unit = journals[0][0] if journals else ""
        self.failure = {"step": step, "unit": unit, "message": message[-4000:],
                        "journal": "\n".join(tail(j, JOURNAL_LINES, 6000) for _, _, j in journals)[-8000:]}
        text = f"verify {self.release.id}: {step} failed" + (f" ({unit}.service)" if unit else "") + f": {message.strip()}"
        for name, state, journal in journals:
            first = first_errors(journal)
            if first:
                text += f"\n--- {name}.service: its first errors ---\n" + "\n".join(first)
            text += f"\n--- {name}.service is {state}; journalctl -u {name} (last {JOURNAL_LINES} lines) ---\n"
            text += tail(journal, JOURNAL_LINES, 6000) if journal else "(no journal lines)"
        return VerifyError(text, hint=f"the root and logs stay in {self.c.workdir} until the next verify "
                                      f"(journalctl -D {self.c.root}/var/log/journal -u UNIT)")


def first_errors(journal: str, count: int = FIRST_ERRORS) -> list[str]:
    """The first distinct CRITICAL, then ERROR lines of a journal (oslo.log's level field): usually the cause,
    where the tail shows its consequences (restarts, a worker killed while its sibling failed)."""
    found: dict[str, list[str]] = {"CRITICAL": [], "ERROR": []}
    seen: set[str] = set()
    for line in journal.splitlines():
        m = re.search(r"\d \d+ (CRITICAL|ERROR) (\S+) (?:\[[^\]]*\] )?(.*)", line)
        if not m or m.group(3).startswith(("Traceback", "  File ", "    ")) or not m.group(3).strip():
            continue
        key = m.group(3)[:200]
        if key not in seen:
            seen.add(key)
            found[m.group(1)].append(line[-1000:])
    return (found["CRITICAL"] + found["ERROR"])[:count]


def verify(config: Config, release: Release, projects: list[str] | tuple[str, ...] = (), *, promoted: bool = False,
           overrides: tuple[Override, ...] = (), report: Reporter = lambda e: None, runner: Runner = RUNNER,
           keep: bool = False, upgrades: Mapping[str, Release] | None = None, again: bool = False) -> VerifyResult:
    """Install, configure, start and ask a control plane; write the record; raise VerifyError on failure.

    ``upgrades`` (project -> release): then upgrade those projects on the running control plane and ask again
    (see stackyard.verify.upgrade). When the latest record passed with the very same packages, settings and
    upgrades, nothing runs (``unchanged``) unless ``again``."""
    from stackyard.verify import scenario
    from stackyard.verify import upgrade as upgrading

    workdir = workdir_of(config, release)
    distribution = final(release) if promoted else staging(release)
    with _exclusive(workdir, release), _terminated_is_interrupt():
        log = workdir / "verify.log"
        logs = workdir / "logs"
        machine = machine_name(release, workdir)
        plan = make_plan(load_recipes(config.paths.recipes), projects, hostname=machine, overrides=overrides)
        index = read_packages_index(config.repo.path / "dists" / distribution, config.repo.component, config.architecture)
        missing = [p for p in plan.packages if p not in index]
        if missing:
            raise missing_error(config, release, distribution, promoted, missing)
        installed = {p: index[p] for p in plan.packages}
        ups = upgrading.plan_upgrades(config, release, plan, upgrades or {}, promoted=promoted, installed=installed)
        done = None if again else passed_with(workdir, distribution, list(plan.projects), [index[p] for p in plan.packages],
                                              [str(o) for o in plan.overrides], [u.package for u in ups])
        if done is not None:
            report(Unchanged("verify", release.id, f"{done[0]} passed with these very packages, started "
                                                   f"{done[1].started} (verify --again runs it anyway)"))
            return VerifyResult(done[1], workdir / "record.json", workdir, [], unchanged=True)
        log.write_text("")
        cleaned = clean_leftovers(workdir, log, runner=runner)
        for line in cleaned:
            report(Note("verify", line))
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
        archives = config.paths.cache / "verify-apt"
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        container = Container(workdir, machine, log, runner=runner, binds=((archives, APT_ARCHIVES),))
        container.secrets = set(plan.passwords.values())
        started_at = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        record = VerifyRecord(release=release.id, distribution=distribution, started=started_at,
                              projects=list(plan.projects), packages=[index[p] for p in plan.packages],
                              overrides=[str(o) for o in plan.overrides], upgrades=[u.package for u in ups])
        session = Session(config, release, plan, container, report)
        memory = MemorySampler(container.root)
        began = time.monotonic()
        judged = interrupted = False
        path = workdir / "record.json"
        try:
            with session.step("root: unpack the cached bookworm root, point apt at " + distribution, infrastructure=True):
                tarball = rootfs_tarball(config.paths.cache, config.codenames[release.codename], log, ROOT_PACKAGES,
                                         ROOT_OPTIONS, flavour="verify", runner=runner)
                container.unpack(tarball)
                _configure_apt(config, release, promoted, container, distribution, ups)
            judged = True  # from here on, a failure is the packages' (a Depends apt cannot satisfy, a unit...)
            with session.step("apt: update, download what the packages depend on (host network)"):
                # autoclean: the shared cache keeps only what can still be downloaded (no superseded versions)
                download = ("apt-get install -y -q --no-install-recommends --download-only "
                            + " ".join((*plan.host_packages, *plan.packages)))
                container.run_once(f"apt-get update -q && {download} && "
                                   + (upgrading.download_script(plan.packages) + " && " if ups else "")
                                   + "apt-get autoclean -q", timeout=1800, what="apt-get could not fetch the packages")
            with session.step("boot: systemd in the container") as s:
                s.detail = f"{container.boot(workdir / 'console.log'):.1f}s to multi-user"
                assert container.pids is not None
                memory.start(container.pids.leader)
            with session.step("install: apt-get install " + " ".join(plan.packages)):
                container.run("apt-get install -y -q --no-install-recommends " + " ".join((*BASE_PACKAGES, *plan.host_packages, *plan.packages)),
                              timeout=1800, what="apt-get install")
                _check_installed(container, record.packages)
            record.phases["boot+install"] = round(time.monotonic() - began, 1)
            started = time.monotonic()
            scenario.configure(session)
            scenario.start(session)
            record.phases["start services"] = round(time.monotonic() - started, 1)
            started = time.monotonic()
            scenario.run(session)
            record.phases["scenario"] = round(time.monotonic() - started, 1)
            if ups:
                started = time.monotonic()
                upgrading.run(session, ups, installed)
                record.phases["upgrade"] = round(time.monotonic() - started, 1)
            record.passed = True
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: nothing was decided, nothing is kept
            judged, interrupted = False, True
            raise
        finally:
            memory.stop()
            record.peak_memory_bytes = memory.peak
            record.seconds = round(time.monotonic() - began, 1)
            record.steps = session.steps
            record.failure = session.failure
            if container.running:
                _save_journals(container, plan, logs)
            container.stop()
            if judged:
                path = write_record(workdir, record)
            if (record.passed and not keep) or interrupted:
                container.remove()
    return VerifyResult(record, path, workdir, cleaned)


def missing_error(config: Config, release: Release, distribution: str, promoted: bool, missing: list[str]) -> InputError:
    """The packages verify needs that ``distribution`` lacks, and the commands that put them there."""
    projects = " ".join(p.removeprefix("venv-") for p in missing)
    if promoted:
        hint = f"stackyard promote --release {release.id} {projects} (after a passing stackyard verify --release {release.id})"
    else:
        from stackyard.debs.venv_deb import debs_dir

        built = debs_dir(config, release)
        unbuilt = [p.removeprefix("venv-") for p in missing if not any(built.glob(f"{p}_*.deb"))]
        hint = (f"stackyard deb --release {release.id} {' '.join(unbuilt)}, then " if unbuilt else "") \
            + f"stackyard publish --release {release.id} {projects}"
    return InputError(f"{', '.join(missing)} not in {distribution}", hint=hint)


def _configure_apt(config: Config, release: Release, promoted: bool, container: Container, distribution: str,
                   ups: tuple[Upgrade, ...] = ()) -> None:
    """The repository snapshot at /srv/repo and the operator's apt files, as ``stackyard apt-config`` writes them
    (the upgrade's too, stashed until it swaps them in)."""
    from stackyard.verify.upgrade import STASH, apt_config

    for dist in (distribution, *sorted({u.distribution for u in ups})):
        if not snapshot_repo(config.repo.path, dist, container.root / "srv" / "repo", config.repo.component,
                             config.architecture):
            raise InputError(f"{dist} is not exported in {config.repo.path}", hint="stackyard publish first")
    keyring = (config.repo.path / f"{KEYRING_NAME}.gpg").read_bytes()
    configs = {"": apt_config(config, release, promoted, keyring)}
    if ups:
        configs[STASH + "/install"] = configs[""]
        configs[STASH + "/upgrade"] = apt_config(config, release, promoted, keyring, {u.project: u.release for u in ups})
    for where, files in configs.items():
        for rel, content in files.items():
            target = container.root / where.lstrip("/") / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            target.chmod(0o644)


def _check_installed(container: Container, packages: list[PackageRecord]) -> None:
    names = " ".join(p.name for p in packages)
    out = container.run(f"dpkg-query -W -f '${{Package}} ${{Version}}\\n' {names}", timeout=60).stdout
    installed = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    wrong = [f"{p.name} {installed.get(p.name, 'missing')} (staged: {p.version})" for p in packages
             if installed.get(p.name) != p.version]
    if wrong:
        raise StepFailed("apt installed other versions than the distribution's: " + ", ".join(wrong))


def _save_journals(container: Container, plan: VerifyPlan, logs: Path) -> None:
    """Each unit's journal, and the whole boot's, into var/verify/<release>/logs/ (best effort)."""
    for unit in [u.name for u in plan.units] + ["mariadb", "rabbitmq-server", "memcached"]:
        try:
            r = container.run(f"journalctl --no-pager -o short-precise -u {unit}", check=False, timeout=60)
            (logs / f"{unit}.log").write_text(r.stdout)
        except StackyardError:
            pass
    try:
        r = container.run("journalctl --no-pager -o short-precise -b", check=False, timeout=120)
        (logs / "journal.log").write_text(r.stdout)
    except StackyardError:
        pass
