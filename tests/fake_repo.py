"""A FakeRunner that answers like a reprepro base with a signing key (for unit tests: no process runs).

    fake = published(config, {"bookworm-2025.1": [("venv-keystone", "27.0.2-2025.1.1")]})
    AptRepository(config, fake).list("bookworm-2025.1")   # [PublishedPackage(... "venv-keystone" ...)]

gpg lists one secret key (``FPR``) and exports ``ARMORED``; ``reprepro list DIST`` prints the
given packages in reprepro's format; any other reprepro call succeeds silently. The repository's
``db`` directory is created, as after a first publish (``AptRepository.list`` reads nothing without it).
"""

from __future__ import annotations

from typing import Iterable, Mapping

from stackyard.config import Config
from stackyard.repo.apt import LIST_FORMAT
from tests.fakes import FakeRunner

FPR = "0123456789ABCDEF0123456789ABCDEF01234567"
SECRET_KEYS = f"sec:u:3072:1:89ABCDEF01234567:1700000000:::u:::scESC:::+:::23::0:\nfpr:::::::::{FPR}:\n"
ARMORED = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQGNBGZ\n-----END PGP PUBLIC KEY BLOCK-----\n"


def gpg_prefix(config: Config) -> tuple[str, ...]:
    return ("gpg", "--batch", "--no-tty", "--homedir", str(config.repo.gnupg_home))


def with_key(config: Config, fake: FakeRunner | None = None) -> FakeRunner:
    fake = fake or FakeRunner()
    fake.reply(*gpg_prefix(config), "--with-colons", stdout=SECRET_KEYS)
    fake.reply(*gpg_prefix(config), "--armor", stdout=ARMORED)
    return fake


def listing(distribution: str, packages: Iterable[tuple[str, str]], architecture: str = "amd64") -> str:
    return "".join(f"{distribution}|main|{architecture}: {name} {version} pool/main/{name[0]}/{name}/{name}_{version}_{architecture}.deb\n"
                   for name, version in packages)


def published(config: Config, distributions: Mapping[str, Iterable[tuple[str, str]]],
              fake: FakeRunner | None = None) -> FakeRunner:
    fake = with_key(config, fake)
    for distribution, packages in distributions.items():
        fake.reply("reprepro", "--basedir", str(config.repo.path), "--silent", f"--list-format={LIST_FORMAT}", "list", distribution,
                   stdout=listing(distribution, packages, config.architecture))
    (config.repo.path / "db").mkdir(parents=True, exist_ok=True)
    return fake
