"""Moving a recipe's upstream pin for one release (``stackyard pin``).

An upstream tag reaches a build as a new pin in the recipe: the same edit a
person makes by hand, done on the text so comments and layout stay. Pins only
move forward; an older or equal version leaves the recipe as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from stackyard.errors import ConfigError, InputError
from stackyard.recipes import VERSION, Recipe, parse_recipe


@dataclass(frozen=True)
class PinResult:
    project: str
    release: str
    previous: str | None
    current: str
    changed: bool


def _version(text: str, where: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise InputError(f"{where}: {text!r} is not a version (PEP 440)") from None


def _entry(release_id: str) -> re.Pattern[str]:
    # "2025.1": "27.0.2" / '2025.1': 27.0.2 / "2025.1": '27.0.2' — in a block or a flow mapping
    return re.compile(r"""(?P<key>["']%s["']\s*:\s*)(?P<q>["']?)(?P<v>[0-9][0-9A-Za-z.+!-]*)(?P=q)""" % re.escape(release_id))


def pinned_text(text: str, release_id: str, version: str, file: Path) -> str:
    """``text`` (a recipe) with versions.<release_id> set to ``version``."""
    import yaml

    pattern = _entry(release_id)
    if len(pattern.findall(text)) == 1:
        new = pattern.sub(lambda m: f'{m["key"]}"{version}"', text)
    elif not pattern.findall(text) and re.search(r"^versions:\s*$", text, re.M):
        new = re.sub(r"^versions:\s*$", f'versions:\n  "{release_id}": "{version}"', text, count=1, flags=re.M)
    else:
        raise ConfigError(f"{file}: versions.{release_id}: cannot be rewritten automatically; set it to {version!r} by hand")
    recipe = parse_recipe(yaml.safe_load(new), file)
    if recipe.versions.get(release_id) != version:
        raise ConfigError(f"{file}: versions.{release_id}: cannot be rewritten automatically; set it to {version!r} by hand")
    return new


def pin(recipe: Recipe, release_id: str, version: str) -> PinResult:
    """Set the recipe's upstream version for ``release_id`` to ``version`` unless it is already as new."""
    if not VERSION.match(version):
        raise InputError(f"{version!r} is not an upstream version", hint="give a release tag such as 27.0.3")
    previous = recipe.versions.get(release_id)
    if previous is not None and _version(version, "version") <= _version(previous, f"{recipe.file}: versions.{release_id}"):
        return PinResult(recipe.name, release_id, previous, previous, False)
    text = recipe.file.read_text()
    new = pinned_text(text, release_id, version, recipe.file)
    tmp = recipe.file.with_name(f".{recipe.file.name}.tmp")
    tmp.write_text(new)
    tmp.replace(recipe.file)
    return PinResult(recipe.name, release_id, previous, version, True)
