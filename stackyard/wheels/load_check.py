"""Load every extension module a freshly built wheel holds, as the interpreter will (``RTLD_NOW``).

Runs in the build environment: ``python load_check.py WHEEL``. A module whose
link went wrong (a symbol that neither it, the libraries it names nor the
interpreter defines: an object file that was empty when it was linked) fails
here, at the wheel stage, naming the module and the symbol, instead of at
``import`` on an installed host. Nothing is imported, so no module's init
function runs.

The modules are the files named with this interpreter's tagged suffixes
(``.cpython-311-x86_64-linux-gnu.so``, ``.abi3.so``), what build backends name
an extension; the libraries a wheel carries load through them. A library the
loader cannot find is reported, not judged: it may come from another wheel at
run time (its rpath points into site-packages) or from the target's packages,
which the deb's dependencies and smoke test judge. Exits 1 if a module has an
undefined symbol.
"""

import ctypes
import importlib.machinery
import os
import sys
import tempfile
import zipfile

SUFFIXES = tuple(s for s in importlib.machinery.EXTENSION_SUFFIXES if s != ".so")


def main() -> int:
    wheel = sys.argv[1]
    failures, unjudged = [], []
    with tempfile.TemporaryDirectory(prefix="stackyard-load-") as tmp:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(tmp)  # all of it: an rpath of $ORIGIN/../foo.libs finds what it names
            modules = sorted(n for n in zf.namelist() if n.endswith(SUFFIXES))
        for member in modules:
            try:
                ctypes.CDLL(os.path.join(tmp, member), mode=os.RTLD_NOW | os.RTLD_LOCAL)
            except OSError as exc:
                message = str(exc).replace(tmp + os.sep, "").removeprefix(f"{member}: ")
                (failures if "undefined symbol" in message else unjudged).append(f"{member}: {message}")
    for line in unjudged:
        print(f"not judged here, a library is missing: {line}")
    for line in failures:
        print(f"does not load: {line}")
    print(f"{len(modules)} extension modules, {len(failures)} with an undefined symbol", flush=True)
    # The modules stay loaded, never initialised: skip the interpreter's finalisation, which some
    # of them (pybind11's) do not survive.
    os._exit(1 if failures else 0)


if __name__ == "__main__":
    main()
