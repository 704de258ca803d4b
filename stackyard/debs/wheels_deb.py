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

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from email.utils import format_datetime
from datetime import datetime, timezone
from pathlib import Path

from debian.changelog import Changelog
from jinja2 import Environment, PackageLoader, StrictUndefined

from stackyard.debs import dpkg
from stackyard.wheels.cache import sha256_file
from stackyard.config import Config, Release
from stackyard.errors import InputError
from stackyard.wheels.lock import target_for
from stackyard.runner import RUNNER, Runner
from stackyard.wheels.upstream_requirements import read_source
from stackyard.wheels.wheelhouse import read_manifest


@dataclass(frozen=True)
class WheelsDeb:
    package: str
    version: str
    architecture: str
    wheels: int
    file: Path
    lintian_warnings: tuple[str, ...] = ()
    unchanged: bool = False  # the file of this version was there: not built again


def _templates() -> Environment:
    return Environment(loader=PackageLoader("stackyard.debs", "templates"), undefined=StrictUndefined, keep_trailing_newline=True)


def debs_dir(config: Config, release: Release) -> Path:
    return config.paths.output / "debs" / release.id


def _next_version(state_file: Path, base: str, digest: str) -> str:
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if state.get("base") == base and state.get("digest") == digest:
        return str(state["version"])
    n = int(state.get("n", 0)) + 1 if state.get("base") == base else 1
    version = f"{base}.{n}"
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps({"base": base, "digest": digest, "n": n, "version": version}))
    return version


def build_wheels_deb(config: Config, release: Release, *, rebuild: bool = False, runner: Runner = RUNNER) -> WheelsDeb:
    wheelhouse = config.wheelhouse_dir(release)
    manifest = read_manifest(wheelhouse)
    if manifest is None:
        raise InputError(f"{wheelhouse}: no wheelhouse", hint=f"run 'stackyard wheels --release {release.id}' first")
    wheels = manifest["wheels"]
    digest = sha256_file(wheelhouse / "SHA256SUMS")
    source = read_source(config.requirements_dir(release))
    date = (source.date if source and source.date else "1970-01-01").replace("-", "")
    epoch = int(datetime.strptime(date, "%Y%m%d").replace(tzinfo=timezone.utc).timestamp())
    package = f"openstack-wheels-{release.id}"
    out_dir = debs_dir(config, release)
    version = _next_version(out_dir / f".{package}.state.json", date, digest)
    pure = all(w["filename"].endswith("-none-any.whl") for w in wheels)
    architecture = "all" if pure else config.architecture
    install_dir = f"/usr/{'share' if pure else 'lib'}/openstack-wheels/{release.id}"
    built = sorted(out_dir.glob(f"{package}_{version}_*.deb"))
    if built and not rebuild:  # the version names the wheelhouse's content: nothing changed, nothing rebuilt
        return WheelsDeb(package, version, architecture, len(wheels), built[0], unchanged=True)

    env = _templates()
    context = {
        "package": package, "maintainer": config.deb.maintainer, "architecture": architecture, "release": release,
        "target": target_for(config, release).key, "wheels": len(wheels), "install_dir": install_dir,
    }
    with tempfile.TemporaryDirectory(prefix="stackyard-wheels-deb-") as tmp:
        src = Path(tmp) / package
        (src / "debian" / "source").mkdir(parents=True)
        payload = src / "wheelhouse"
        shutil.copytree(wheelhouse.resolve(), payload, copy_function=os.link)
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
        changelog.add_change(f"  * Wheelhouse of OpenStack {release.id}: {len(wheels)} wheels, upper-constraints of {date}.")
        changelog.add_change("")
        (src / "debian" / "changelog").write_text(str(changelog))
        (src / "debian" / "copyright").write_text(env.get_template("wheels-deb/copyright.j2").render(context))
        log = config.logs_dir("wheels-deb", release) / f"{package}_{version}.log"
        deb = dpkg.buildpackage(src, package, version, log, epoch, runner=runner)
        warnings = dpkg.lintian(deb, log, runner=runner)
        out_dir.mkdir(parents=True, exist_ok=True)
        dest = out_dir / deb.name
        shutil.move(str(deb), dest)
    return WheelsDeb(package, version, architecture, len(wheels), dest, warnings)
