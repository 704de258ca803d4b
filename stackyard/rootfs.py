"""Clean Debian roots for testing packages, made with mmdebstrap and cached.

The tarball is keyed by codename, mirror and package set, and reused for a
week; each test unpacks a fresh copy and runs commands in it with chroot
(/proc, /dev and /sys mounted, the host's resolv.conf for the mirror).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from stackyard.config import Codename
from stackyard.errors import ToolError
from stackyard.runner import RUNNER, Result, Runner

# what every test root has before the package under test arrives
BASE_PACKAGES = ("ca-certificates", "adduser", "systemd", "python3")
MAX_AGE = 7 * 24 * 3600
MMDEBSTRAP_TIMEOUT = 1800.0
COMMAND_TIMEOUT = 1800.0  # apt-get install of a venv deb in the test root
ROOT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
            "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}


def rootfs_tarball(cache: Path, codename: Codename, log: Path, packages: tuple[str, ...] = BASE_PACKAGES,
                   options: tuple[str, ...] = (), flavour: str = "minbase", *, runner: Runner = RUNNER) -> Path:
    """A cached mmdebstrap tarball of ``codename`` with ``packages``; remade once it is a week old."""
    key = hashlib.sha256("\0".join([codename.name, codename.mirror, ",".join(packages), *options]).encode()).hexdigest()[:12]
    tarball = cache / "rootfs" / f"{codename.name}-{flavour}-{key}.tar"
    if tarball.exists() and time.time() - tarball.stat().st_mtime < MAX_AGE:
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    tmp = tarball.with_suffix(f".{os.getpid()}.tmp")
    cmd = ["mmdebstrap", "--variant=minbase", f"--include={','.join(packages)}", *options, "--format=tar",
           codename.name, str(tmp), codename.mirror]
    try:
        runner.run(cmd, log=log, stream=True, timeout=MMDEBSTRAP_TIMEOUT,
                   what=f"mmdebstrap could not make a {codename.name} root from {codename.mirror}")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, tarball)
    return tarball


class Root:
    """An unpacked root with commands run in it by chroot."""

    def __init__(self, path: Path, log: Path, runner: Runner = RUNNER) -> None:
        self.path, self.log, self.runner = path, log, runner

    def run(self, command: str, check: bool = True, timeout: float = COMMAND_TIMEOUT) -> Result:
        r = self.runner.run(["chroot", str(self.path), "/bin/sh", "-c", command], env=ROOT_ENV, inherit_env=False,
                            log=self.log, check=False, timeout=timeout, what=f"in the test root: {command!r}")
        if check and r.returncode != 0:
            raise ToolError(f"in the test root: {command!r} exited {r.returncode}:\n{(r.stdout + r.stderr).strip()[-3000:]}",
                            hint=f"see {self.log}")
        return r


@contextmanager
def fresh_root(tarball: Path, log: Path, *, runner: Runner = RUNNER) -> Iterator[Root]:
    base = Path(tempfile.mkdtemp(prefix="stackyard-root-"))
    mounts: list[Path] = []
    try:
        with tarfile.open(tarball) as tf:
            tf.extractall(base, numeric_owner=True)  # our own mmdebstrap output
        shutil.copy("/etc/resolv.conf", base / "etc" / "resolv.conf")
        for fs, target, opts in (("proc", "proc", ["-t", "proc"]), ("sysfs", "sys", ["-t", "sysfs"]),
                                 ("/dev", "dev", ["--bind"])):
            dest = base / target
            dest.mkdir(exist_ok=True)
            runner.run(["mount", *opts, fs, str(dest)], log=log, timeout=60, what=f"mounting {fs} in the test root")
            mounts.append(dest)
        yield Root(base, log, runner)
    finally:
        for dest in reversed(mounts):
            try:
                runner.run(["umount", str(dest)], log=log, check=False, timeout=60)
            except ToolError:
                pass  # what is still mounted is named below
        still = [d for d in mounts if os.path.ismount(d)]
        if still:  # never delete through a bind mount of the host's /dev
            raise ToolError(f"could not unmount {', '.join(map(str, still))}", hint="umount them, then remove " + str(base))
        shutil.rmtree(base, ignore_errors=True)
