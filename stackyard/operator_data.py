"""What operators copy into their hosts: apt sources and pin, hiera data."""

from __future__ import annotations

import yaml

from stackyard.apt_repo import AptRepository, final
from stackyard.apt_repo import staging as staging_distribution
from stackyard.config import Config, Release
from stackyard.signing import KEYRING_NAME


def apt_config(config: Config, release: Release, *, staging: bool = False) -> str:
    dist = staging_distribution(release) if staging else final(release)
    keyring = f"/usr/share/keyrings/{KEYRING_NAME}.gpg"
    return (
        f"# /etc/apt/sources.list.d/stackyard-{release.id}.sources\n"
        f"# key: install {config.repo.url}/{KEYRING_NAME}.gpg as {keyring}\n"
        "Types: deb\n"
        f"URIs: {config.repo.url}\n"
        f"Suites: {dist}\n"
        f"Components: {config.repo.component}\n"
        f"Signed-By: {keyring}\n"
        "\n"
        f"# /etc/apt/preferences.d/stackyard-{release.id}\n"
        "Package: *\n"
        f"Pin: release o={config.repo.origin},n={dist}\n"
        "Pin-Priority: 990\n"
    )


def puppet_data(config: Config, release: Release) -> tuple[str, int]:
    """Hiera: every published package of the release at its exact version (and how many)."""
    published = AptRepository(config).list(final(release))
    packages = {p.name: p.version for p in sorted(published, key=lambda p: p.name)}
    data = {
        "stackyard::release": release.id,
        "stackyard::apt_distribution": final(release),
        "stackyard::packages": packages,
    }
    return "---\n" + yaml.safe_dump(data, sort_keys=True, default_flow_style=False), len(packages)

