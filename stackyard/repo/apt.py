"""The signed apt repository: one reprepro base, two distributions per release.

``<codename>-<release>-staging`` receives what ``stackyard publish`` puts in;
``stackyard promote`` copies from staging into ``<codename>-<release>`` and
records a dated snapshot. Writers are serialized with a lock and a failed
write restores the indexes exactly as they were.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from stackyard.config import Config, Release
from stackyard.errors import InputError, ToolError
from stackyard.repo.signing import SigningKey, ensure_signing_key
from stackyard.runner import RUNNER, Runner

REPREPRO_TIMEOUT = 900.0


@dataclass(frozen=True)
class PublishedPackage:
    distribution: str
    architecture: str
    name: str
    version: str
    filekey: str = ""  # where the file is, relative to the repository's base (pool/main/v/venv-x/venv-x_1_amd64.deb)


# reprepro's own listing plus where each file is kept (never guessed from the pool's layout)
LIST_FORMAT = "${$identifier}: ${package} ${version} ${$filekey}\n"


def staging(release: Release) -> str:
    return f"{release.codename}-{release.id}-staging"


def final(release: Release) -> str:
    return f"{release.codename}-{release.id}"


def render_distributions(config: Config, fingerprint: str) -> str:
    blocks = []
    for release in config.releases.values():
        for dist, what in ((staging(release), "staging"), (final(release), "promoted")):
            blocks.append(
                f"Origin: {config.repo.origin}\n"
                f"Label: {config.repo.label}\n"
                f"Codename: {dist}\n"
                f"Suite: {dist}\n"
                f"Architectures: {config.architecture}\n"
                f"Components: {config.repo.component}\n"
                f"Description: OpenStack {release.id} ({release.series}) for Debian {release.codename}, {what}\n"
                f"SignWith: {fingerprint}\n"
            )
    return "\n".join(blocks)


class AptRepository:
    def __init__(self, config: Config, runner: Runner = RUNNER) -> None:
        self.config = config
        self.base = config.repo.path
        self.runner = runner
        self.log = config.paths.output / "logs" / "repo.log"  # reprepro and gpg, every release
        self._key: SigningKey | None = None

    @property
    def key(self) -> SigningKey:
        if self._key is None:
            self._key = ensure_signing_key(self.config.repo, log=self.log, runner=self.runner)
        return self._key

    def reprepro(self, *args: str) -> str:
        return self.runner.run(["reprepro", "--basedir", str(self.base), "--silent", *args],
                               env={"GNUPGHOME": str(self.key.gnupg_home)}, log=self.log, timeout=REPREPRO_TIMEOUT,
                               what=f"reprepro {' '.join([a for a in args if not a.startswith('--')][:2])} failed").stdout

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Serialize writers; restore conf, db and dists if the body fails."""
        self.base.mkdir(parents=True, exist_ok=True)
        with (self.base / ".stackyard.wheels.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent publishes wait here
            stale = self.base / "db" / "lockfile"
            if stale.exists():
                raise ToolError(
                    f"the reprepro database is locked ({stale}) but no stackyard publish is running: "
                    "a publish was killed",
                    hint=f"check that no reprepro process runs (pgrep reprepro), then rm {stale}",
                )
            backup = Path(tempfile.mkdtemp(prefix=".backup-", dir=self.base))
            saved = [d for d in ("conf", "db", "dists") if (self.base / d).exists()]
            for d in saved:
                shutil.copytree(self.base / d, backup / d, symlinks=True)
            try:
                yield
            except BaseException:
                for d in ("conf", "db", "dists"):
                    shutil.rmtree(self.base / d, ignore_errors=True)
                for d in saved:
                    shutil.copytree(backup / d, self.base / d, symlinks=True)
                raise
            finally:
                shutil.rmtree(backup, ignore_errors=True)

    def _configure(self) -> None:
        conf = self.base / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        text = render_distributions(self.config, self.key.fingerprint)
        target = conf / "distributions"
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            (conf / "options").write_text("verbose\n")
            self.reprepro("export")

    def publish(self, release: Release, debs: list[Path]) -> list[PublishedPackage]:
        missing = [d for d in debs if not d.exists()]
        if missing:
            raise InputError(f"no such package: {', '.join(map(str, missing))}")
        with self._writing():
            self._configure()
            for deb in debs:
                self.reprepro("includedeb", staging(release), str(deb))
        return self.list(staging(release))

    def promote(self, release: Release, packages: list[str], *, force: str | None = None) -> tuple[list[PublishedPackage], str]:
        """Copy ``packages`` (default: every staged one) from staging to the release's distribution and snapshot it.

        Only packages whose staged file passed ``stackyard verify`` go (the wheels deb travels along): the
        latest verify record that installed that very version must have passed. ``force`` (a reason)
        promotes without one; the reason goes into the snapshot's record (``promotion.json``)."""
        import json

        from stackyard.verify.record import promotion_note, read_packages_index, refusals

        with self._writing():
            self._configure()
            staged = {p.name: p.version for p in self.list(staging(release))}
            available = set(staged)
            names = packages or sorted(available)
            wheels = f"openstack-wheels-{release.id}"
            if wheels in available and wheels not in names:
                names = [*names, wheels]  # the wheelhouse travels with the venv debs built from it
            unknown = [n for n in names if n not in available]
            if unknown:
                raise InputError(
                    f"not in {staging(release)}: {', '.join(unknown)}",
                    hint=f"publish first: stackyard publish --release {release.id} ...",
                )
            verify_dir = self.config.paths.output / "verify" / release.id
            if force is None and names:
                index = read_packages_index(self.base / "dists" / staging(release), self.config.repo.component,
                                            self.config.architecture)
                refused = refusals(verify_dir, {n: index.get(n) or staged[n] for n in names})
                if refused:
                    raise InputError(
                        f"not promoted: {len(refused)} of {len(names)} packages {'has' if len(refused) == 1 else 'have'} "
                        "no passing verify record:\n  "
                        + "\n  ".join(refused.values()),
                        hint=f"stackyard verify --release {release.id} "
                             + " ".join(sorted(n.removeprefix("venv-") for n in refused))
                             + f" (or, knowing why: stackyard promote --release {release.id} --force REASON)",
                    )
            if names:
                self.reprepro("copy", final(release), staging(release), *names)
            snapshot = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            self.reprepro("gensnapshot", final(release), snapshot)
            note = promotion_note(release.id, {n: staged[n] for n in names}, force, verify_dir, snapshot)
            target = self.base / "dists" / final(release) / "snapshots" / snapshot / "promotion.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(note, indent=1) + "\n")
        return self.list(final(release)), snapshot

    def list(self, distribution: str) -> list[PublishedPackage]:
        if not (self.base / "db").exists():
            return []
        out = []
        for line in self.reprepro(f"--list-format={LIST_FORMAT}", "list", distribution).splitlines():
            where, _, rest = line.partition(": ")
            dist, _, arch = where.split("|")
            name, version, filekey = rest.split()
            out.append(PublishedPackage(dist, arch, name, version, filekey))
        return out
