"""What operators put on their hosts: apt sources, pins and keyring; hiera data for puppet.

One plan, two renderings. ``apt_plan`` decides which distributions a host
uses and with which priorities: the operator's release for every package of
the repository (990: above Debian's 500, so a same-named Debian package never
wins), and per project a release of its own (995, listed first), with that
other release's distribution configured at 100 so nothing else moves to it.
``apt_files`` renders the plan as files apt honours (deb822 ``.sources``,
``.pref``: apt ignores preferences.d files with a dot in the name unless it
ends in ``.pref``); ``puppet_data`` renders it as hiera data that Debian's
puppetlabs-apt consumes as it is (``apt::sources``, ``apt::pins``) plus the
keyring file and every package at its exact published version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from stackyard.config import Config, Release
from stackyard.errors import InputError
from stackyard.repo.apt import AptRepository, PublishedPackage, final
from stackyard.repo.apt import staging as staging_distribution
from stackyard.repo.signing import KEYRING_NAME
from stackyard.runner import RUNNER, Runner

RELEASE_PRIORITY = 990  # the host's release: above Debian (500), below a forced downgrade (1000)
PROJECT_PRIORITY = 995  # "this project from that release" wins over the host's release
OTHER_PRIORITY = 100  # another release's distribution: installable on request, never an upgrade
KEYRING = f"/usr/share/keyrings/{KEYRING_NAME}.gpg"  # binary, as written by apt-config
KEYRING_ASC = f"/usr/share/keyrings/{KEYRING_NAME}.asc"  # armoured, as written by puppet (apt reads both)


@dataclass(frozen=True)
class AptSource:
    name: str  # stackyard-2025.1: the file name apt sees
    release: Release
    distribution: str


@dataclass(frozen=True)
class AptPin:
    name: str
    packages: str  # "*" or a space-separated list
    distribution: str
    priority: int
    explanation: str


@dataclass(frozen=True)
class AptPlan:
    url: str
    component: str
    origin: str
    sources: tuple[AptSource, ...]
    pins: tuple[AptPin, ...]  # specific pins first
    projects: Mapping[str, Release]  # project -> the release it comes from, where not the host's
    release: Release  # the host's release
    staging: bool
    warnings: tuple[str, ...]


def parse_project_release(config: Config, value: str, flag: str = "--project") -> tuple[str, Release]:
    """``PROJECT=RELEASE`` (the value of ``flag``) where RELEASE is an id, a series or ``<codename>-<id>``."""
    project, sep, where = value.partition("=")
    if not sep or not project or not where:
        raise InputError(f"{flag} {value!r}: expected PROJECT=RELEASE", hint=f"e.g. {flag} keystone=2025.2")
    project = project.removeprefix("venv-")
    match = re.fullmatch(r"([a-z]+)-(\d{4}\.\d+)", where)
    if match and match.group(2) in config.releases:
        codename, release = match.group(1), config.releases[match.group(2)]
        if codename not in config.codenames:
            known = ", ".join(f"[codenames.{c}]" for c in config.codenames)
            raise InputError(f"{flag} {value}: unknown codename {codename!r}",
                             hint=f"{config.file} defines {known}; add [codenames.{codename}] or use one of them")
        if codename != release.codename:
            raise InputError(f"{flag} {value}: release {release.id} is built for {release.codename}, not {codename}",
                             hint=f"use {project}={release.codename}-{release.id}, or change "
                                  f"[releases.\"{release.id}\"] codename in {config.file}")
        return project, release
    return project, config.release(where)


def apt_plan(config: Config, release: Release, *, staging: bool = False,
             projects: Mapping[str, Release] | None = None, url: str | None = None, runner: Runner = RUNNER) -> AptPlan:
    dist = staging_distribution if staging else final
    projects = {p: r for p, r in (projects or {}).items() if r.id != release.id}
    others = sorted({r.id: r for r in projects.values()}.values(), key=lambda r: r.id)
    sources = tuple(AptSource(f"stackyard-{r.id}", r, dist(r)) for r in [release, *others])
    pins = [AptPin(f"stackyard-{p}-{r.id}", f"venv-{p}", dist(r), PROJECT_PRIORITY, f"venv-{p} from OpenStack {r.id}")
            for p, r in sorted(projects.items())]
    pins.append(AptPin(f"stackyard-{release.id}", "*", dist(release), RELEASE_PRIORITY,
                       f"OpenStack {release.id}: every package of the repository"))
    pins += [AptPin(f"stackyard-{r.id}", "*", dist(r), OTHER_PRIORITY, f"OpenStack {r.id}: only the packages pinned above")
             for r in others]
    warnings = []
    repo = AptRepository(config, runner)
    for source in sources:
        published = {p.name for p in repo.list(source.distribution)}
        if not published:
            warnings.append(f"{source.distribution} has no package yet: publish{'' if staging else ' and promote'} "
                            f"first (stackyard publish --release {source.release.id}"
                            + ("" if staging else f"; stackyard promote --release {source.release.id}") + ")")
        elif source.release.id != release.id:
            wanted = {f"venv-{p}" for p, r in projects.items() if r.id == source.release.id}
            for name in sorted(wanted - published):
                warnings.append(f"{name} is not in {source.distribution}: the pin has nothing to take")
    return AptPlan(url or config.repo.url, config.repo.component, config.repo.origin, sources, tuple(pins),
                   dict(projects), release, staging, tuple(warnings))


def _pin_text(plan: AptPlan, pin: AptPin) -> str:
    return (f"Explanation: stackyard: {pin.explanation}\nPackage: {pin.packages}\n"
            f"Pin: release o={plan.origin},n={pin.distribution}\nPin-Priority: {pin.priority}\n")


def write_apt_files(files: dict[str, bytes], root: Path) -> list[Path]:
    """``apt_files`` under ``root`` (``/`` configures this host), world-readable as apt wants them; an empty
    content (no key exported yet) is skipped."""
    written = []
    for rel, content in files.items():
        if content:
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            target.chmod(0o644)
            written.append(target)
    return written


def apt_files(plan: AptPlan, keyring: bytes) -> dict[str, bytes]:
    """Path (relative to /) -> content: the sources, the pins, the keyring they name."""
    files = {
        f"etc/apt/sources.list.d/{s.name}.sources": (
            f"Types: deb\nURIs: {plan.url}\nSuites: {s.distribution}\nComponents: {plan.component}\n"
            f"Signed-By: {KEYRING}\n").encode()
        for s in plan.sources
    }
    files["etc/apt/preferences.d/stackyard.pref"] = "\n".join(_pin_text(plan, p) for p in plan.pins).encode()
    files[KEYRING.lstrip("/")] = keyring
    return files


def packages_of(config: Config, plan: AptPlan, *, runner: Runner = RUNNER) -> dict[str, str]:
    """Every package of the plan's release at its published version, overridden projects from theirs."""
    repo = AptRepository(config, runner)

    def listed(release: Release) -> list[PublishedPackage]:
        return repo.list(staging_distribution(release) if plan.staging else final(release))

    packages = {p.name: p.version for p in listed(plan.release)}
    for project, release in sorted(plan.projects.items()):
        theirs = {p.name: p.version for p in listed(release)}
        name = f"venv-{project}"
        if name not in theirs:
            raise InputError(f"{name} is not published in {final(release)}",
                             hint=f"stackyard publish --release {release.id} {project} && "
                                  f"stackyard promote --release {release.id} {project}")
        packages[name] = theirs[name]
    return dict(sorted(packages.items()))


def puppet_data(config: Config, plan: AptPlan, armored_key: str, *, runner: Runner = RUNNER) -> tuple[str, int]:
    """Hiera YAML for ``include stackyard`` (puppet/stackyard): ``apt::sources``, ``apt::pins`` for
    puppetlabs-apt, ``stackyard::keyrings`` and ``stackyard::packages`` (and how many packages)."""
    packages = packages_of(config, plan, runner=runner)
    if not packages:
        dist = plan.sources[0].distribution
        raise InputError(f"nothing is published in {dist} for {plan.release.id}",
                         hint=(f"stackyard publish --release {plan.release.id}" if plan.staging
                               else f"stackyard promote --release {plan.release.id}"))
    sources = {s.name: {"location": plan.url, "release": s.distribution, "repos": plan.component, "keyring": KEYRING_ASC,
                        "comment": f"stackyard: OpenStack {s.release.id}"}
               for s in plan.sources}
    pins: dict[str, dict[str, Any]] = {}
    for order, pin in enumerate(plan.pins, start=10):
        pins[pin.name] = {"packages": pin.packages, "originator": plan.origin, "codename": pin.distribution,
                          "priority": pin.priority, "order": order, "explanation": f"stackyard: {pin.explanation}"}
    wheels = {n: v for n, v in packages.items() if n.startswith("openstack-wheels-")}
    data = {
        "stackyard::release": plan.release.id,
        "stackyard::apt_distribution": plan.sources[0].distribution,
        "stackyard::projects": {p: r.id for p, r in sorted(plan.projects.items())},
        "stackyard::packages": {n: v for n, v in packages.items() if n not in wheels},
        "stackyard::wheels_package": wheels,
        "stackyard::keyrings": {KEYRING_ASC: {"ensure": "file", "content": armored_key, "mode": "0644",
                                              "owner": "root", "group": "root"}},
        "apt::sources": sources,
        "apt::pins": pins,
    }
    return "---\n" + yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, width=200), len(packages)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the armoured key) as YAML literal blocks, readable in a diff."""


_BlockDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))
