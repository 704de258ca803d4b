"""Start and stop the Buildbot master and the local worker (``make buildbot-up|buildbot-down``).

    python -m builders.ctl up|down [--config stackyard.toml]

``up`` creates the master directory ([buildbot] basedir) on first use, brings
its database schema up to date (SQLite or PostgreSQL, from db_url), builds
the image of each ``kind = "docker"`` worker that names none (in its engine,
when its inputs changed: builders.latent), starts the master with this
checkout's master.cfg, then creates and starts the worker named ``local`` (if
stackyard.toml declares one) beside it, with this venv's ``stackyard`` on its
PATH. Idempotent; ``down`` stops both (the master stops its latent workers).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from builders.latent import docker_workers, ensure_worker_image
from builders.master import secret_value
from builders.settings import BuildbotSettings, load_config
from stackyard.errors import StackyardError, ToolError
from stackyard.runner import RUNNER, Runner

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOCAL = "local"
PLACEHOLDER = "stackyard-password-placeholder"  # create-worker takes the password on its command line: not the real one


def _env(config_file: Path) -> dict[str, str]:
    """What the runner adds to its clean environment (no PIP_*, PIP_CONFIG_FILE=/dev/null)."""
    return {"STACKYARD_CONFIG": str(config_file), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}


def _log(settings: BuildbotSettings) -> Path:
    return settings.basedir.parent / "buildbot-ctl.log"


def _run(args: list[str], env: dict[str, str], log: Path, ok: tuple[int, ...] = (0,), runner: Runner = RUNNER) -> str:
    return runner.run(args, env=env, log=log, ok=ok, timeout=300, what=f"{Path(args[0]).name} {args[1]}").stdout


def create_worker(wdir: Path, master: str, name: str, password: str, env: dict[str, str], log: Path,
                  runner: Runner = RUNNER) -> None:
    """``buildbot-worker create-worker`` with a placeholder password, then the real one written into buildbot.tac (0600).

    The password never is on a command line; a run that stopped in between is finished by the next one.
    """
    tac = wdir / "buildbot.tac"
    if not tac.exists():
        _run([str(BIN / "buildbot-worker"), "create-worker", "--relocatable", "--umask=0o022", str(wdir), master, name,
              PLACEHOLDER], env, log, runner=runner)
    text = tac.read_text()
    line = f"passwd = {PLACEHOLDER!r}"
    if line not in text:
        raise ToolError(f"{tac}: no {line!r} line to put the worker's password in",
                        hint=f"remove {wdir} and run again (is buildbot-worker's version supported?)")
    tmp = tac.with_name(tac.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text.replace(line, f"passwd = {password!r}"))
    os.replace(tmp, tac)


def needs_password(wdir: Path) -> bool:
    """Whether the worker in ``wdir`` is yet to be created or to get its password."""
    tac = wdir / "buildbot.tac"
    return not tac.exists() or PLACEHOLDER in tac.read_text()


def running(basedir: Path) -> bool:
    """Whether the twistd of ``basedir`` runs; a pid file left by a crash is removed (so start works)."""
    pidfile = basedir / "twistd.pid"
    try:
        stat = Path(f"/proc/{int(pidfile.read_text().strip())}/stat").read_text()
    except (FileNotFoundError, ValueError):
        stat = ""
    if stat and stat.rsplit(")", 1)[1].split()[0] != "Z":  # a killed process nobody reaped yet is no master
        return True
    pidfile.unlink(missing_ok=True)
    return False


def worker_dir(settings: BuildbotSettings, name: str) -> Path:
    return settings.basedir.parent / "buildbot-workers" / name


def up(config_file: Path, *, runner: Runner = RUNNER) -> list[str]:
    config = load_config(config_file)
    settings = config.buildbot
    env = _env(config.file)
    log = _log(settings)
    basedir = settings.basedir
    said = []
    for w in docker_workers(config):  # before the master: it starts containers from these images
        assert w.latent is not None
        tag, built = ensure_worker_image(config, w.latent, runner=runner)
        said.append(f"worker {w.name}: docker latent worker, image {tag} ({'built' if built else 'up to date'})")
    if not (basedir / "buildbot.tac").exists():
        basedir.parent.mkdir(parents=True, exist_ok=True)
        _run([str(BIN / "buildbot"), "create-master", "--quiet", "--relocatable", "--db", settings.db_url,
              "--config", str(ROOT / "master.cfg"), str(basedir)], env, log, runner=runner)
        (basedir / "master.cfg.sample").unlink(missing_ok=True)
    if running(basedir):
        # what 'buildbot reconfig' does, without waiting on the log: it reloads master.cfg (recipes, config)
        os.kill(int((basedir / "twistd.pid").read_text().strip()), signal.SIGHUP)
        said.append(f"master: already running, asked to reload its configuration: {settings.url}")
    else:
        _run([str(BIN / "buildbot"), "upgrade-master", str(basedir)], env, log, runner=runner)
        _run([str(BIN / "buildbot"), "start", str(basedir)], env, log, runner=runner)
        said.append(f"master: {settings.url} (log: {basedir / 'twistd.log'})")
    for w in settings.workers:
        if w.name != LOCAL:
            continue
        wdir = worker_dir(settings, w.name)
        if needs_password(wdir):
            wdir.parent.mkdir(parents=True, exist_ok=True)
            create_worker(wdir, f"{settings.worker_host}:{settings.worker_port}", w.name, secret_value(w.password), env, log,
                          runner=runner)
        if running(wdir):
            said.append(f"worker {w.name}: already running ({wdir})")
            continue
        _run([str(BIN / "buildbot-worker"), "start", str(wdir)], env, log, runner=runner)
        said.append(f"worker {w.name}: {wdir}")
    for u in settings.users:
        said.append(f"web user {u.name}: password in {u.password.describe()}")
    return said


def down(config_file: Path, *, runner: Runner = RUNNER) -> list[str]:
    settings = load_config(config_file).buildbot
    env = _env(config_file.resolve())
    log = _log(settings)
    said = []
    for w in settings.workers:
        wdir = worker_dir(settings, w.name)
        if running(wdir):
            _run([str(BIN / "buildbot-worker"), "stop", str(wdir)], env, log, ok=(0, 1), runner=runner)
            said.append(f"worker {w.name}: stopped")
    if running(settings.basedir):
        _run([str(BIN / "buildbot"), "stop", str(settings.basedir)], env, log, ok=(0, 1), runner=runner)
        said.append("master: stopped")
    return said or ["nothing was running"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m builders.ctl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["up", "down"])
    p.add_argument("--config", default=os.environ.get("STACKYARD_CONFIG", "stackyard.toml"))
    args = p.parse_args(argv)
    try:
        lines = (up if args.action == "up" else down)(Path(args.config).resolve())
    except StackyardError as exc:
        print(f"buildbot {args.action}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
