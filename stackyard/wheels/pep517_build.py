"""Build one wheel from one sdist by calling its PEP 517 backend directly.

Runs inside the shared build environment (stdlib + pyproject_hooks only):
``python pep517_build.py SDIST OUTDIR``. Compared with ``pip wheel`` it skips
pip's start-up and the separate metadata preparation (a second egg_info run
for setuptools projects), which matters for the 50-odd sdists of a release.
Prints the wheel's file name on the last line.
"""

import os
import sys
import tarfile
import tempfile
import tomllib
import zipfile

from pyproject_hooks import BuildBackendHookCaller, default_subprocess_runner

LEGACY = "setuptools.build_meta:__legacy__"


def unpack(sdist: str, into: str) -> str:
    if sdist.endswith(".zip"):
        with zipfile.ZipFile(sdist) as zf:
            zf.extractall(into)
    else:
        with tarfile.open(sdist) as tf:
            if hasattr(tarfile, "data_filter"):  # python >= 3.11.4
                tf.extractall(into, filter="data")
            else:
                root = os.path.realpath(into)
                for member in tf.getmembers():
                    target = os.path.realpath(os.path.join(into, member.name))
                    if not target.startswith(root + os.sep) or member.issym() or member.islnk() or member.isdev():
                        raise SystemExit(f"{sdist}: refusing unsafe member {member.name!r}")
                tf.extractall(into)
    entries = os.listdir(into)
    return os.path.join(into, entries[0]) if len(entries) == 1 else into


def main() -> int:
    sdist, out = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="stackyard-sdist-") as tmp:
        src = unpack(sdist, tmp)
        backend, backend_path = LEGACY, None
        pyproject = os.path.join(src, "pyproject.toml")
        if os.path.exists(pyproject):
            with open(pyproject, "rb") as handle:
                system = tomllib.load(handle).get("build-system", {})
            backend = system.get("build-backend", LEGACY)
            backend_path = system.get("backend-path")
        hooks = BuildBackendHookCaller(src, backend, backend_path, python_executable=sys.executable,
                                       runner=default_subprocess_runner)
        name = hooks.build_wheel(out)
    print(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
