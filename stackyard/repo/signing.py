"""The repository signing key.

A configured fingerprint must exist in the keyring; otherwise the embedded
default makes an RSA key on first use. The public key is exported next to
the repository (binary for ``signed-by``, and ASCII-armoured).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stackyard.config import RepoSettings
from stackyard.errors import ToolError
from stackyard.runner import RUNNER, Result, Runner

KEY_UID = "stackyard repository signing key <packaging@stackyard.example.org>"
KEYRING_NAME = "stackyard-archive-keyring"


@dataclass(frozen=True)
class SigningKey:
    fingerprint: str
    gnupg_home: Path
    keyring: Path  # binary public key, for signed-by=
    armored: Path


GPG_TIMEOUT = 300.0  # key generation included


def gpg(home: Path, *args: str, check: bool = True, log: Path | None = None, runner: Runner = RUNNER) -> Result:
    return runner.run(["gpg", "--batch", "--no-tty", "--homedir", str(home), *args], check=check, log=log,
                      timeout=GPG_TIMEOUT, what=f"gpg {' '.join(args[:2])} failed")


def _secret_fingerprints(home: Path, log: Path | None, runner: Runner) -> list[str]:
    r = gpg(home, "--with-colons", "--list-secret-keys", check=False, log=log, runner=runner)
    lines = r.stdout.splitlines()
    fprs = []
    for i, line in enumerate(lines):
        if line.startswith("sec:"):
            for follow in lines[i + 1:]:
                if follow.startswith("fpr:"):
                    fprs.append(follow.split(":")[9])
                    break
    return fprs


def ensure_signing_key(repo: RepoSettings, *, log: Path | None = None, runner: Runner = RUNNER) -> SigningKey:
    home = repo.gnupg_home
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    available = _secret_fingerprints(home, log, runner)
    if repo.signing_key:
        matches = [f for f in available if f.endswith(repo.signing_key)]
        if not matches:
            raise ToolError(
                f"signing key {repo.signing_key} has no secret key in {home}",
                hint=f"import it (gpg --homedir {home} --import KEY) or set [repo] signing_key = \"\" to let stackyard make one",
            )
        fingerprint = matches[0]
    elif available:
        fingerprint = available[0]
    else:
        r = gpg(home, "--passphrase", "", "--pinentry-mode", "loopback",
                "--quick-generate-key", KEY_UID, "rsa3072", "sign", "never", check=False, log=log, runner=runner)
        available = _secret_fingerprints(home, log, runner)
        if r.returncode != 0 or not available:
            raise ToolError(
                f"no signing key and none could be made in {home}: {r.stderr.strip()[-500:]}",
                hint="install gnupg, make the directory writable, or configure [repo] signing_key",
            )
        fingerprint = available[0]
    repo.path.mkdir(parents=True, exist_ok=True)
    keyring = repo.path / f"{KEYRING_NAME}.gpg"
    armored = repo.path / f"{KEYRING_NAME}.asc"
    gpg(home, "--yes", "--output", str(keyring), "--export", fingerprint, log=log, runner=runner)  # binary: straight to the file
    armored.write_text(gpg(home, "--armor", "--export", fingerprint, log=log, runner=runner).stdout)
    return SigningKey(fingerprint, home, keyring, armored)
