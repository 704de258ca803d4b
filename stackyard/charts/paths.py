"""What the openstack-helm charts hard-code about an image: paths they name (pure).

``chart_paths(charts)`` reads each chart's values.yaml and bin/ scripts for the paths under
``/var/lib/openstack`` they name (the venv's helpers their ``*_sudoers`` allow, glance's metadefs, neutron's
rootwrap.d), and adds what their pods run by name: ``sudo`` and ``/etc/sudoers.d`` where the chart mounts a
``*_sudoers`` file, the WSGI server the chart starts (``uwsgi`` for a ``*_uwsgi`` section, apache2 for
keystone). ``images/charts/PATHS.tsv`` is the vendored result (the unit suite checks it against the
charts); ``stackyard.images.build`` checks each image against it before a push.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

CHARTS = ("keystone", "glance", "placement", "nova", "neutron", "cinder")
VENV_PATH = re.compile(r"/var/lib/openstack/[A-Za-z0-9_./-]*[A-Za-z0-9_]")
HEADER = "image\tpath\tnamed by"


def chart_paths(charts: Path) -> list[tuple[str, str, str]]:
    """(image, path, what in the chart names it), sorted."""
    rows: set[tuple[str, str, str]] = set()
    for chart in CHARTS:
        directory = charts / chart
        if not (directory / "values.yaml").exists():
            continue
        sources = [directory / "values.yaml", *sorted((directory / "bin").glob("*.tpl"))]
        for source in sources:
            for path in VENV_PATH.findall(source.read_text()):
                rows.add((chart, path, f"{chart}/{source.relative_to(directory)}"))
        values = yaml.safe_load((directory / "values.yaml").read_text())
        conf = values.get("conf") or {}
        rows.add((chart, "/var/lib/openstack/bin/python3", f"{chart}: the venv the charts' PATH and scripts use"))
        if isinstance(conf.get(f"{chart}_sudoers"), str):
            rows.add((chart, "/usr/bin/sudo", f"{chart}/values.yaml conf.{chart}_sudoers"))
            rows.add((chart, "/etc/sudoers.d", f"{chart}/values.yaml conf.{chart}_sudoers"))
        if any(k.endswith("_uwsgi") for k in conf):
            rows.add((chart, "/usr/bin/uwsgi", f"{chart}/values.yaml conf.*_uwsgi"))
        apache = ((conf.get("software") or {}).get("apache2") or {}).get("binary")
        if apache:
            rows.add((chart, f"/usr/sbin/{apache}", f"{chart}/values.yaml conf.software.apache2.binary"))
    return sorted(rows)


def paths_tsv(rows: list[tuple[str, str, str]]) -> str:
    return HEADER + "\n" + "".join(f"{image}\t{path}\t{source}\n" for image, path, source in rows)


def read_paths_tsv(text: str) -> dict[str, list[tuple[str, str]]]:
    """image -> [(path, named by)] from a PATHS.tsv."""
    out: dict[str, list[tuple[str, str]]] = {}
    for line in text.splitlines()[1:]:
        if line.strip():
            image, path, source = line.split("\t")
            out.setdefault(image, []).append((path, source))
    return out
