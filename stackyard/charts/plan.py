"""Which charts a run brings up (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from stackyard.charts.render import CHARTS, SUPPORTED
from stackyard.errors import InputError

NEEDS = {"keystone": (), "glance": ("keystone",), "placement": ("keystone",), "neutron": ("keystone",),
         "nova": ("keystone", "glance", "placement", "neutron"), "cinder": ("keystone",)}


def charts_for(projects: Sequence[str]) -> tuple[str, ...]:
    """The charts for ``projects`` (default: all it knows) and what they need, in start order."""
    wanted = set(projects or CHARTS)
    unknown = sorted(wanted - set(SUPPORTED))
    if unknown:
        raise InputError(f"chart-verify knows the charts {', '.join(SUPPORTED)}, not {', '.join(unknown)}")
    for chart in list(wanted):
        wanted.update(NEEDS[chart])
    return tuple(c for c in CHARTS if c in wanted)


def default_charts_dir(images: Path) -> Path:
    """The charts' files stackyard runs (values, bin/, configmap-etc), vendored at images/charts/SOURCE's commit."""
    return images / "charts" / "openstack-helm"
