"""One way to run an external tool, for every stage.

``RUNNER.run([...], log=..., what=...)`` runs a program

- in a clean environment: the caller's environment without any ``PIP_*``
  variable, plus ``PIP_CONFIG_FILE=/dev/null``, ``LC_ALL=C.UTF-8``,
  ``TZ=UTC``, plus what the caller adds (a ``None`` value removes a variable);
  ``inherit_env=False`` starts from nothing instead (a chroot);
- with stdin closed unless the caller gives ``stdin`` text (how secrets reach a
  tool: never on its command line);
- bounded by ``timeout`` seconds: then its whole process group is killed;
- appending the command line (values in ``secrets`` masked), its output and
  its exit status to the step's ``log``; with ``stream=True`` the output goes
  to the log as it is written (long builds) instead of being captured;

and fails with the project's own error (``ToolError``, exit 6, or the
``error`` class the caller picks) naming the tool, the exit status, the log
and the tail of the output; a missing program is a ``ToolError`` naming the
Debian package that provides it. Nothing escapes as ``CalledProcessError``.

Code that runs tools takes a ``runner`` (default ``RUNNER``); unit tests pass
a fake whose ``spawn`` records the call and returns a canned ``Completed``.
Models: cibuildwheel's ``util.cmd.call``, pypa/build's ``run_subprocess``.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Collection, Mapping, Sequence

from stackyard.errors import StackyardError, ToolError

DEFAULT_TIMEOUT = 600.0  # seconds; long steps (builds, mmdebstrap, apt-get install) pass their own
TAIL_LINES = 20
TAIL_CHARS = 2000
MASK = "********"
FIXED_ENV = {"PIP_CONFIG_FILE": os.devnull, "LC_ALL": "C.UTF-8", "TZ": "UTC"}
DROPPED_ENV = ("LANGUAGE",)  # would override LC_ALL for gettext messages

# program -> the Debian package that provides it (the hint when it is missing)
PACKAGES = {
    "apt-ftparchive": "apt-utils",
    "apt-get": "apt",
    "chroot": "coreutils",
    "dh_virtualenv": "dh-virtualenv",
    "docker-registry": "docker-registry",
    "dockerd": "docker.io",
    "dpkg-buildpackage": "dpkg-dev",
    "dpkg-deb": "dpkg",
    "dpkg-query": "dpkg",
    "dpkg-scanpackages": "dpkg-dev",
    "git": "git",
    "gpg": "gnupg",
    "htpasswd": "apache2-utils",
    "lintian": "lintian",
    "mmdebstrap": "mmdebstrap",
    "mount": "mount",
    "openssl": "openssl",
    "reprepro": "reprepro",
    "skopeo": "skopeo",
    "umount": "mount",
}

Env = Mapping[str, "str | None"]


@dataclass(frozen=True)
class Result:
    """A finished command (its output is empty when it was streamed to the log)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass(frozen=True)
class Call:
    """What the runner hands to the operating system (and what a fake records)."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path | None
    stdin: str | None
    timeout: float


@dataclass(frozen=True)
class Completed:
    """What ``spawn`` reports: the exit status and the captured output."""

    returncode: int
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False


def clean_env(extra: Env | None = None, *, inherit: bool = True, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) without PIP_*, plus the fixed settings, plus ``extra``."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith("PIP_") and k not in DROPPED_ENV} if inherit else {}
    env.update(FIXED_ENV)
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def mask(text: str, secrets: Collection[str]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def command_line(argv: Sequence[str], env: Env | None = None, cwd: Path | None = None) -> str:
    """The shell line that reproduces the call (the variables the caller added, then the command)."""
    env = env or {}
    unset = [f"-u {key}" for key, value in env.items() if value is None]
    parts = [f"cd {shlex.quote(str(cwd))} &&"] if cwd is not None else []
    parts += ["env", *unset] if unset else []
    parts += [f"{key}={shlex.quote(value)}" for key, value in env.items() if value is not None]
    return " ".join([*parts, shlex.join(argv)])


def tail(text: str, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    kept = text.strip("\n").splitlines()[-lines:]
    out = "\n".join(kept)
    return out[-chars:]


def _kill(proc: subprocess.Popen[str]) -> None:
    """Kill the command and everything it started (it leads its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.kill()


class Runner:
    """How every stage runs a tool: ``run`` (the module docstring) over ``spawn``, the only part that starts a
    process. Code that runs tools takes a ``Runner``; unit tests pass one whose ``spawn`` answers instead."""

    def spawn(self, call: Call, sink: IO[str] | None) -> Completed:
        """Run ``call``; output to ``sink`` (merged) if given, else captured. Raises OSError if it cannot start."""
        raise NotImplementedError

    def start(self, cmd: Sequence[str | os.PathLike[str]], log: Path, *, env: Env | None = None,
              what: str | None = None) -> subprocess.Popen[bytes]:
        """Start a daemon in its own session, its output appended to ``log`` after the command line, with the
        clean environment; the caller watches and stops it. A missing tool is a ToolError naming its package."""
        argv = tuple(os.fspath(a) for a in cmd)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as handle:
            handle.write(f"$ {command_line(argv, env)}\n".encode())
            handle.flush()
            try:
                return subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=clean_env(env), start_new_session=True)
            except FileNotFoundError:
                tool = Path(argv[0]).name
                package = PACKAGES.get(tool)
                raise ToolError(f"{tool} is not installed" + (f" (needed to {what})" if what else ""),
                                hint=f"apt-get install {package} (make deps does)" if package else "make deps installs it") from None

    def run(
        self,
        cmd: Sequence[str | os.PathLike[str]],
        *,
        log: Path | None = None,
        env: Env | None = None,
        inherit_env: bool = True,
        cwd: Path | None = None,
        stdin: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        check: bool = True,
        ok: Collection[int] = (0,),
        stream: bool = False,
        secrets: Collection[str] = (),
        what: str | None = None,
        hint: str | None = None,
        package: str | None = None,
        error: type[StackyardError] = ToolError,
    ) -> Result:
        """Run ``cmd``; see the module docstring. ``ok``: exit statuses that are not failures (with ``check``)."""
        argv = tuple(os.fspath(a) for a in cmd)
        if not argv:
            raise ValueError("an empty command")
        if stream and log is None:
            raise ValueError("stream=True needs a log to stream to")
        tool = Path(argv[0]).name
        shown = mask(command_line(argv, env, cwd), secrets)
        call = Call(argv, clean_env(env, inherit=inherit_env), cwd, stdin, timeout)
        where = f" (log: {log})" if log is not None else ""
        handle: IO[str] | None = None
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            handle = log.open("a", encoding="utf-8", errors="replace")
            handle.write(f"$ {shown}\n")
            handle.flush()
        started = time.monotonic()
        try:
            start = handle.tell() if handle is not None else 0
            try:
                done = self.spawn(call, handle if stream else None)
            except OSError as exc:
                if handle is not None:
                    handle.write(f"[could not start: {exc.strerror or exc}]\n")
                if cwd is not None and not Path(cwd).is_dir():
                    raise ToolError(f"{what or tool}: the working directory {cwd} does not exist") from None
                if isinstance(exc, FileNotFoundError):
                    package = package or PACKAGES.get(tool)
                    raise ToolError(
                        f"{tool} is not installed" + (f" (needed to {what})" if what else ""),
                        hint=f"apt-get install {package} (make deps does)" if package else hint,
                    ) from None
                raise ToolError(f"{tool} could not be started: {exc.strerror or exc}", hint=hint) from None
            seconds = time.monotonic() - started
            if handle is not None:
                if stream:
                    handle.flush()
                    with log.open(encoding="utf-8", errors="replace") as reread:  # type: ignore[union-attr]
                        reread.seek(start)
                        output = reread.read()
                else:
                    output = done.stdout + done.stderr
                    if output:
                        handle.write(mask(output, secrets) + ("" if output.endswith("\n") else "\n"))
                status = f"timed out after {timeout:g} s, killed" if done.timed_out else f"exit {done.returncode}"
                handle.write(f"[{status}; {seconds:.1f} s]\n")
            else:
                output = done.stdout + done.stderr
        except KeyboardInterrupt:
            if handle is not None:
                handle.write("[interrupted]\n")
            raise
        finally:
            if handle is not None:
                handle.close()
        result = Result(argv, done.returncode, done.stdout, done.stderr, seconds)
        shown_tail = mask(tail(output), secrets)
        detail = f"\n{shown_tail}" if shown_tail else ""
        headline = f"{what}: " if what else ""
        if done.timed_out:
            raise error(f"{headline}{tool} timed out after {timeout:g} s and was killed{where}{detail}", hint=hint)
        if check and done.returncode not in ok:
            raise error(f"{headline}{tool} exited {done.returncode}{where}{detail}", hint=hint)
        return result


class SubprocessRunner(Runner):
    """The real runner: its ``spawn`` starts the process."""

    def spawn(self, call: Call, sink: IO[str] | None) -> Completed:
        """Run ``call``; output to ``sink`` (merged) if given, else captured. Raises OSError if it cannot start."""
        proc = subprocess.Popen(
            call.argv, cwd=call.cwd, env=dict(call.env),
            stdin=subprocess.PIPE if call.stdin is not None else subprocess.DEVNULL,
            stdout=sink if sink is not None else subprocess.PIPE,
            stderr=subprocess.STDOUT if sink is not None else subprocess.PIPE,
            text=True, encoding="utf-8", errors="replace", start_new_session=True,
        )
        try:
            out, err = proc.communicate(call.stdin, timeout=call.timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            try:
                out, err = proc.communicate(timeout=10)  # what it wrote before it was killed
            except subprocess.TimeoutExpired:  # a descendant left the group and holds the pipe
                proc.kill()
                proc.wait()
                out, err = "", ""
            return Completed(proc.returncode, out or "", err or "", timed_out=True)
        except BaseException:  # KeyboardInterrupt: the child is in its own session, so stop it here
            _kill(proc)
            proc.wait()
            raise
        return Completed(proc.returncode, out or "", err or "")


RUNNER: Runner = SubprocessRunner()
