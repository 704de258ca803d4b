"""Building wheels from sdists for a target, in a shared build environment.

Most sdists need only setuptools/pbr/flit/hatch/poetry/Cython: they build in
one prepared venv (``--no-build-isolation``), which saves pip creating an
isolated environment per package. An sdist whose build requirements that venv
does not satisfy gets pip's isolated build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import threading
import tomllib
import zipfile
from importlib import resources
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from stackyard import load_check
from stackyard.errors import ToolError
from stackyard.runner import RUNNER, Env, Runner
from stackyard.target import Target
from stackyard.wheels.pip import pip_env

BUILD_TIMEOUT = 3 * 3600.0  # one wheel; the slowest OpenStack dependencies take minutes
PREPARE_TIMEOUT = 1800.0
LOAD_CHECK = Path(load_check.__file__)  # a script, run by the build environment's python
LOAD_CHECK_TIMEOUT = 300.0


def build_requirements(sdist: Path) -> list[str]:
    """The ``[build-system] requires`` of an sdist (setuptools+wheel if it has none)."""
    data: bytes | None = None
    try:
        if sdist.name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as zf:
                names = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith("/pyproject.toml")]
                data = zf.read(names[0]) if names else None
        else:
            with tarfile.open(sdist) as tf:
                for member in tf:
                    if member.name.count("/") == 1 and member.name.endswith("/pyproject.toml"):
                        f = tf.extractfile(member)
                        data = f.read() if f else None
                        break
    except (tarfile.TarError, zipfile.BadZipFile, OSError):
        return ["setuptools>=40.8.0", "wheel"]
    if data is None:
        return ["setuptools>=40.8.0", "wheel"]
    try:
        build_system = tomllib.loads(data.decode("utf-8", "replace")).get("build-system", {})
    except tomllib.TOMLDecodeError:
        return ["<unparseable pyproject.toml>"]
    return list(build_system.get("requires", ["setuptools>=40.8.0", "wheel"]))


# Debug info for the huge C files Cython generates dominates compile time
# (krb5: 108 s -> 25 s with -g0); the venv debs do not ship it either. A fixed
# SOURCE_DATE_EPOCH makes the wheel archives reproducible.
BUILD_FLAGS = {"CFLAGS": "-g0", "CXXFLAGS": "-g0", "SOURCE_DATE_EPOCH": "315532800"}  # fixed zip timestamps
# Unpacking and building tens of thousands of small files is syscall-bound:
# do it in RAM where there is a tmpfs.
def _scratch() -> str:
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return tempfile.gettempdir()
    big_enough = st.f_bavail * st.f_frsize >= 4 << 30
    return "/dev/shm" if big_enough and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


SCRATCH = _scratch()


class BuildEnv:
    def __init__(self, cache_root: Path, interpreter: str, target: Target, index_url: str, tools_url: str,
                 runner: Runner = RUNNER) -> None:
        spec = resources.files("stackyard.wheels").joinpath("buildenv.txt").read_text()
        self.requirements = [line for line in spec.splitlines() if line and not line.startswith("#")]
        digest = hashlib.sha256(("\n".join(self.requirements) + interpreter + repr(BUILD_FLAGS) + "empty home").encode()).hexdigest()[:16]
        self.path = cache_root / "buildenv" / f"{target.key}-{digest}"
        self.interpreter = interpreter
        self.target = target
        self.index_url = index_url
        self.tools_url = tools_url
        self.pip_cache = cache_root / "pip"
        self._installed: dict[str, str] | None = None
        self._lock = threading.Lock()
        self.runner = runner

    @property
    def log(self) -> Path:
        """Where preparing the environment is logged (beside it: the environment is remade from scratch)."""
        return self.path.with_name(self.path.name + ".log")

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def ensure(self) -> None:
        with self._lock:
            if (self.path / ".ready").exists():
                return
            if not Path(self.interpreter).exists():
                raise ToolError(f"{self.interpreter} not found", hint=f"apt-get install python{self.target.python}-venv python{self.target.python}-dev")
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            steps = [
                [self.interpreter, "-m", "venv", str(self.path)],
                [str(self.python), "-m", "pip", "install", "--isolated", "--disable-pip-version-check", "-q",
                 "--index-url", self.tools_url, "--cache-dir", str(self.pip_cache), *self.requirements],
            ]
            for cmd in steps:
                self.runner.run(cmd, env=pip_env(), log=self.log, timeout=PREPARE_TIMEOUT,
                                what=f"cannot prepare the build environment {self.path}: {' '.join(cmd[:4])} failed")
            # An empty HOME: nobody's ~/.pydistutils.cfg or ~/.config/pip reaches a build. Extensions
            # compile one after another, as setuptools does by default: `build_ext --parallel` compiles
            # extensions that share a source into one object file at once (libvirt-python's three
            # modules share typewrappers.c), and a module linked while another rewrites the object
            # misses its symbols.
            (self.path / "home").mkdir(exist_ok=True)
            (self.path / ".ready").write_text("")

    def installed(self) -> dict[str, str]:
        if self._installed is None:
            code = "import json,importlib.metadata as m;print(json.dumps({d.metadata['Name']:d.version for d in m.distributions()}))"
            r = self.runner.run([str(self.python), "-c", code], env=pip_env(), timeout=120,
                                what=f"cannot list the packages of the build environment {self.path}")
            self._installed = {canonicalize_name(k): v for k, v in json.loads(r.stdout).items()}
        return self._installed

    def satisfies(self, requirements: list[str]) -> bool:
        installed = self.installed()
        env = self.target.marker_environment()
        for text in requirements:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                return False
            if req.marker and not req.marker.evaluate(env):
                continue
            have = installed.get(canonicalize_name(req.name))
            if have is None or not req.specifier.contains(have, prereleases=True):
                return False
        return True

    def build(self, source: str, log: Path, *, isolated: bool) -> Path:
        """Build one wheel from ``source`` (an sdist path or a URL); returns it.

        A local sdist whose build requirements this environment satisfies goes
        straight to its PEP 517 backend; anything else goes through pip (with
        an isolated build environment if needed). Every extension module the
        wheel holds must then load (``stackyard/load_check.py``): a bad link
        fails the build, not an import on an installed host.
        """
        self.ensure()
        out = Path(tempfile.mkdtemp(prefix="stackyard-wheel-", dir=SCRATCH))
        if not isolated and Path(source).exists():
            cmd = [str(self.python), str(Path(__file__).with_name("pep517_build.py")), source, str(out)]
        else:
            cmd = [str(self.python), "-m", "pip", "wheel", "--isolated", "--disable-pip-version-check", "-v",
                   "--no-deps", "--index-url", self.index_url, "--cache-dir", str(self.pip_cache), "-w", str(out)]
            if not isolated:
                cmd.append("--no-build-isolation")
            cmd.append(source)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")  # this build's log only
        env = pip_env(extra={**BUILD_FLAGS, "HOME": str(self.path / "home"), "TMPDIR": SCRATCH})
        try:
            self.runner.run(cmd, env=env, log=log, stream=True, timeout=BUILD_TIMEOUT,
                            what=f"building a wheel from {Path(source).name} failed")
            wheels = list(out.glob("*.whl"))
            if len(wheels) != 1:
                raise ToolError(f"building a wheel from {Path(source).name} made {len(wheels)} wheels, not one (log: {log})")
            self.check_loads(wheels[0], Path(source).name, env, log)
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)
            raise
        return wheels[0]

    def check_loads(self, wheel: Path, source: str, env: Env, log: Path) -> None:
        """Every extension module of a wheel just built loads: no symbol is missing."""
        done = self.runner.run([str(self.python), str(LOAD_CHECK), str(wheel)],
                               env=env, log=log, timeout=LOAD_CHECK_TIMEOUT, check=False,
                               what=f"checking that the modules of {wheel.name} load")
        if done.returncode != 0:
            missing = [line.removeprefix(load_check.FAILED) for line in done.stdout.splitlines()
                       if line.startswith(load_check.FAILED)]
            raise ToolError(
                f"{wheel.name}, built from {source}: "
                + ("; ".join(missing) if missing else f"its load check exited {done.returncode}") + f" (log: {log})",
                hint="the module was linked without the object that defines it (see the build log); the wheel was "
                     "not kept, a re-run builds it again")

