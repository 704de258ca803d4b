"""Start and stop the Buildbot master and the local worker (``make buildbot-up|buildbot-down``).

    python -m builders.ctl up|down [--config stackyard.toml]
    python -m builders.ctl demo --release R PROJECT... [--config stackyard.toml]

``up`` creates the master directory ([buildbot] basedir) on first use, brings
its database schema up to date (SQLite or PostgreSQL, from db_url), builds
the image of each ``kind = "docker"`` worker that names none (in its engine,
when its inputs changed: builders.latent), starts the master with this
checkout's master.cfg, then creates and starts the worker named ``local`` (if
stackyard.toml declares one) beside it, with this venv's ``stackyard`` on its
PATH. Idempotent; ``down`` stops both (the master stops its latent workers).

``demo`` (``make demo``, after ``make up``) runs the release's pipeline as
Buildbot builds: it logs in to the REST API as the first web user, forces
``wheels-R`` (the committed pins: no upper-constraints refresh; ``rebuild``
the projects named, as their pins did not move), which triggers
``<project>-R`` (lock, wheels, deb, lintian, smoke test, publish, image) and
then ``promote-R`` (verify, promote); it prints a line per build started,
step finished and build finished, and fails (exit 5) naming the build, the
step and its URL when one fails.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import requests

from builders.latent import docker_workers, ensure_worker_image
from builders.master import secret_value
from builders.plan import REBUILD, REQUIREMENTS_UPDATE, force_scheduler_name
from builders.settings import BuildbotSettings, load_config
from stackyard.errors import BuildError, FetchError, InputError, StackyardError, ToolError, exit_code
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
    for name, password in settings.users.items():
        said.append(f"web user {name}: password in {password.describe()}")
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


# -- make demo: the pipeline as Buildbot builds -------------------------------------------------------------

RESULTS = {0: "success", 1: "warnings", 2: "failure", 3: "skipped", 4: "exception", 5: "retry", 6: "cancelled"}
GREEN = (0, 1, 3)  # success, warnings (lintian), skipped
BUILDBOT_STEPS = ("worker_preparation", "locks_acquire")  # Buildbot's own, in every build: not news
RETRY = 5  # the worker was lost: Buildbot requeues the request, a later build of the same builder is followed too


class Rest:
    """Buildbot's REST API (/api/v2) of the master of ``settings``, logged in as its first web user."""

    def __init__(self, settings: BuildbotSettings, timeout: float = 30) -> None:
        self.url = settings.url
        self.http = requests.Session()
        self.timeout = timeout
        user, password = next(iter(settings.users.items()))
        try:
            r = self.http.get(self.url + "auth/login", auth=(user, secret_value(password)), timeout=timeout)
        except requests.RequestException as exc:
            raise FetchError(f"the Buildbot master at {self.url} does not answer ({type(exc).__name__})",
                             hint="'make up' starts it (see var/buildbot/twistd.log)") from None
        if r.status_code != 200:
            raise InputError(f"{self.url}auth/login refused user {user!r} (HTTP {r.status_code})",
                             hint=f"the password is in {password.describe()}")

    def get(self, path: str, **params: Any) -> Any:
        try:
            r = self.http.get(self.url + "api/v2/" + path, params=params, timeout=self.timeout)
            r.raise_for_status()
        except requests.RequestException as exc:
            raise FetchError(f"{self.url}api/v2/{path}: {exc}", hint="is the master running? (make up)") from None
        return r.json()

    def force(self, scheduler: str, builderid: int, **properties: Any) -> int:
        """Force ``scheduler`` for ``builderid``: the buildset's id."""
        body = {"jsonrpc": "2.0", "method": "force", "id": 1,
                "params": {"builderid": str(builderid), "reason": "make demo", **properties}}
        try:
            r = self.http.post(self.url + f"api/v2/forceschedulers/{scheduler}", json=body, timeout=self.timeout)
            answer = r.json()
        except (requests.RequestException, ValueError) as exc:
            raise FetchError(f"forcing {scheduler} at {self.url}: {exc}", hint="is the master running? (make up)") from None
        if "error" in answer or r.status_code != 200:
            raise InputError(f"forcing {scheduler} at {self.url} was refused: {answer.get('error', r.text)}",
                             hint="check the release and projects against the builders of the web UI")
        return int(answer["result"][0])


def build_line(name: str, build: dict[str, Any]) -> str:
    took = (build.get("complete_at") or time.time()) - (build.get("started_at") or time.time())
    return f"{name} #{build['number']}: {RESULTS.get(build['results'], 'unknown')} in {took:.0f} s"


def step_line(name: str, build: dict[str, Any], step: dict[str, Any]) -> str:
    took = (step.get("complete_at") or 0) - (step.get("started_at") or step.get("complete_at") or 0)
    result = RESULTS.get(step["results"], "unknown")
    return f"  {name} #{build['number']} {step['name']}: {result} ({took:.0f} s) {step.get('state_string', '')}".rstrip()


def follow(api: Rest, builders: dict[int, str], after: int, root: str, say: Callable[[str], None], *,
           timeout: float, poll: float = 3.0) -> list[tuple[str, dict[str, Any]]]:
    """Print each build with an id above ``after`` as it starts, its steps as they finish, and the build as it
    ends, until the ``root`` builder's build has finished (it waits for the builds it triggers): every build seen."""
    seen: dict[int, dict[str, Any]] = {}
    said_steps: set[int] = set()
    finished: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        builds = api.get("builds", buildid__gt=after, order="buildid")["builds"]
        # what happened since the last poll, in time order; timestamps are whole seconds, so within one second by
        # build id (a build of the chain finished before the next started), a build's start, steps, end in that
        # order, and the root's end last (it waits for the builds it triggered)
        news: list[tuple[float, int, int, int, str]] = []
        for build in builds:
            bid, name = build["buildid"], builders.get(build["builderid"], str(build["builderid"]))
            if bid not in seen:
                news.append((build.get("started_at") or 0, bid, 0, len(news), f"{name} #{build['number']}: started"))
            seen[bid] = build
            if bid in finished:
                continue
            for step in api.get(f"builds/{bid}/steps")["steps"]:
                if step["complete"] and step["stepid"] not in said_steps and step["name"] not in BUILDBOT_STEPS:
                    said_steps.add(step["stepid"])
                    if not step.get("hidden"):
                        news.append((step.get("complete_at") or 0, bid, 1, len(news), step_line(name, build, step)))
            if build["complete"]:
                finished.add(bid)
                news.append((float("inf") if name == root else build.get("complete_at") or 0, bid, 2, len(news),
                             build_line(name, build)))
        for *_key, line in sorted(news):
            say(line)
        roots = [b for b in seen.values() if builders.get(b["builderid"]) == root]
        if roots and all(b["complete"] for b in seen.values()) and roots[-1]["results"] != RETRY:  # a retry is built again
            return [(builders.get(b["builderid"], ""), b) for b in sorted(seen.values(), key=lambda b: b["buildid"])]
        if time.monotonic() > deadline:
            raise BuildError(f"the builds did not finish within {timeout:.0f} s", hint=f"see {api.url}")
        time.sleep(poll)


def wait_for_workers(api: Rest, timeout: float) -> None:
    """Until a worker is connected (the local one 'make up' started) or none could be (latent workers only)."""
    deadline = time.monotonic() + timeout
    while True:
        workers = api.get("workers")["workers"]
        if any(w["connected_to"] for w in workers):
            return
        if time.monotonic() > deadline:
            raise ToolError(f"no worker is connected to {api.url} after {timeout:.0f} s",
                            hint="'make up' starts the local one; see var/buildbot-workers/local/twistd.log")
        time.sleep(1)


def demo(config_file: Path, release: str, projects: list[str], *, say: Callable[[str], None], timeout: float = 6 * 3600,
         poll: float = 3.0) -> list[str]:
    """Force the release's wheels builder (committed pins, ``projects`` rebuilt) and follow it and its chain."""
    config = load_config(config_file)
    rid = config.release(release).id
    api = Rest(config.buildbot)
    builders = {b["builderid"]: b["name"] for b in api.get("builders")["builders"]}
    root = f"wheels-{rid}"
    by_name = {v: k for k, v in builders.items()}
    if root not in by_name:
        raise InputError(f"the master at {api.url} has no builder {root}", hint="is it running with this stackyard.toml? (make up)")
    unknown = [p for p in projects if f"{p}-{rid}" not in by_name]
    if unknown:
        raise InputError(f"no builder for {', '.join(unknown)} in {rid}", hint=f"recipes/<project>.yaml with a version for {rid}")
    wait_for_workers(api, timeout=120)
    last = api.get("builds", order="-buildid", limit=1)["builds"]
    after = last[0]["buildid"] if last else 0
    params: dict[str, Any] = {REQUIREMENTS_UPDATE: False}
    if projects:
        params[REBUILD] = list(projects)
    bsid = api.force(force_scheduler_name(root), by_name[root], **params)
    say(f"forced {root} (buildset {bsid}): {api.url}#/builders/{by_name[root]}")
    seen = follow(api, builders, after, root, say, timeout=timeout, poll=poll)
    failed = [(name, b) for name, b in seen if b["results"] not in GREEN and b["results"] != RETRY]  # a retry is built again
    if failed:
        name, b = failed[-1]
        bad = [s for s in api.get(f"builds/{b['buildid']}/steps")["steps"] if s["results"] not in GREEN and s["complete"]]
        step = f", step {bad[0]['name']!r}: {bad[0].get('state_string', '')}" if bad else ""
        raise BuildError(f"{name} #{b['number']} {RESULTS.get(b['results'], 'failed')}{step}",
                         hint=f"its logs: {api.url}#/builders/{b['builderid']}/builds/{b['number']}")
    names = ", ".join(f"{n} #{b['number']}" for n, b in seen)
    return [f"{len(seen)} builds green: {names}",
            f"web UI: {api.url}#/grid (console: {api.url}#/console)"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m builders.ctl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["up", "down", "demo"])
    p.add_argument("--config", default=os.environ.get("STACKYARD_CONFIG", "stackyard.toml"))
    p.add_argument("--release", help="demo: the release whose wheels builder is forced")
    p.add_argument("projects", nargs="*", help="demo: projects rebuilt and promoted (their builders are triggered)")
    args = p.parse_intermixed_args(argv)
    if args.action != "demo" and (args.release or args.projects):
        p.error(f"--release and projects are for 'demo', not {args.action!r}")
    if args.action == "demo" and not args.release:
        p.error("demo needs --release (e.g. --release 2025.1)")
    try:
        if args.action == "demo":
            lines = demo(Path(args.config).resolve(), args.release, args.projects, say=lambda line: print(line, flush=True))
        else:
            lines = (up if args.action == "up" else down)(Path(args.config).resolve())
    except StackyardError as exc:
        print(f"buildbot {args.action}: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
