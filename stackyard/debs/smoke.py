"""Testing a venv package before it may be published.

In a fresh Debian root: apt installs the package from a signed local
repository (its Depends from Debian), the recipe's smoke commands run (a
``--version`` command must print the upstream version), every extension
module of the venv loads as the service user (``stackyard/load_check.py
--strict``: no symbol and no library missing), the /usr/bin links,
the service user and the unit files (``systemd-analyze verify``) are
checked, and a purge must leave no file behind. The verdict is recorded next
to the .deb; ``stackyard publish`` accepts only packages that passed.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from pathlib import Path

from stackyard import load_check
from stackyard.config import Config, Release
from stackyard.debs import record as deb_record
from stackyard.debs.record import SmokeVerdict
from stackyard.debs.venv_deb import CheckResult, built_deb
from stackyard.errors import BuildError, InputError
from stackyard.events import Note, Reporter, discard
from stackyard.recipes import Recipe
from stackyard.repo.signing import SigningKey, ensure_signing_key, gpg
from stackyard.rootfs import Root, fresh_root, rootfs_tarball
from stackyard.runner import RUNNER, Runner
from stackyard.wheels.cache import sha256_file

# paths whose changes are apt's, dpkg's or the system's business, not the package's
IGNORED = ("proc", "sys", "dev", "run", "tmp", "var/lib/apt", "var/lib/dpkg", "var/cache", "var/log",
           "var/lib/systemd", "etc/ld.so.cache", "srv/stackyard-test", "var/lib/ucf")


class SmokeTestError(BuildError):
    """The package did not pass its smoke test; it is not published."""


def _files(root: Path) -> set[str]:
    out: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel != "." and rel.startswith(IGNORED):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = os.path.normpath(os.path.join(rel, name))
            if not path.startswith(IGNORED):
                out.add(path)
    return out


def signed_flat_repo(debs: list[Path], key: SigningKey, into: Path, *, runner: Runner = RUNNER) -> None:
    into.mkdir(parents=True)
    for deb in debs:
        shutil.copy(deb, into / deb.name)
    packages = runner.run(["dpkg-scanpackages", "--multiversion", "."], cwd=into, what="indexing the test repository").stdout
    (into / "Packages").write_text(packages)
    release = runner.run(["apt-ftparchive", "release", "."], cwd=into, what="indexing the test repository").stdout
    (into / "Release").write_text(release)
    gpg(key.gnupg_home, "--yes", "--local-user", key.fingerprint, "--clearsign", "--output", str(into / "InRelease"),
        str(into / "Release"), runner=runner)


def _check(root: Root, checks: list[str], what: str, command: str, report: Reporter = discard) -> str:
    r = root.run(command, check=False)
    if r.returncode != 0:
        raise SmokeTestError(f"{what}: {command!r} exited {r.returncode}:\n{(r.stdout + r.stderr).strip()[-3000:]}",
                             hint=f"see {root.log}")
    checks.append(what)
    report(Note("smoke", f"ok: {what}"))
    return r.stdout


def smoke_test(config: Config, release: Release, recipe: Recipe, deb: Path, *, report: Reporter = discard,
               runner: Runner = RUNNER) -> CheckResult:
    started = time.monotonic()
    log = config.logs_dir("smoke", release) / f"{deb.stem}.log"
    report(Note("smoke", f"{deb.name}: in a clean {release.codename} root (log: {log})"))
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    key = ensure_signing_key(config.repo, runner=runner)
    tarball = rootfs_tarball(config.paths.cache, config.codenames[release.codename], log, runner=runner)
    venv = f"{config.deb.prefix}/{recipe.name}"
    upstream = recipe.version(release.id)
    checks: list[str] = []
    with fresh_root(tarball, log, runner=runner) as root:
        check = functools.partial(_check, root, checks, report=report)
        repo = root.path / "srv" / "stackyard-test"
        signed_flat_repo([deb], key, repo, runner=runner)
        shutil.copy(key.keyring, root.path / "usr/share/keyrings/stackyard-test.gpg")
        (root.path / "etc/apt/sources.list.d/stackyard-test.list").write_text(
            "deb [signed-by=/usr/share/keyrings/stackyard-test.gpg] file:/srv/stackyard-test ./\n")
        before = _files(root.path)
        root.run("apt-get update -q")
        check("apt installs it", f"apt-get install -y -q --no-install-recommends {recipe.package}")
        for command in recipe.smoke:
            out = check(f"smoke: {command}", f"cd / && runuser -u {recipe.name} -- {command}")
            if "--version" in command.split() and upstream not in out:
                raise SmokeTestError(f"smoke: {command!r} printed {out.strip()!r}, not the upstream version {upstream}",
                                     hint=f"see {log}")
        checker = root.path / "tmp" / "stackyard-load-check.py"
        checker.parent.mkdir(exist_ok=True)
        shutil.copyfile(load_check.__file__, checker)
        checker.chmod(0o644)
        check("every extension module of the venv loads",
              f"cd / && runuser -u {recipe.name} -- {venv}/bin/python /tmp/{checker.name} --strict {venv}")
        for script in recipe.console_scripts:
            check(f"/usr/bin/{script} -> {venv}/bin/{script}",
                   f"test \"$(readlink -f /usr/bin/{script})\" = \"$(readlink -f {venv}/bin/{script})\" && test -x /usr/bin/{script}")
        check(f"system user {recipe.name}", f"getent passwd {recipe.name} && test -d /var/lib/{recipe.name}")
        for unit_name in [s.name for s in recipe.services] + [a.name for a in recipe.apis]:
            unit = f"/lib/systemd/system/{unit_name}.service"
            check(f"unit {unit_name}.service", f"test -f {unit} && systemd-analyze verify {unit}")
        for api in recipe.apis:
            ini = f"/etc/{recipe.name}/{api.name}-uwsgi.ini"
            check(f"uwsgi ini {ini}", f"grep -qx 'virtualenv = {venv}' {ini} && grep -qx 'module = {api.module}' {ini}")
        if recipe.rootwrap or recipe.privsep:
            check(f"visudo -c /etc/sudoers.d/{recipe.name}",
                   f"visudo -c -f /etc/sudoers.d/{recipe.name} && test \"$(stat -c %a /etc/sudoers.d/{recipe.name})\" = 440")
        if recipe.rootwrap:
            check("rootwrap.conf exec_dirs starts with the venv's bin",
                   f"grep -q '^exec_dirs={venv}/bin,' /etc/{recipe.name}/rootwrap.conf")
        check("purge", f"SUDO_FORCE_REMOVE=yes apt-get purge -y -q --autoremove {recipe.package}")
        left = sorted(_files(root.path) - before)
        if left:
            raise SmokeTestError(f"purging {recipe.package} left {len(left)} paths behind: {', '.join('/' + p for p in left[:15])}",
                                 hint=f"see {log}")
        checks.append("purge leaves nothing behind")
        report(Note("smoke", "ok: purge leaves nothing behind"))
    record = deb_record.update(deb, smoke=SmokeVerdict(True, sha256_file(deb), tuple(checks)))
    return CheckResult(recipe.package, record.version, deb, log, time.monotonic() - started, tuple(checks))


def smoke_built(config: Config, release: Release, recipe: Recipe, *, report: Reporter = discard,
                runner: Runner = RUNNER) -> CheckResult:
    """The smoke test of the project's built file; only a linted file is tested (InputError otherwise)."""
    deb, record = built_deb(config, release, recipe)
    if not record.linted:
        raise InputError(f"{deb.name} was not linted; only a linted package is smoke-tested (and published)",
                         hint=f"stackyard lintian --release {release.id} {recipe.name}")
    return smoke_test(config, release, recipe, deb, report=report, runner=runner)
