"""Which key signs the repository: a configured fingerprint must exist; otherwise the first secret key, or a new one."""

from __future__ import annotations

import stat
from typing import Callable

import pytest

from stackyard.config import Config
from stackyard.errors import ToolError
from stackyard.repo.signing import ensure_signing_key
from tests.fake_repo import FPR, SECRET_KEYS, gpg_prefix
from tests.fakes import FakeRunner

OTHER = "FEDCBA9876543210FEDCBA9876543210FEDCBA98"
TWO_KEYS = SECRET_KEYS + f"sec:u:3072:1:FEDCBA98:1700000000:::u:::scESC:::+:::23::0:\nfpr:::::::::{OTHER}:\n"


def test_a_configured_key_is_used_by_its_fingerprint_suffix(make_config: Callable[..., Config]) -> None:
    config = make_config(extra=f'[repo]\nsigning_key = "{OTHER[-16:].lower()}"\n')
    fake = FakeRunner().reply(*gpg_prefix(config), "--with-colons", stdout=TWO_KEYS)
    key = ensure_signing_key(config.repo, runner=fake)
    assert key.fingerprint == OTHER
    assert fake.calls[-1].argv[-2:] == ("--export", OTHER)
    assert stat.S_IMODE(config.repo.gnupg_home.stat().st_mode) == 0o700


def test_a_configured_key_missing_from_the_keyring_is_never_replaced(make_config: Callable[..., Config]) -> None:
    config = make_config(extra=f'[repo]\nsigning_key = "{OTHER}"\n')
    fake = FakeRunner().reply(*gpg_prefix(config), "--with-colons", stdout=SECRET_KEYS)
    with pytest.raises(ToolError, match=f"signing key {OTHER} has no secret key in {config.repo.gnupg_home}") as info:
        ensure_signing_key(config.repo, runner=fake)
    assert "--import" in (info.value.hint or "")
    assert [c.argv[5] for c in fake.calls] == ["--with-colons"]  # no key was generated


def test_without_configuration_the_first_secret_key_signs(config: Config) -> None:
    fake = FakeRunner().reply(*gpg_prefix(config), "--with-colons", stdout=TWO_KEYS)
    assert ensure_signing_key(config.repo, runner=fake).fingerprint == FPR
    assert "--quick-generate-key" not in [a for c in fake.calls for a in c.argv]


def test_a_key_that_cannot_be_made_is_a_tool_error_with_gpgs_reason(config: Config) -> None:
    fake = FakeRunner().reply(*gpg_prefix(config), "--passphrase", returncode=2, stderr="gpg: agent_genkey failed: No pinentry\n")
    with pytest.raises(ToolError, match="no signing key and none could be made in .*: gpg: agent_genkey failed: No pinentry"):
        ensure_signing_key(config.repo, runner=fake)
