#!/usr/bin/python3 -I
"""Make a dh-virtualenv tree independent of the build directory.

usage: venv-fixup.py <venv dir in debian/pkg> <final install dir> [--drop-tests]
 - pyvenv.cfg: 'command = ... -m venv <builddir>' -> final install dir
 - bin/ scripts: when the build-dir python path makes the shebang longer than
   127 bytes, pip writes a '#!/bin/sh' + 'exec' trampoline; dh_virtualenv only
   rewrites the path in it.  Turn it into the plain '#!<final>/bin/python'
   that pip writes for a short path.
 - RECORD: re-hash bin/ entries whose content changed after pip
   (dh_virtualenv's shebang rewrite, the step above)
 - pip itself goes: the venv was installed by the build, and nothing at run
   time installs into it (no PyPI on production hosts)
 - with --drop-tests, the packages' own test suites (directories named
   'tests' holding Python files) go too, and their RECORD rows with them,
   except those an entry point names (glance_store registers the driver
   'no_conf = glance_store.tests.fakes:...': without it stevedore logs an
   ERROR at every glance-api start)
"""
import base64, csv, glob, hashlib, io, os, re, shutil, sys

venv, final = sys.argv[1], sys.argv[2]
drop_tests = "--drop-tests" in sys.argv[3:]
cfg = os.path.join(venv, "pyvenv.cfg")
text = open(cfg).read()
text = re.sub(r"(?m)^(command = .* -m venv ).*$", lambda m: m.group(1) + final, text)
open(cfg, "w").write(text)

Q3 = b"'" * 3
trampoline = re.compile(b"#!/bin/sh\n" + Q3 + b"exec' (" + re.escape(final.encode())
                        + rb'/bin/python[0-9.]*) "\$0" "\$@"' + b"\n' " + Q3 + b"\n")
bindir = os.path.join(venv, "bin")
for name in sorted(os.listdir(bindir)):
    path = os.path.join(bindir, name)
    if os.path.islink(path) or not os.path.isfile(path):
        continue
    data = open(path, "rb").read()
    m = trampoline.match(data)
    if m:
        open(path, "wb").write(b"#!" + m.group(1) + b"\n" + data[m.end():])

site = os.path.join(venv, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
for path in glob.glob(os.path.join(site, "pip")) + glob.glob(os.path.join(site, "pip-*.dist-info")):
    shutil.rmtree(path)
for path in glob.glob(os.path.join(bindir, "pip")) + glob.glob(os.path.join(bindir, "pip3*")):
    os.unlink(path)
dropped = []
if drop_tests:
    named = set()  # the modules entry points name: 'name = module.path:attr'
    for points in glob.glob(os.path.join(site, "*.dist-info", "entry_points.txt")):
        for line in open(points, encoding="utf-8"):
            if "=" in line and not line.lstrip().startswith(("[", "#", ";")):
                named.add(line.split("=", 1)[1].split(":")[0].strip())

    def named_inside(dirpath):
        module = os.path.relpath(dirpath, site).replace(os.sep, ".")
        return any(m == module or m.startswith(module + ".") for m in named)

    for dirpath, dirnames, filenames in os.walk(site):
        if os.path.basename(dirpath) == "tests" and dirpath != site and any(f.endswith(".py") for f in filenames) \
                and not named_inside(dirpath):
            shutil.rmtree(dirpath)
            dropped.append(os.path.relpath(dirpath, site) + os.sep)
            dirnames[:] = []
for dist in sorted(os.listdir(site)):
    record = os.path.join(site, dist, "RECORD")
    if not dist.endswith(".dist-info") or not os.path.exists(record):
        continue
    rows, changed = [], False
    for row in csv.reader(open(record, newline="")):
        if row and row[0].startswith(tuple(dropped)):
            changed = True
            continue
        if len(row) == 3 and row[1] and row[0].startswith("../../../bin/"):
            path = os.path.normpath(os.path.join(site, row[0]))
            data = open(path, "rb").read()
            digest = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            if digest != row[1]:
                row, changed = [row[0], digest, str(len(data))], True
        rows.append(row)
    if changed:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        open(record, "w", newline="").write(out.getvalue())
