"""openstack-wheels-<release>: the wheelhouse as a Debian package.

Installs the wheels, their PEP 503 index, SHA256SUMS and manifest under
``/usr/lib/openstack-wheels/<release>/`` with the build architecture when a
wheel is compiled, ``/usr/share/...`` with architecture ``all`` when every
wheel is pure Python (Debian keeps /usr/share architecture-independent).
Built, like every deb, by stackyard.debs.dpkg (reproducible, lintian errors fail). The version is
``<upper-constraints date>.<n>``: ``n`` grows only when the content changes,
so rebuilding an unchanged wheelhouse gives the same version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path

from debian.changelog import Changelog
from jinja2 import Environment, PackageLoader, StrictUndefined

from stackyard import __version__, stage
from stackyard.config import Config, Release
from stackyard.debs import dpkg
from stackyard.debs.dpkg import debs_dir
from stackyard.errors import InputError
from stackyard.events import Reporter, discard
from stackyard.runner import RUNNER, Runner
from stackyard.target import target_for
from stackyard.wheels.cache import sha256_file
from stackyard.wheels.upstream_requirements import read_source
from stackyard.wheels.wheelhouse import read_manifest


@stage.record("wheels-deb")
class WheelsDeb:
    """The record of the wheels deb (stackyard.stage), kept as ``openstack-wheels-<release>.json`` beside it."""
    package: str
    version: str
    architecture: str
    wheels: int
    file: str  # the .deb's name in the release's debs directory
    sha256: str
    inputs: str
    base: str  # the upper-constraints date the version starts with
    n: int  # the version's last part: grows with each new content for the same date
    lintian_warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class WheelsDebResult:
    record: WheelsDeb
    file: Path
    unchanged: bool  # the file of these inputs was there: not built again


def _templates() -> Environment:
    return Environment(loader=PackageLoader("stackyard.debs", "templates"), undefined=StrictUndefined, keep_trailing_newline=True)


class WheelsDebStage:
    """The release's wheelhouse as a deb: made from its SHA256SUMS, the templates and the maintainer."""

    kind = "wheels-deb"

    def __init__(self, config: Config, release: Release, runner: Runner) -> None:
        self.config, self.release, self.runner = config, release, runner
        self.name = self.package = f"openstack-wheels-{release.id}"
        self.out_dir = debs_dir(config, release)
        self.wheelhouse = config.wheelhouse_dir(release)
        manifest = read_manifest(self.wheelhouse)
        if manifest is None:
            raise InputError(f"{self.wheelhouse}: no wheelhouse", hint=f"run 'stackyard wheels --release {release.id}' first")
        self.wheels = manifest["wheels"]
        source = read_source(config.requirements_dir(release))
        self.date = (source.date if source and source.date else "1970-01-01").replace("-", "")

    def record_path(self) -> Path:
        return self.out_dir / f"{self.package}.json"

    def record_type(self) -> type[WheelsDeb]:
        return WheelsDeb

    def inputs(self) -> str:
        h = hashlib.sha256(f"{__version__}\0{self.config.deb.maintainer}\0{self.date}\0".encode())
        h.update(sha256_file(self.wheelhouse / "SHA256SUMS").encode())
        for template in sorted((Path(__file__).parent / "templates" / "wheels-deb").iterdir()):
            h.update(b"\0" + template.name.encode() + b"\0" + template.read_bytes())
        return h.hexdigest()

    def intact(self, record: WheelsDeb) -> bool:
        file = self.out_dir / record.file
        return file.exists() and sha256_file(file) == record.sha256

    def stands(self, record: WheelsDeb) -> str:
        return record.file

    def build(self, inputs: str, previous: WheelsDeb | None, report: Reporter) -> WheelsDeb:
        config, release, package, wheels = self.config, self.release, self.package, self.wheels
        # the same inputs keep their version (a --rebuild gives the same bytes); new content for the date: n + 1
        if previous is not None and previous.base == self.date:
            n = previous.n if previous.inputs == inputs else previous.n + 1
        else:  # no record of this date: never reuse the version of a file built before the record was kept
            built = [f.name.split("_")[1] for f in self.out_dir.glob(f"{package}_{self.date}.*_*.deb")]
            n = max((int(v.rsplit(".", 1)[1]) for v in built if v.rsplit(".", 1)[1].isdigit()), default=0) + 1
        version = f"{self.date}.{n}"
        epoch = int(datetime.strptime(self.date, "%Y%m%d").replace(tzinfo=timezone.utc).timestamp())
        pure = all(w["filename"].endswith("-none-any.whl") for w in wheels)
        architecture = "all" if pure else config.architecture
        install_dir = f"/usr/{'share' if pure else 'lib'}/openstack-wheels/{release.id}"
        env = _templates()
        context = {
            "package": package, "maintainer": config.deb.maintainer, "architecture": architecture, "release": release,
            "target": target_for(config, release).key, "wheels": len(wheels), "install_dir": install_dir,
        }
        with tempfile.TemporaryDirectory(prefix="stackyard-wheels-deb-") as tmp:
            src = Path(tmp) / package
            (src / "debian" / "source").mkdir(parents=True)
            payload = src / "wheelhouse"
            shutil.copytree(self.wheelhouse.resolve(), payload, copy_function=os.link)
            (src / "debian" / "control").write_text(env.get_template("wheels-deb/control.j2").render(context))
            rules = src / "debian" / "rules"
            rules.write_text(env.get_template("wheels-deb/rules.j2").render(context))
            rules.chmod(0o755)
            (src / "debian" / "source" / "format").write_text("3.0 (native)\n")
            (src / "debian" / f"{package}.install").write_text(f"wheelhouse/* {install_dir.lstrip('/')}/\n")
            changelog = Changelog()
            changelog.new_block(
                package=package, version=version, distributions=f"{release.codename}-{release.id}", urgency="medium",
                author=config.deb.maintainer,
                date=format_datetime(datetime.fromtimestamp(epoch, timezone.utc)),
            )
            changelog.add_change("")
            changelog.add_change(f"  * Wheelhouse of OpenStack {release.id}: {len(wheels)} wheels, upper-constraints of {self.date}.")
            changelog.add_change("")
            (src / "debian" / "changelog").write_text(str(changelog))
            (src / "debian" / "copyright").write_text(env.get_template("wheels-deb/copyright.j2").render(context))
            log = config.logs_dir("wheels-deb", release) / f"{package}_{version}.log"
            deb = dpkg.buildpackage(src, package, version, log, epoch, runner=self.runner)
            warnings = dpkg.lintian(deb, log, runner=self.runner)
            self.out_dir.mkdir(parents=True, exist_ok=True)
            dest = self.out_dir / deb.name
            shutil.move(str(deb), dest)
        return WheelsDeb(package, version, architecture, len(wheels), dest.name, sha256_file(dest), inputs, self.date, n,
                         warnings)


def _adopt_legacy_state(wheels_deb: WheelsDebStage) -> None:
    """stackyard 0.x kept ``.<package>.state.json`` (base, digest of SHA256SUMS, n, version): a file it built
    from today's wheelhouse becomes the record, so upgrading stackyard neither rebuilds nor renumbers it."""
    legacy = wheels_deb.out_dir / f".{wheels_deb.package}.state.json"
    if wheels_deb.record_path().exists() or not legacy.exists():
        return
    state = json.loads(legacy.read_text())
    built = sorted(wheels_deb.out_dir.glob(f"{wheels_deb.package}_{state.get('version')}_*.deb"))
    if built and state.get("digest") == sha256_file(wheels_deb.wheelhouse / "SHA256SUMS") and state.get("base") == wheels_deb.date:
        architecture = built[0].name.rsplit("_", 1)[1].removesuffix(".deb")
        stage.write_record(wheels_deb.record_path(), WheelsDeb(
            wheels_deb.package, state["version"], architecture, len(wheels_deb.wheels), built[0].name,
            sha256_file(built[0]), wheels_deb.inputs(), state["base"], int(state["n"])))
    legacy.unlink()


def build_wheels_deb(config: Config, release: Release, *, rebuild: bool = False, report: Reporter = discard,
                     runner: Runner = RUNNER) -> WheelsDebResult:
    wheels_deb = WheelsDebStage(config, release, runner)
    _adopt_legacy_state(wheels_deb)
    outcome = stage.run(wheels_deb, rebuild=rebuild, report=report)
    return WheelsDebResult(outcome.record, wheels_deb.out_dir / outcome.record.file, outcome.unchanged)
