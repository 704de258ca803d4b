"""The vendored chart image keys and chart files (images/charts) against openstack-helm in ../shared/openstack-helm.

The unit suite checks the recipes against the vendored copy; this checks the
copy against the charts, so a chart update (a new images.tags key, a key
gone, another default image) fails here until the copy and the recipes follow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stackyard.images.helm_values import read_chart_images
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

VENDORED = ROOT / "images" / "charts"
UPSTREAM = ROOT.parent / "shared" / "openstack-helm"
REFRESH = f"cp {UPSTREAM}/IMAGES.tsv images/charts/ (and SOURCE's first line), then fix the recipes' image: keys"


def charts_with_values() -> list[str]:
    return sorted(p.parent.name for p in UPSTREAM.glob("*/values.yaml"))


def test_the_vendored_table_is_openstack_helms() -> None:
    assert UPSTREAM.is_dir(), f"{UPSTREAM}: missing (openstack-helm's charts, beside the checkout)"
    ours, theirs = (VENDORED / "IMAGES.tsv").read_text(), (UPSTREAM / "IMAGES.tsv").read_text()
    if ours != theirs:
        mine, upstream = set(ours.splitlines()), set(theirs.splitlines())
        lines = [f"  only vendored: {line!r}" for line in sorted(mine - upstream)]
        lines += [f"  only upstream: {line!r}" for line in sorted(upstream - mine)]
        pytest.fail("images/charts/IMAGES.tsv differs from openstack-helm's:\n" + "\n".join(lines or ["  (line order)"])
                    + f"\nfix: {REFRESH}")
    source = (VENDORED / "SOURCE").read_text().splitlines()[0]
    assert source == (UPSTREAM / "SOURCE").read_text().splitlines()[0], REFRESH


@pytest.mark.parametrize("chart", charts_with_values() or ["(none)"])
def test_the_table_matches_the_charts_values(chart: str) -> None:
    values = UPSTREAM / chart / "values.yaml"
    assert values.is_file(), f"{values}: missing"
    tags = yaml.safe_load(values.read_text())["images"]["tags"]
    table = read_chart_images(VENDORED / "IMAGES.tsv").get(chart, {})
    missing = sorted(set(tags) - set(table))
    extra = sorted(set(table) - set(tags))
    other = sorted(k for k in set(tags) & set(table) if tags[k] != table[k])
    assert not (missing or extra or other), (
        f"{chart}: images/charts/IMAGES.tsv against {values}: "
        f"keys missing {missing}, keys the chart lacks {extra}, other default image {other}\nfix: {REFRESH}")


def test_the_vendored_charts_are_openstack_helms() -> None:
    """images/charts/openstack-helm (what chart-verify runs and the unit suite reads) is the charts' files, byte for byte."""
    assert UPSTREAM.is_dir(), f"{UPSTREAM}: missing (openstack-helm's charts, beside the checkout)"
    snapshot = VENDORED / "openstack-helm"

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and p.parent != root}  # per chart; IMAGES.tsv and SOURCE are one level up
    ours, theirs = files(snapshot), files(UPSTREAM)
    differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    assert not differ, (f"{snapshot} differs from {UPSTREAM} in {', '.join(differ[:20])}; fix: "
                        f"rm -r {snapshot} && cp -r {UPSTREAM} {snapshot} && rm {snapshot}/IMAGES.tsv {snapshot}/SOURCE")
