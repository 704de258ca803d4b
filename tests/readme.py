"""The README's shell blocks, by the ``<!-- readme-test: NAME -->`` marker above each.

Every ``sh`` block carries a marker: the test that runs it exactly as written
(``tests/integration/test_operator.py``, ``tests/e2e/test_readme_commands.py``),
or ``ci`` for the make targets that ``.ci/run`` and ``make demo`` run, or
``not run: REASON``. tests/unit/test_readme.py keeps it so.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(?:<!-- readme-test: (?P<tag>[^>]*?) -->\n)?```sh\n(?P<body>.*?)```", re.S)


def sh_blocks(text: str | None = None) -> list[tuple[str | None, str]]:
    """(marker or None, body) of every ```sh block, in order."""
    text = README.read_text() if text is None else text
    return [(m.group("tag"), m.group("body")) for m in BLOCK.finditer(text)]


def block(tag: str) -> str:
    """The one block marked ``tag`` (as a bash script that stops at the first failure)."""
    found = [body for t, body in sh_blocks() if t == tag]
    assert len(found) == 1, f"README.md has {len(found)} sh blocks marked readme-test: {tag}"
    return "set -euxo pipefail\n" + found[0]
