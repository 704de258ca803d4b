"""What ``stackyard publish`` takes: each project's smoke-tested file and the wheels deb it was built from."""

from __future__ import annotations

from pathlib import Path

from debian.changelog import Changelog

from stackyard import stage
from stackyard.config import Config, Release
from stackyard.debs.dpkg import debs_dir
from stackyard.debs.record import smoke_passed
from stackyard.debs.venv_deb import changelog_path
from stackyard.debs.wheels_deb import WheelsDeb
from stackyard.errors import InputError
from stackyard.recipes import Recipe
from stackyard.repo.apt import AptRepository, staging
from stackyard.runner import RUNNER, Runner


def publishable(config: Config, release: Release, recipes: list[Recipe], *, named: bool,
                runner: Runner = RUNNER) -> list[Path]:
    """The files of the versions the kept changelogs name, each of which passed its smoke test (an InputError
    names the first that did not); a project never built is an error only when ``named``. The release's wheels
    deb goes along once per version: publishes of its projects after the first do not add it again."""
    debs = []
    for recipe in recipes:
        cl = changelog_path(config, release, recipe.package)
        if not cl.exists():
            if named:
                raise InputError(f"{recipe.package} was never built for {release.id}",
                                 hint=f"stackyard deb --release {release.id} {recipe.name}")
            continue
        version = str(Changelog(cl.read_text()).version)
        found = sorted(debs_dir(config, release).glob(f"{recipe.package}_{version}_*.deb"))
        if not found or not smoke_passed(found[0]):
            raise InputError(f"{recipe.package} {version} has not passed its smoke test; it is not published",
                             hint=f"stackyard deb --release {release.id} {recipe.name}")
        debs.append(found[0])
    wheels = stage.read_record(debs_dir(config, release) / f"openstack-wheels-{release.id}.json", WheelsDeb)
    if wheels is not None and (debs_dir(config, release) / wheels.file).exists():
        present = {(p.name, p.version) for p in AptRepository(config, runner).list(staging(release))}
        if (wheels.package, wheels.version) not in present:
            debs.append(debs_dir(config, release) / wheels.file)
    return debs
