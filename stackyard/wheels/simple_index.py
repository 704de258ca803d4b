"""Writing a PEP 503 simple index (with sha256 fragments) for a wheelhouse."""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename


def write_simple_index(wheelhouse: Path, wheels: dict[str, str]) -> None:
    """``wheels`` maps filename (in ``wheelhouse``) to its sha256."""
    projects: dict[str, list[str]] = defaultdict(list)
    for filename in wheels:
        projects[canonicalize_name(parse_wheel_filename(filename)[0])].append(filename)
    simple = wheelhouse / "simple"
    simple.mkdir(parents=True, exist_ok=True)
    root = ["<!DOCTYPE html>", "<html><head><meta name=\"pypi:repository-version\" content=\"1.0\">"
            "<title>Simple index</title></head><body>"]
    for project in sorted(projects):
        root.append(f'<a href="{project}/">{project}</a><br>')
        page = [
            "<!DOCTYPE html>",
            f"<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>Links for {project}</title></head><body>",
            f"<h1>Links for {project}</h1>",
        ]
        for filename in sorted(projects[project]):
            href = f"../../{html.escape(filename)}#sha256={wheels[filename]}"
            page.append(f'<a href="{href}">{html.escape(filename)}</a><br>')
        page.append("</body></html>")
        (simple / project).mkdir(exist_ok=True)
        (simple / project / "index.html").write_text("\n".join(page) + "\n")
    root.append("</body></html>")
    (simple / "index.html").write_text("\n".join(root) + "\n")
