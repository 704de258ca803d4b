"""openstack-helm values overrides pointing the charts at the pushed images.

Per chart (a recipe's ``image.chart``): ``images.tags`` for each key the
recipes name, by the immutable dated tag (or, with ``by_digest``, by the
registry digest the push recorded), and the registry credentials block
(``endpoints.oci_image_registry``) the charts turn into an image pull secret.

Which keys a chart has, and the image each defaults to, comes from the
vendored ``images/charts/IMAGES.tsv`` (openstack-helm's, see its SOURCE):
a recipe naming a key the chart lacks is an error, and the chart's keys whose
default is not an OpenStack image (kubernetes-entrypoint, ceph-config-helper,
rabbitmq, xrally, docker...) are reported as left to the chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from stackyard.config import Config, Release
from stackyard.errors import InputError
from stackyard.images.build import ImageRecord, read_record
from stackyard.recipes import Recipe

CLIENT_IMAGE = "openstack-client"
UPSTREAM_NAMESPACE = "airshipit"  # openstack-helm's own images: quay.io/airshipit/<service>


@dataclass(frozen=True)
class ChartValues:
    chart: str
    values: dict[str, Any]  # the override: images.tags, pull_policy, endpoints.oci_image_registry
    left: dict[str, str]  # images.tags keys this file does not set -> the chart's default image


def chart_table(config: Config) -> Path:
    return config.paths.images / "charts" / "IMAGES.tsv"


def read_chart_images(path: Path) -> dict[str, dict[str, str]]:
    """chart -> {images.tags key: default image}, from an IMAGES.tsv (chart, image_key, default_image)."""
    if not path.is_file():
        raise InputError(f"{path}: missing: the charts' image keys (openstack-helm's IMAGES.tsv)",
                         hint="copy it back from git (images/charts/IMAGES.tsv)")
    charts: dict[str, dict[str, str]] = {}
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not all(fields):
            raise InputError(f"{path}:{number}: expected chart, image_key, default_image separated by tabs: {line!r}")
        chart, key, image = fields
        charts.setdefault(chart, {})[key] = image
    return charts


def image_path(reference: str) -> str:
    """``quay.io/airshipit/nova:2026.1-ubuntu_noble`` -> ``airshipit/nova`` (no registry host, tag or digest)."""
    name = reference.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    name = f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]
    host, _, rest = name.partition("/")
    return rest if rest and ("." in host or ":" in host or host == "localhost") else name


def openstack_keys(tags: dict[str, str], image: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(keys defaulting to openstack-helm's ``image``, keys defaulting to its openstack-client), sorted."""
    own = sorted(k for k, ref in tags.items() if image_path(ref) == f"{UPSTREAM_NAMESPACE}/{image}")
    client = sorted(k for k, ref in tags.items() if image_path(ref) == f"{UPSTREAM_NAMESPACE}/{CLIENT_IMAGE}")
    return tuple(own), tuple(client)


def _pushed(config: Config, release: Release, recipe: Recipe) -> ImageRecord:
    record = read_record(config, release, recipe.image.name)
    if record is None or not record.digest:
        raise InputError(f"the {recipe.image.name} image of {release.id} has not been pushed",
                         hint=f"stackyard image --release {release.id} {recipe.name} --push")
    return record


def _reference(record: ImageRecord, by_digest: bool) -> str:
    return f"{record.repository}@{record.digest}" if by_digest else f"{record.repository}:{record.dated_tag}"


def _chart_keys(recipe: Recipe, charts: dict[str, dict[str, str]], table: Path) -> dict[str, str]:
    spec = recipe.image
    assert spec.chart
    tags = charts.get(spec.chart)
    if tags is None:
        raise InputError(f"{recipe.file}: image.chart: {spec.chart} is not an openstack-helm chart of {table}",
                         hint="fix image.chart, or update the vendored IMAGES.tsv from openstack-helm")
    unknown = [k for k in (*spec.chart_keys, *spec.client_keys) if k not in tags]
    if unknown:
        raise InputError(f"{recipe.file}: image: the {spec.chart} chart has no images.tags key {', '.join(unknown)}",
                         hint=f"the chart's keys are in {table}")
    return tags


def chart_values(config: Config, release: Release, recipes: dict[str, Recipe], password: str,
                 by_digest: bool = False) -> dict[str, ChartValues]:
    """chart name -> values override, for every chart whose project image was pushed for ``release``."""
    table = chart_table(config)
    charts = read_chart_images(table)
    client = next((r for r in recipes.values() if r.image.name == CLIENT_IMAGE), None)
    host, _, port = config.images.registry.partition(":")
    out: dict[str, ChartValues] = {}
    for recipe in sorted(recipes.values(), key=lambda r: r.name):
        spec = recipe.image
        if not spec.chart or read_record(config, release, spec.name) is None:
            continue
        defaults = _chart_keys(recipe, charts, table)
        own = _pushed(config, release, recipe)
        tags = {key: _reference(own, by_digest) for key in spec.chart_keys}
        if spec.client_keys:
            if client is None:
                raise InputError(f"chart {spec.chart} runs {', '.join(spec.client_keys)} on the {CLIENT_IMAGE} image, "
                                 "and no recipe makes it", hint=f"add a recipe with image.name: {CLIENT_IMAGE}")
            theirs = _pushed(config, release, client)
            tags |= {key: _reference(theirs, by_digest) for key in spec.client_keys}
        values = {
            "images": {"tags": dict(sorted(tags.items())), "pull_policy": "IfNotPresent"},
            "endpoints": {"oci_image_registry": {
                "auth": {"enabled": True, spec.chart: {"username": config.images.username, "password": password}},
                "hosts": {"default": host},
                "port": {"registry": {"default": int(port) if port else 443}},
            }},
        }
        left = {key: image for key, image in sorted(defaults.items()) if key not in tags}
        out[spec.chart] = ChartValues(spec.chart, values, left)
    if not out:
        raise InputError(f"no image of {release.id} has been built", hint=f"stackyard image --release {release.id} PROJECT --push")
    return out


def write(charts: Iterable[ChartValues], release: Release, out: Path) -> list[tuple[ChartValues, Path]]:
    """One values file per chart under ``out``, mode 0600 from the start: it holds the registry password."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for chart in charts:
        file = out / f"{chart.chart}.yaml"
        file.touch(mode=0o600)
        file.chmod(0o600)
        file.write_text(dump(chart, release))
        written.append((chart, file))
    return written


def dump(chart: ChartValues, release: Release) -> str:
    lines = [f"# openstack-helm values for the {chart.chart} chart, OpenStack {release.id}: written by 'stackyard helm-values'.",
             "# It holds the registry password: keep it as secret as the password file."]
    if chart.left:
        lines.append("# images.tags left to the chart (not OpenStack images; the chart's defaults stand):")
        lines += [f"#   {key}: {image}" for key, image in chart.left.items()]
    return "\n".join(lines) + "\n" + yaml.safe_dump(chart.values, sort_keys=False, default_flow_style=False)
