"""A venv-deb workspace for unit tests: a recipe, its lock, a matching wheelhouse and the real debian/ templates,
and a FakeRunner that answers dpkg-buildpackage (writing the .deb it would make), dpkg-deb -c and lintian."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import textwrap
from pathlib import Path

from debian.changelog import Changelog

from stackyard.config import Config, Release
from stackyard.runner import Call
from stackyard.wheels.lock import lock_path
from tests.fake_repo import gpg_prefix, with_key
from tests.fakes import FakeRunner

REPO = Path(__file__).resolve().parent.parent

RECIPE = """\
name: tiny
source: {pypi: tiny}
versions: {"2025.1": "1.2.0"}
console_scripts: [tiny-manage]
smoke: ["tiny-manage --version"]
"""

WHEELS = {"tiny": ("1.2.0", b"tiny wheel"), "six": ("1.17.0", b"six wheel")}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def workspace(config: Config, release: Release, recipe: str = RECIPE, *, source_date: str = "2025-06-01") -> Path:
    """Templates, the recipe ``tiny``, its lock and wheelhouse; returns the recipe file."""
    recipes = config.paths.recipes
    if not (recipes / "debian").exists():
        shutil.copytree(REPO / "recipes" / "debian", recipes / "debian")
    file = recipes / "tiny.yaml"
    file.write_text(textwrap.dedent(recipe))
    requirements = config.requirements_dir(release)
    requirements.mkdir(parents=True, exist_ok=True)
    (requirements / "SOURCE").write_text(f"repository: openstack/requirements\ncommit: abc\ndate: {source_date}\n")
    write_lock(config, release)
    wheelhouse = config.wheelhouse_dir(release)
    (wheelhouse / "install").mkdir(parents=True, exist_ok=True)
    entries = []
    for name, (version, data) in WHEELS.items():
        filename = f"{name}-{version}-py3-none-any.whl"
        (wheelhouse / filename).write_bytes(data)
        entries.append({"name": name, "version": version, "filename": filename, "sha256": sha(data), "origin": "fetched"})
    (wheelhouse / "manifest.json").write_text(json.dumps({"wheels": entries}))
    (wheelhouse / "SHA256SUMS").write_text("".join(f"{e['sha256']}  {e['filename']}\n" for e in entries))
    (wheelhouse / "install" / "tiny.txt").write_text("tiny==1.2.0\nsix==1.17.0\n")
    return file


def write_lock(config: Config, release: Release, extra: str = "") -> Path:
    file = lock_path(config, release, "tiny")
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("# stackyard lock: tiny\n" + "".join(
        f"{name}=={version} \\\n    --hash=sha256:{sha(data)}\n" for name, (version, data) in WHEELS.items()) + extra)
    return file


def built(call: Call) -> None:
    """What dpkg-buildpackage leaves beside the source tree: the .deb (its bytes depend only on the version)."""
    src = Path(call.cwd or ".")
    changelog = Changelog((src / "debian" / "changelog").read_text())
    (src.parent / f"{changelog.package}_{changelog.version}_amd64.deb").write_bytes(f"deb {changelog.version}".encode())


def listing(*paths: str) -> str:
    return "".join(f"-rwxr-xr-x root/root 100 2025-06-01 00:00 .{p}\n" for p in paths)


ROOT_DIRS = ("etc/apt/sources.list.d", "usr/share/keyrings", "usr/bin", "var/lib/dpkg", "tmp")


def rootfs(call: Call) -> None:
    """What mmdebstrap writes: a tarball of a small root."""
    with tarfile.open(call.argv[-2], "w") as tf:
        for d in ROOT_DIRS:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tf.addfile(info)
        data = b"root:x:0:0:root:/root:/bin/sh\n"
        f = tarfile.TarInfo("etc/passwd")
        f.size = len(data)
        tf.addfile(f, io.BytesIO(data))


def smoke_runner(config: Config, fake: FakeRunner | None = None) -> FakeRunner:
    """Answers what a smoke test runs outside its root: gpg (the key, its exported keyring), mmdebstrap, the indexers.

    Commands in the root (chroot) exit 0 with no output unless ``fake`` answers them."""
    fake = with_key(config, fake)
    fake.reply(*gpg_prefix(config), "--yes", "--output",
               effect=lambda call: Path(call.argv[call.argv.index("--output") + 1]).write_bytes(b"\x99key"))
    fake.reply("mmdebstrap", effect=rootfs)
    fake.reply("dpkg-scanpackages", stdout="Package: venv-x\n")
    fake.reply("apt-ftparchive", stdout="Origin: test\n")
    return fake


def deb_runner(fake: FakeRunner | None = None, *, contents: tuple[str, ...] = ("/opt/openstack/tiny/bin/tiny-manage",),
               lintian: str = "W: venv-tiny: some-warning opt/openstack/tiny\n") -> FakeRunner:
    fake = fake or FakeRunner()
    fake.reply("dpkg-buildpackage", effect=built)
    fake.reply("dpkg-deb", "-c", stdout=listing(*contents))
    fake.reply("lintian", stdout=lintian)
    return fake
