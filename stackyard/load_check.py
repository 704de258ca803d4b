"""Load every extension module of a wheel or of an installed tree, as the interpreter will (``RTLD_NOW``).

``python load_check.py [--strict] PATH``, PATH a wheel (extracted to a
temporary directory) or a directory (a venv). Runs with the interpreter the
modules are for and the standard library only: the wheel stage runs it in the
build environment on each wheel it builds, the smoke test as the service user
on the venv a deb installed.

A module whose link went wrong (a symbol that neither it, the libraries it
names nor the interpreter defines: an object file that was empty when it was
linked) fails, naming the module and the symbol, instead of at ``import`` on a
host. Nothing is imported, so no module's init function runs. The modules are
the files named with this interpreter's tagged suffixes
(``.cpython-311-x86_64-linux-gnu.so``, ``.abi3.so``), what build backends name
an extension; the libraries a wheel carries load through them.

A library the loader cannot find fails only with ``--strict``: a wheel's
module may find it at run time in another wheel (an rpath into
site-packages) or in the target's packages, but an installed venv must have it.
Prints one line per module that fails and exits 1 if there is any.
"""

import ctypes
import importlib.machinery
import os
import sys
import tempfile
import zipfile

SUFFIXES = tuple(s for s in importlib.machinery.EXTENSION_SUFFIXES if s != ".so")
FAILED = "does not load: "  # how a failing module's line starts; the wheel stage reads it


def check(root: str, modules: list[str], strict: bool) -> list[str]:
    failures = []
    for member in modules:
        try:
            ctypes.CDLL(os.path.join(root, member), mode=os.RTLD_NOW | os.RTLD_LOCAL)
        except OSError as exc:
            message = str(exc).replace(root + os.sep, "").removeprefix(f"{member}: ")
            judged = strict or "undefined symbol" in message
            print(f"{FAILED if judged else 'not judged here: '}{member}: {message}")
            if judged:
                failures.append(member)
    return failures


def main() -> None:
    strict = "--strict" in sys.argv[1:]
    (path,) = [a for a in sys.argv[1:] if a != "--strict"]
    if os.path.isdir(path):
        modules = sorted(os.path.relpath(os.path.join(d, f), path)
                         for d, _, files in os.walk(path) for f in files if f.endswith(SUFFIXES))
        failures = check(path, modules, strict)
    else:
        with tempfile.TemporaryDirectory(prefix="stackyard-load-") as tmp:
            with zipfile.ZipFile(path) as zf:
                zf.extractall(tmp)  # all of it: an rpath of $ORIGIN/../foo.libs finds what it names
                modules = sorted(n for n in zf.namelist() if n.endswith(SUFFIXES))
            failures = check(tmp, modules, strict)
    print(f"{len(modules)} extension modules, {len(failures)} that do not load", flush=True)
    # The modules stay loaded, never initialised: skip the interpreter's finalisation, which some
    # of them (pybind11's) do not survive.
    os._exit(1 if failures else 0)


if __name__ == "__main__":
    main()
