"""A venv deb's lintian overrides: of the candidates in recipes/debian/lintian-overrides,
the ones whose path is in this package.

Every candidate is scoped to the path it excuses (``tag [path glob]`` or
``tag note [path glob]``, the glob rooted at the venv or its prefix), and a
candidate is kept only when that glob matches a file of the built package that
can draw the tag (an ELF file for the ELF tags, a ``#!`` file that is not
executable for script-not-executable, ...). So a project without netaddr ships
no netaddr override, and lintian reports no unused override.

Run by debian/rules once dh-virtualenv has made the venv (stdlib only: it is
copied into debian/ like venv_fixup.py):
``python3 -I debian/lintian-overrides.py CANDIDATES PACKAGE_ROOT debian/<pkg>.lintian-overrides``
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import sys
from pathlib import Path
from typing import Callable, Iterable

OVERRIDE = re.compile(r"^(?P<package>@PACKAGE@|[a-z0-9][a-z0-9+.-]*): (?P<tag>[a-z0-9][a-z0-9+.-]*)(?: (?P<note>[^\[]*?))? \[(?P<path>[^\]]+)\]$")


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(64)
    except OSError:
        return b""


def is_elf(path: Path) -> bool:
    return _head(path)[:4] == b"\x7fELF"


def interpreter(path: Path) -> str | None:
    """The program a ``#!`` line names (the one after ``env``), or None."""
    head = _head(path)
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
    if words and words[0].endswith("/env") and len(words) > 1:
        return words[1]
    return words[0] if words else ""


def _executable(path: Path) -> bool:
    return bool(path.lstat().st_mode & 0o111)


def _unusual(path: Path) -> bool:
    prog = interpreter(path)
    return prog is not None and (not prog.startswith("/") or prog.startswith("/opt/"))


# what a regular file must be to draw each tag; a tag not listed here needs only the path (file or directory)
DRAWS: dict[str, Callable[[Path], bool]] = {
    "embedded-library": is_elf,
    "unstripped-binary-or-object": is_elf,
    "library-not-linked-against-libc": is_elf,
    "script-not-executable": lambda p: interpreter(p) is not None and not _executable(p),
    "executable-not-elf-or-script": lambda p: _executable(p) and not is_elf(p) and interpreter(p) is None,
    "unusual-interpreter": _unusual,
    "python3-script-but-no-python3-dep": lambda p: _executable(p) and (interpreter(p) or "").rsplit("/", 1)[-1] == "python3",
}


def unscoped(line: str) -> str | None:
    """Why ``line`` (an override) is not scoped to a path, or None if it is."""
    m = OVERRIDE.match(line)
    if m is None:
        return "not 'package: tag [path]' or 'package: tag note [path]'"
    path = m["path"]
    if not path.strip("*/ ") or path.startswith("*"):
        return f"its path {path!r} is no path"
    return None


def _paths(root: Path) -> list[tuple[str, Path | None]]:
    """Every directory and file under ``root`` as lintian names them ('opt/x/', 'opt/x/y'), with the regular files."""
    found: list[tuple[str, Path | None]] = []
    for dirpath, _dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel = base.relative_to(root).as_posix()
        if rel != ".":
            found.append((rel + "/", None))
        for name in filenames:
            p = base / name
            found.append((p.relative_to(root).as_posix(), p if stat.S_ISREG(p.lstat().st_mode) else None))
    return found


def applicable(candidates: Iterable[str], root: Path) -> list[str]:
    """The candidate lines to ship for the package tree ``root``: comments travel with the overrides after them."""
    paths = _paths(root)
    out: list[str] = []
    comments: list[str] = []
    block = False  # an override was read since the last comment: a comment starts a new block
    for raw in candidates:
        line = raw.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            comments = [] if not line.strip() or block else comments
            comments += [line] if line.strip() else []
            block = False
            continue
        block = True
        why = unscoped(line)
        m = OVERRIDE.match(line)
        if why is not None or m is None:
            raise ValueError(f"not a scoped override: {line!r}: {why}")
        draws = DRAWS.get(m["tag"])
        if any(fnmatch.fnmatchcase(name, m["path"]) and (draws is None or (p is not None and draws(p))) for name, p in paths):
            out += [*comments, line]
            comments = []
    return out


def main(argv: list[str]) -> int:
    candidates, root, output = Path(argv[0]), Path(argv[1]), Path(argv[2])
    output.write_text("".join(f"{line}\n" for line in applicable(candidates.read_text().splitlines(), root)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
