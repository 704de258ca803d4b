"""A throwaway Debian machine under systemd: unpacked per verify, booted with systemd-nspawn.

``systemd-nspawn --boot --register=no --keep-unit --private-network -D ROOT``:
no machined or dbus on the host (registration off), its own loopback (the
services' ports never meet the host's). Commands enter it with
``nsenter -t <leader> -a`` (the leader: the container's PID 1, the nspawn
process's child). Everything goes through the runner.

The nspawn process and its leader are recorded in ``container.json`` beside
the root as soon as they exist: a verify killed with SIGKILL leaves them
running, and the next verify (or ``stackyard verify --clean``) kills them by
those pids, after checking that they are still this root's, and unmounts
whatever is left under the directory.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from stackyard.errors import ToolError
from stackyard.runner import RUNNER, Result, Runner

ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
       "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root", "TERM": "dumb"}
BOOT_TIMEOUT = 120.0
LIFETIME = 3600.0  # the nspawn process is killed by the runner after this, whatever happens
STATE = "container.json"
TMPFS_SIZE = "12g"  # an upper bound: a tmpfs holds what is written (about 2.5 GiB for the default projects)
APT_ARCHIVES = "/var/cache/apt/archives"


@dataclass(frozen=True)
class Pids:
    nspawn: int
    leader: int


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode(errors="replace").split("\0")
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _starttime(pid: int) -> int:
    """When the process started (clock ticks after boot): a pid and its start time name one process."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return -1


def _pid_ns(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""


def _leader_of(nspawn: int) -> int:
    """The container's PID 1: the nspawn process's child in a pid namespace of its own."""
    mine = _pid_ns(nspawn)
    for child in _children(nspawn):
        ns = _pid_ns(child)
        if ns and ns != mine:
            return child
    return 0


def nspawn_processes(root: Path) -> list[int]:
    """The systemd-nspawn processes running ``root`` (found by their command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = _cmdline(int(entry.name))
        if argv and Path(argv[0]).name == "systemd-nspawn" and str(root) in argv:
            found.append(int(entry.name))
    return found


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below ``directory`` in this mount namespace, deepest first."""
    prefix = str(directory)
    points = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(set(points), key=len, reverse=True)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def clean_leftovers(workdir: Path, log: Path, *, runner: Runner = RUNNER) -> list[str]:
    """Kill a container a killed verify left running in ``workdir``, unmount, remove its root.

    Returns what was done (for the report). Only processes that are provably
    this root's are killed: the recorded leader and nspawn if they are the very
    processes recorded (pid and start time), any other nspawn whose command
    line names this root, and its container's PID 1."""
    root = workdir / "root"
    done: list[str] = []
    state = workdir / STATE
    victims: list[int] = []
    if state.exists():
        try:
            data = json.loads(state.read_text())
        except ValueError:
            data = {}
        for role in ("leader", "nspawn"):  # SIGKILL to a pid namespace's init kills everything in it
            pid, since = int(data.get(role) or 0), int(data.get(f"{role}_starttime") or -2)
            if pid and _alive(pid) and _starttime(pid) == since:
                victims.append(pid)
    for pid in nspawn_processes(root):
        if pid not in victims and _alive(pid):
            leader = _leader_of(pid)
            victims += [leader, pid] if leader else [pid]
    for pid in victims:
        _kill(pid)
    if victims:
        done.append(f"killed a leftover container (pids {', '.join(map(str, victims))})")
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in victims) and time.monotonic() < deadline:
            time.sleep(0.1)
    for point in mounts_under(workdir):  # the root's tmpfs (nothing else is mounted on the host's side)
        runner.run(["umount", "--lazy", point], log=log, timeout=60, what=f"unmounting {point} (left by a verify)")
        done.append(f"unmounted {point}")
    still = mounts_under(workdir)
    if still:  # never delete through a mount
        raise ToolError(f"could not unmount {', '.join(still)}", hint=f"umount them, then rm -rf {root}")
    if root.exists():
        runner.run(["rm", "-rf", "--one-file-system", str(root)], log=log, timeout=600, what=f"removing {root}")
        done.append(f"removed {root}")
    state.unlink(missing_ok=True)
    return done


class Container:
    """The root under ``workdir/root`` and, once booted, its systemd."""

    def __init__(self, workdir: Path, machine: str, log: Path, *, runner: Runner = RUNNER,
                 binds: tuple[tuple[Path, str], ...] = ()) -> None:
        self.workdir, self.machine, self.log, self.runner = workdir, machine, log, runner
        self.root = workdir / "root"
        self.binds = binds  # (host path, path in the container), read-write
        self.pids: Pids | None = None
        self._thread: threading.Thread | None = None
        self._exit: list[Result | BaseException] = []
        self.secrets: set[str] = set()

    # -- before boot ------------------------------------------------------
    def unpack(self, tarball: Path) -> None:
        """The cached tarball, unpacked on a tmpfs at ``root``: fast to write (dpkg, byte-compiling) and gone
        with one umount. A failed verify leaves it mounted for inspection until the next one (or --clean)."""
        self.root.mkdir(parents=True)
        self.runner.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0755", "stackyard-verify",
                         str(self.root)], log=self.log, timeout=60, what=f"mounting a tmpfs at {self.root}")
        self.runner.run(["tar", "-xf", str(tarball), "-C", str(self.root), "--numeric-owner"], log=self.log,
                        timeout=600, what=f"unpacking {tarball.name}")
        (self.root / "etc/hostname").write_text(self.machine + "\n")
        (self.root / "etc/hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{self.machine}\n"
                                             "::1\tlocalhost ip6-localhost ip6-loopback\n")
        (self.root / "var/log/journal").mkdir(parents=True, exist_ok=True)  # persistent: left for inspection

    def _bind_args(self) -> list[str]:
        return [f"--bind={host}:{inside}" for host, inside in self.binds]

    def run_once(self, command: str, *, timeout: float, what: str) -> Result:
        """Run ``command`` in the root with the host's network (not booted): apt's downloads."""
        return self.runner.run(
            ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", f"--machine={self.machine}",
             "--resolv-conf=copy-host", "--timezone=off", "--console=pipe", *self._bind_args(),
             *(f"--setenv={k}={v}" for k, v in ENV.items() if k != "PATH"),
             "-D", str(self.root), "/bin/sh", "-c", command],
            log=self.log, timeout=timeout, what=what, package="systemd-container")

    # -- boot ---------------------------------------------------------------
    def boot(self, console: Path) -> float:
        """Boot systemd; returns the seconds until ``is-system-running`` said running (or degraded)."""
        started = time.monotonic()
        argv = ["systemd-nspawn", "--boot", "--register=no", "--keep-unit", "--private-network", "--quiet",
                f"--machine={self.machine}", "--resolv-conf=off", "--timezone=off", "--link-journal=no",
                *self._bind_args(), "-D", str(self.root)]

        def serve() -> None:
            try:
                self._exit.append(self.runner.run(argv, log=console, stream=True, check=False, timeout=LIFETIME,
                                                  package="systemd-container"))
            except BaseException as exc:  # noqa: BLE001 - reported by wait_booted
                self._exit.append(exc)

        self._thread = threading.Thread(target=serve, name=f"nspawn-{self.machine}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        nspawn = leader = 0
        while time.monotonic() < deadline and not self._exit:
            if not nspawn:
                found = nspawn_processes(self.root)
                nspawn = found[0] if found else 0
            if nspawn:
                leader = _leader_of(nspawn)
                if leader:
                    break
            time.sleep(0.05)
        if not leader:
            raise ToolError(f"systemd-nspawn did not start the container {self.machine}",
                            hint=f"see {console}" + (f": {self._exit[0]}" if self._exit else ""))
        self.pids = Pids(nspawn, leader)
        (self.workdir / STATE).write_text(json.dumps({
            "nspawn": nspawn, "nspawn_starttime": _starttime(nspawn), "leader": leader,
            "leader_starttime": _starttime(leader), "root": str(self.root), "machine": self.machine,
            "started": time.time()}))
        deadline = time.monotonic() + BOOT_TIMEOUT
        while True:  # "offline" until PID 1 is systemd and its bus is up; then --wait waits for the boot
            r = self.run("systemctl is-system-running --wait", check=False, timeout=BOOT_TIMEOUT, what="booting")
            state = r.stdout.strip()
            if state not in ("", "offline") or time.monotonic() > deadline or not _alive(leader):
                break
            time.sleep(0.1)
        if state not in ("running", "degraded"):
            raise ToolError(f"the container did not boot: systemctl is-system-running said {state!r}",
                            hint=f"see {console}")
        return time.monotonic() - started

    def run(self, command: str, *, check: bool = True, timeout: float = 600.0, stdin: str | None = None,
            what: str | None = None, user: str | None = None) -> Result:
        """``command`` (sh) in the booted container, as root or as ``user`` (runuser)."""
        if self.pids is None:
            raise ToolError("the container is not running")
        if user:
            command = f"cd / && runuser -u {user} -- /bin/sh -c {shlex.quote(command)}"
        return self.runner.run(["nsenter", "-t", str(self.pids.leader), "-a", "/bin/sh", "-c", command],
                               env=ENV, inherit_env=False, log=self.log, check=check, timeout=timeout, stdin=stdin,
                               secrets=self.secrets, what=what or f"in the container: {command[:200]!r}")

    def write(self, path: str, content: str, *, owner: str = "root", group: str = "root", mode: str = "0644") -> None:
        """A file in the container, written from inside (no host path is followed)."""
        self.run(f"mkdir -p {shlex.quote(os.path.dirname(path))} && "
                 f"install -m {mode} -o {owner} -g {group} /dev/stdin {shlex.quote(path)}",
                 stdin=content, timeout=60, what=f"writing {path}")

    def unit_state(self, unit: str) -> dict[str, str]:
        r = self.run(f"systemctl show --property=ActiveState,SubState,Result,NRestarts,ExecMainStatus {unit}",
                     check=False, timeout=60)
        return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)

    def journal(self, unit: str | None = None, lines: int = 40) -> str:
        selector = f"-u {shlex.quote(unit)}" if unit else ""
        r = self.run(f"journalctl --no-pager --quiet -o short-precise -n {lines} {selector}", check=False, timeout=60)
        return r.stdout.strip()

    # -- teardown -------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.pids is not None and _alive(self.pids.leader)

    def stop(self) -> None:
        """Kill the machine (SIGKILL to its PID 1 ends its whole pid namespace) and wait for nspawn."""
        if self.pids is not None:
            _kill(self.pids.leader)
        else:  # it never got as far as recording a leader: the container's PID 1 first, nspawn does not take it along
            for pid in nspawn_processes(self.root):
                leader = _leader_of(pid)
                if leader:
                    _kill(leader)
                _kill(pid)
        if self._thread is not None:
            self._thread.join(timeout=30)
            if self._thread.is_alive() and self.pids is not None:
                _kill(self.pids.nspawn)
                self._thread.join(timeout=10)
        (self.workdir / STATE).unlink(missing_ok=True)

    def remove(self) -> None:
        """Unmount the root's tmpfs (everything in it goes) and remove the mount point."""
        for point in mounts_under(self.workdir):
            self.runner.run(["umount", point], log=self.log, timeout=120, what=f"unmounting {point}")
        if self.root.exists():
            self.runner.run(["rm", "-rf", "--one-file-system", str(self.root)], log=self.log, timeout=600,
                            what=f"removing {self.root}")
