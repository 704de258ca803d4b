"""openstack-helm values overrides pointing the charts at the pushed images.

Per chart (a recipe's ``image.chart``): ``images.tags`` for each key the
recipes name, by the immutable dated tag, and the registry credentials block
(``endpoints.oci_image_registry``) the charts turn into an image pull secret.
"""

from __future__ import annotations

from typing import Any

import yaml

from stackyard.config import Config, Release
from stackyard.errors import InputError
from stackyard.images import ImageRecord, read_record
from stackyard.recipes import Recipe

CLIENT_IMAGE = "openstack-client"


def _pushed(config: Config, release: Release, recipe: Recipe) -> ImageRecord:
    record = read_record(config, release, recipe.image.name)
    if record is None or not record.digest:
        raise InputError(f"the {recipe.image.name} image of {release.id} has not been pushed",
                         hint=f"stackyard image --release {release.id} {recipe.name} --push")
    return record


def chart_values(config: Config, release: Release, recipes: dict[str, Recipe], password: str) -> dict[str, dict[str, Any]]:
    """chart name -> values override, for every chart whose project image was pushed for ``release``."""
    client = next((r for r in recipes.values() if r.image.name == CLIENT_IMAGE), None)
    host, _, port = config.images.registry.partition(":")
    out: dict[str, dict[str, Any]] = {}
    for recipe in sorted(recipes.values(), key=lambda r: r.name):
        spec = recipe.image
        if not spec.chart or read_record(config, release, spec.name) is None:
            continue
        own = _pushed(config, release, recipe)
        tags = {key: f"{own.repository}:{own.dated_tag}" for key in spec.chart_keys}
        if spec.client_keys:
            if client is None:
                raise InputError(f"chart {spec.chart} runs {', '.join(spec.client_keys)} on the {CLIENT_IMAGE} image, "
                                 "and no recipe makes it", hint=f"add a recipe with image.name: {CLIENT_IMAGE}")
            theirs = _pushed(config, release, client)
            tags |= {key: f"{theirs.repository}:{theirs.dated_tag}" for key in spec.client_keys}
        out[spec.chart] = {
            "images": {"tags": dict(sorted(tags.items())), "pull_policy": "IfNotPresent"},
            "endpoints": {"oci_image_registry": {
                "auth": {"enabled": True, spec.chart: {"username": config.images.username, "password": password}},
                "hosts": {"default": host},
                "port": {"registry": {"default": int(port) if port else 443}},
            }},
        }
    if not out:
        raise InputError(f"no image of {release.id} has been built", hint=f"stackyard image --release {release.id} PROJECT --push")
    return out


def dump(values: dict[str, Any], release: Release, chart: str) -> str:
    return (f"# openstack-helm values for the {chart} chart, OpenStack {release.id}: written by "
            f"'stackyard helm-values'.\n# It holds the registry password: keep it as secret as the password file.\n"
            + yaml.safe_dump(values, sort_keys=False, default_flow_style=False))
