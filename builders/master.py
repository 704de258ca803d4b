"""The plan (builders.plan) as Buildbot objects: the BuildmasterConfig dict.

Thin on purpose: every decision is in the plan; this module only maps it.
"""

from __future__ import annotations

import json
import os
import re
import secrets as random_secrets
import sys
from pathlib import Path
from typing import Any

from buildbot.interfaces import IRenderable
from buildbot.plugins import schedulers, steps, util
from buildbot.process import logobserver
from buildbot.process.results import FAILURE, RETRY, SKIPPED, SUCCESS, WARNINGS
from twisted.internet import defer
from twisted.python import log
from zope.interface import implementer

from builders.latent import make_worker
from builders.plan import (
    DEB_LOGS,
    DEB_TODO,
    REBUILD,
    REQUIREMENTS_UPDATE,
    Arg,
    BuilderPlan,
    MasterPlan,
    Prop,
    SchedulerPlan,
    StepPlan,
    make_plan,
)
from builders.poller import TagPoller
from builders.releases_poller import ReleasesPoller
from builders.requirements_poller import RequirementsPoller
from builders.settings import BuildbotConfig as Config
from builders.settings import BuildbotSettings, Secret, load_config
from stackyard.errors import EXIT_CODES, ConfigError, ConflictError
from stackyard.recipes import load_recipes

VERSION_FIELD = r"^([0-9][0-9A-Za-z.+!-]*)?$"
PROJECTS_FIELD = r"^[a-z0-9. -]*$"
STEP_ENV = {"PIP_CONFIG_FILE": "/dev/null"}
COUNTING_MAX = 1000  # a worker lock's counting (shared) holders: never the limit (max_builds is)
BUNDLE_NAME = re.compile(r"^[a-z0-9][a-z0-9.+~-]*_[0-9A-Za-z.+~:-]+\.bundle\.tar$")
PROP_IN_ARG = re.compile(r"%\(prop:([A-Za-z_][A-Za-z0-9_]*)\)s")


def secret_value(secret: Secret) -> str:
    """The password behind ``secret``; a missing file is created (0600) with a random one."""
    if secret.env:
        value = os.environ.get(secret.env, "")
        if not value:
            raise ConfigError(f"{secret.key}: the environment variable {secret.env} is not set")
        return value
    assert secret.file is not None
    try:
        value = secret.file.read_text().strip()
    except FileNotFoundError:
        secret.file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        value = random_secrets.token_urlsafe(24)
        fd = os.open(secret.file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        log.msg(f"stackyard: made a new password in {secret.file} ({secret.key})")
    if not value:
        raise ConfigError(f"{secret.key}: {secret.file} is empty")
    return value


@implementer(IRenderable)
class Argv:
    """A command line with build properties in it (``Prop``), rendered per build."""

    def __init__(self, args: tuple[Arg, ...]) -> None:
        self.args = args

    def getRenderingFor(self, props: Any) -> list[str]:
        out: list[str] = []
        for a in self.args:
            if isinstance(a, Prop):
                value = props.getProperty(a.name) or ""
                if a.flag:
                    out += [a.flag, str(value)] if value else []
                else:
                    out += str(value).split() if a.split else [str(value)]
            else:  # "inbox/%(prop:bundle)s": a property inside an argument
                out.append(PROP_IN_ARG.sub(lambda m: str(props.getProperty(m[1]) or ""), a))
        return out


class TriggerChangedProjects(steps.Trigger):
    """Triggers ``trigger-<project>-<release>`` for each project in the ``changed_projects`` property."""

    def __init__(self, release: str, projects: list[str], **kwargs: Any) -> None:
        self.release = release
        self.by_scheduler = {f"trigger-{p}-{release}": p for p in projects}
        super().__init__(schedulerNames=list(self.by_scheduler), **kwargs)

    def getSchedulersAndProperties(self) -> list[dict[str, Any]]:
        changed = set(str(self.getProperty("changed_projects") or "").split())
        return [d for d in super().getSchedulersAndProperties() if self.by_scheduler[d["sched_name"]] in changed]


def pin_commit_properties(rc: int, stdout: str, stderr: str) -> dict[str, Any]:
    """``stackyard pin-commit --json`` -> pin_commit (the commit's hash, "" when the branch already had it), pin_branch."""
    if rc != 0:
        return {}
    result = json.loads(stdout)
    return {"pin_commit": result["commit"] or "", "pin_branch": result["branch"], "pin_files": " ".join(result["files"])}


CONFLICT_RETRIES = 3  # builds again from a new checkout, per build request, before a conflict fails the build
# build request id -> how many times a commit of its builds was refused as a conflict (the master's memory)
CONFLICTS: dict[int, int] = {}


class CommitStep(steps.SetPropertyFromCommand):
    """``stackyard pin-commit`` / ``requirements commit``: the commit as properties (``pin_commit_properties``).
    Refused because another build changed the same files since this build's checkout (exit 75, ConflictError):
    RETRY, so Buildbot requeues the request and builds it again from a new checkout; the last time, it fails."""

    def __init__(self, **kwargs: Any) -> None:
        self.rc: int | None = None
        super().__init__(extract_fn=self._properties, **kwargs)

    def _properties(self, rc: int, stdout: str, stderr: str) -> dict[str, Any]:
        self.rc = rc
        return pin_commit_properties(rc, stdout, stderr)

    @defer.inlineCallbacks
    def run(self):  # type: ignore[no-untyped-def,override]
        results = yield super().run()
        if results == FAILURE and self.rc == EXIT_CODES[ConflictError]:
            request = self.build.requests[0].id
            CONFLICTS[request] = CONFLICTS.get(request, 0) + 1
            if CONFLICTS[request] <= CONFLICT_RETRIES:
                self.descriptionDone = f"another build changed these files since the checkout: built again ({CONFLICTS[request]})"
                return RETRY
        return results


def deb_check_properties(rc: int, stdout: str, stderr: str) -> dict[str, Any]:
    """``stackyard deb --check --json`` (one project) -> a property per stage left to do (its reason, or ""), the
    version, the tool logs the stages append to, and the step's summary (``deb_state``)."""
    if rc != 0:
        return {}
    (status,) = json.loads(stdout)
    todo = status["todo"]
    props: dict[str, Any] = {prop: status["reason"] if stage in todo else "" for stage, prop in DEB_TODO.items()}
    props |= {prop: status["logs"][stage] for stage, prop in DEB_LOGS.items()}
    props["deb_version"] = status["version"]
    props["deb_state"] = (f"unchanged: {status['package']} {status['version']}" if not todo
                          else f"to do: {' '.join(todo)} ({status['reason']})")
    return props


class DebCheck(steps.SetPropertyFromCommand):
    """The fast "inputs unchanged?" step: says in its summary whether the deb stays or what is left to do."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(extract_fn=deb_check_properties, **kwargs)

    def getResultSummary(self) -> dict[str, str]:
        state = self.getProperty("deb_state")
        if self.results == SUCCESS and state:
            return {"step": str(state)}
        return super().getResultSummary()  # type: ignore[no-any-return]


class LintianObserver(logobserver.LogLineObserver):
    """lintian's W: and E: lines (stdout: the warnings; stderr: stackyard's error naming each E: line)."""

    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[str] = []
        self.errors: list[str] = []

    def _line(self, line: str) -> None:
        if line.startswith("W: "):
            self.warnings.append(line)
        elif line.startswith("E: "):
            self.errors.append(line)

    outLineReceived = errLineReceived = _line


def lintian_summary(warnings: list[str], errors: list[str]) -> str:
    """``lintian: 2 errors, 4 warnings (no-manual-page x2, ...)``: counts by tag, most frequent first."""
    tags: dict[str, int] = {}
    for line in warnings:
        fields = line.split()
        tag = fields[2] if len(fields) > 2 else line
        tags[tag] = tags.get(tag, 0) + 1
    counts = ([f"{len(errors)} errors"] if errors else []) + ([f"{len(warnings)} warnings"] if warnings else [])
    said = "lintian: " + (", ".join(counts) or "clean")
    if tags:
        said += " (" + ", ".join(f"{t} x{n}" if n > 1 else t for t, n in sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))) + ")"
    return said


class Lintian(steps.ShellCommand):
    """``stackyard lintian``, read like Buildbot's DebLintian: warnings give WARNINGS (the build stays green:
    warnOnWarnings is off), the step's ``warnings`` statistic, the ``lintian_warnings`` property and a
    "N Warnings" log; an error fails it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lintian = LintianObserver()
        self.addLogObserver("stdio", self.lintian)
        self.said = ""

    @defer.inlineCallbacks
    def run(self):  # type: ignore[no-untyped-def,override]
        cmd = yield self.makeRemoteShellCommand()
        yield self.runCommand(cmd)
        stdio = yield self.getLog("stdio")
        yield stdio.finish()
        warnings, errors = self.lintian.warnings, self.lintian.errors
        if warnings:
            yield self.addCompleteLog(f"{len(warnings)} Warnings", "\n".join(warnings))
        if errors:
            yield self.addCompleteLog(f"{len(errors)} Errors", "\n".join(errors))
        self.setStatistic("warnings", len(warnings))
        self.setProperty("lintian_warnings", len(warnings), self.name)
        self.said = lintian_summary(warnings, errors)
        if cmd.didFail() or errors:
            return FAILURE
        return WARNINGS if warnings else SUCCESS

    def getResultSummary(self) -> dict[str, str]:
        if self.said:
            return {"step": self.said}
        return super().getResultSummary()  # type: ignore[no-any-return]


def json_properties(rc: int, stdout: str, stderr: str) -> dict[str, Any]:
    """A stackyard command's ``--json`` object as build properties (``fetch-wheelhouse``: wheels_missing, ``bundle``:
    bundle, sha256, deb ...); lists become space-separated strings."""
    if rc != 0:
        return {}
    result = json.loads(stdout)
    if "bundle" in result and not BUNDLE_NAME.match(str(result["bundle"])):  # it becomes a path on the master and the publisher
        raise ValueError(f"stackyard bundle named a file {result['bundle']!r}: not a bundle's name")
    return {k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in result.items()}


UNREACHABLE = "cannot be read"  # stackyard fetch-wheelhouse: the publisher's wheelhouse did not answer
# build request id -> the build workers that could not reach the wheelhouse for it (the master's memory: a restart
# forgets, and the request is then tried once more on every worker)
UNREACHED: dict[int, set[str]] = {}


def another_worker(builder: Any, workers: list[Any], request: Any) -> Any:
    """nextWorker of scale-out project builders: a worker that has not failed to reach the wheelhouse for this request."""
    tried = UNREACHED.get(request.id, set())
    fresh = [w for w in workers if w.worker.workername not in tried]
    return random_secrets.choice(fresh) if fresh else None


class FetchWheelhouse(steps.SetPropertyFromCommand):
    """``stackyard fetch-wheelhouse``: a build worker that cannot reach the publisher's wheelhouse hands the build on
    (RETRY: Buildbot requeues the request, ``another_worker`` gives it to a build worker that has not tried it); once
    every build worker of the builder failed, the build fails, its log naming the URL. Nothing is published either way."""

    def __init__(self, candidates: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(extract_fn=json_properties, **kwargs)
        self.candidates = set(candidates)

    @defer.inlineCallbacks
    def run(self):  # type: ignore[no-untyped-def,override]
        results = yield super().run()
        if results == FAILURE and UNREACHABLE in self.observer.getStderr():
            tried = UNREACHED.setdefault(self.build.requests[0].id, set())
            tried.add(self.build.workername)
            if self.candidates - tried:
                self.descriptionDone = f"wheelhouse unreachable from {self.build.workername}: retried on another worker"
                return RETRY
        return results


def _has(prop: str):  # type: ignore[no-untyped-def]
    return lambda step: bool(step.getProperty(prop))


def _hide_skipped(results: int, _step: Any) -> bool:
    return results == SKIPPED


def _words(value: Any) -> list[str]:
    """A property holding project names: a space-separated string or a list (a multiple-choice force field)."""
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value or "").split()


class LockStep(steps.SetPropertyFromCommand):
    """``stackyard lock --json``: ``changed_projects`` are the projects whose pins moved, and those the force
    form asks to rebuild (``rebuild``: make demo builds the committed pins through the wheels builder)."""

    @defer.inlineCallbacks
    def run(self):  # type: ignore[no-untyped-def,override]
        result = yield super().run()
        rebuild = _words(self.getProperty(REBUILD))
        if rebuild and result == SUCCESS:
            changed = _words(self.getProperty("changed_projects"))
            self.setProperty("changed_projects", " ".join(dict.fromkeys(changed + rebuild)), "force: rebuild")
        return result


def _locks_json(rc: int, stdout: str, stderr: str) -> dict[str, Any]:
    if rc != 0:
        return {}
    locks = json.loads(stdout)
    # only the projects whose pins moved: an upper-constraints change rewrites every lock's header
    return {"locks": locks, "changed_projects": " ".join(r["project"] for r in locks if r.get("pins_changed", r["changed"]))}


class _Objects:
    def __init__(self, plan: MasterPlan) -> None:
        self.plan = plan
        self.locks = {name: util.MasterLock(name) for name in plan.locks}
        # counting access (builds that only read the clone) is shared by as many builds as a worker runs
        self.worker_locks = {name: util.WorkerLock(name, maxCount=COUNTING_MAX)
                             for name in sorted({n for b in plan.builders for n, _ in b.worker_locks})}

    def access(self, names: tuple[str, ...]) -> list[Any]:
        return [self.locks[n].access("exclusive") for n in names]

    def step(self, builder: BuilderPlan, s: StepPlan) -> Any:
        common: dict[str, Any] = {"name": s.name, "locks": self.access(s.locks), "haltOnFailure": True}
        if s.only_if:
            common |= {"doStepIf": _has(s.only_if)} | ({} if s.show_skipped else {"hideStepIf": _hide_skipped})
        if s.trigger == "changed-projects":
            known = sorted(b.project for b in self.plan.builders if b.kind == "project" and b.release == builder.release and b.project)
            return TriggerChangedProjects(release=builder.release, projects=known, waitForFinish=True, **common)
        if s.trigger == "publish":  # scale-out: the publisher takes the bundle this build sent to the master
            return steps.Trigger(schedulerNames=[f"trigger-publish-{builder.release}"], waitForFinish=True,
                                 set_properties={"bundle": util.Property("bundle"), "publish_project": builder.project,
                                                 "deb": util.Property("deb"),
                                                 "pin_commit": util.Property("pin_commit", default="")}, **common)
        if s.transfer == "upload":
            src, dest = s.command
            return steps.FileUpload(workersrc=util.Interpolate(str(src)), masterdest=util.Interpolate(str(dest)), mode=0o644,
                                    **common)
        if s.transfer == "download":
            src, dest = s.command
            return steps.FileDownload(mastersrc=util.Interpolate(str(src)), workerdest=util.Interpolate(str(dest)), mode=0o644,
                                      **common)
        if s.transfer == "master":  # the master's own stackyard (master.cfg imports it): no worker involved
            argv = [sys.executable, "-m", "stackyard", *(util.Interpolate(str(a)) for a in s.command[1:])]
            return steps.MasterShellCommand(command=argv, env=STEP_ENV, **common)
        if s.trigger == "rebuild":  # scale-out: rebuild-<release> on the publisher; this build ends (see plan.wheels_steps)
            return steps.Trigger(schedulerNames=[f"trigger-rebuild-{builder.release}"], waitForFinish=False,
                                 set_properties={"changed_projects": util.Property("changed_projects")}, **common)
        if s.trigger == "promote":
            return steps.Trigger(schedulerNames=[f"trigger-promote-{builder.release}"], waitForFinish=True,
                                 set_properties={"projects": util.Property("changed_projects")}, **common)
        command = Argv(s.command)
        if s.json_property == "locks":
            return LockStep(command=command, extract_fn=_locks_json, env=STEP_ENV, timeout=3600, **common)
        if s.json_property == "fetch":
            return FetchWheelhouse(candidates=builder.workers, command=command, env=STEP_ENV, timeout=3600, **common)
        if s.json_property in ("bundle", "checkout", "history"):
            return steps.SetPropertyFromCommand(command=command, extract_fn=json_properties, env=STEP_ENV, timeout=3600, **common)
        if s.json_property == "pin_commit":
            return CommitStep(command=command, env=STEP_ENV, timeout=3600, **common)
        if s.kind == "deb-check":
            return DebCheck(command=command, env=STEP_ENV, timeout=3600, **common)
        if s.logfiles:  # the tool's own log on the worker (read whole: the worker's "follow" loses what the first 2 s wrote)
            common["logfiles"] = {name: util.Property(prop) for name, prop in s.logfiles}
        if s.kind == "lintian":
            return Lintian(command=command, env=STEP_ENV, timeout=3600, **common)
        return steps.ShellCommand(command=command, env=STEP_ENV, timeout=3600, **common)

    def builder(self, b: BuilderPlan) -> Any:
        factory = util.BuildFactory([self.step(b, s) for s in b.steps])
        props = {"release": b.release} | ({"project": b.project} if b.project else {})
        retries = any(s.json_property == "fetch" for s in b.steps)  # scale-out: see FetchWheelhouse
        return util.BuilderConfig(
            name=b.name, workernames=list(b.workers), factory=factory,
            locks=self.access(b.locks) + [self.worker_locks[n].access(mode) for n, mode in b.worker_locks],
            nextWorker=another_worker if retries else None,
            tags=[b.kind, b.release] + ([b.project] if b.project else []), collapseRequests=False, properties=props,
            defaultProperties={REQUIREMENTS_UPDATE: True} if b.kind == "wheels" else {},
        )

    def scheduler(self, s: SchedulerPlan) -> Any:
        if s.kind == "force":
            return self.force(s)
        if s.kind == "triggerable":
            return schedulers.Triggerable(name=s.name, builderNames=list(s.builders))
        if s.kind == "nightly":
            return schedulers.Nightly(name=s.name, builderNames=list(s.builders), hour=s.hour, minute=s.minute, onlyIfChanged=False)
        if s.kind in ("tag", "release", "requirements"):  # one build per change: a tag, a version in openstack/releases,
            # or a move of the release's openstack/requirements files
            return schedulers.AnyBranchScheduler(
                name=s.name, builderNames=list(s.builders), treeStableTimer=None,
                change_filter=util.ChangeFilter(project=s.project, category=s.release, repository=s.repository),
            )
        raise ValueError(s.kind)

    def force(self, s: SchedulerPlan) -> Any:
        builder = self.plan.builder(s.builders[0])
        params: list[Any] = [util.ChoiceStringParameter(name="release", label="release", choices=[s.release], default=s.release, strict=True)]
        if builder.kind == "project":
            params += [
                util.ChoiceStringParameter(name="project", label="project", choices=[s.project], default=s.project, strict=True),
                util.StringParameter(name="version", label="upstream ref (a tag; empty: the recipe's pin)", default="",
                                     regex=VERSION_FIELD, size=20),
            ]
        if builder.kind == "wheels":
            known = sorted(b.project for b in self.plan.builders if b.kind == "project" and b.release == s.release and b.project)
            params.append(util.BooleanParameter(name=REQUIREMENTS_UPDATE, label="refresh upper-constraints from upstream first",
                                                default=True))
            if known:
                params.append(util.ChoiceStringParameter(name=REBUILD, label="also rebuild and promote (pins unchanged)",
                                                         choices=known, multiple=True, strict=True, default=[]))
        if builder.kind == "promote":
            params.append(util.StringParameter(name="projects", label="projects (space-separated; empty: all)", default="",
                                               regex=PROJECTS_FIELD, size=40))
        if builder.kind == "rebuild":
            params.append(util.StringParameter(name="changed_projects", label="projects to rebuild, then promote (space-separated)",
                                               default="", regex=PROJECTS_FIELD, size=40))
        fixed = util.CodebaseParameter(
            codebase="", label="", hide=True,
            branch=util.FixedParameter(name="branch", default=""), revision=util.FixedParameter(name="revision", default=""),
            repository=util.FixedParameter(name="repository", default=""), project=util.FixedParameter(name="project", default=""),
        )
        return schedulers.ForceScheduler(
            name=s.name, builderNames=list(s.builders), buttonName=f"build {s.builders[0]}",
            reason=util.StringParameter(name="reason", label="reason", default="forced", size=40),
            codebases=[fixed], properties=params,
        )


def change_sources(plan: MasterPlan) -> list[Any]:
    """A tag poller per recipe from git; the openstack/releases poller for the recipes from the index; an
    openstack/requirements poller per release with requirements_git."""
    sources: list[Any] = [
        TagPoller(name=p.name, repourl=p.repourl, project=p.project, rules=p.rules, pollInterval=p.interval, pollAtLaunch=True)
        for p in plan.pollers
    ]
    if plan.releases:
        r = plan.releases
        sources.append(ReleasesPoller(name=r.name, repourl=r.repourl, branch=r.branch, targets=r.targets, pollInterval=r.interval,
                                      pollAtLaunch=True))
    sources += [RequirementsPoller(name=q.name, release=q.release, repourl=q.repourl, branch=q.branch, pollInterval=q.interval,
                                   pollAtLaunch=True) for q in plan.requirements]
    return sources


def www(settings: BuildbotSettings, plan: MasterPlan) -> dict[str, Any]:
    users = {name: secret_value(password) for name, password in settings.users.items()}
    return {
        "port": f"tcp:{settings.web_port}:interface={settings.web_host}",
        "plugins": {"waterfall_view": {}, "console_view": {}, "grid_view": {}},
        "auth": util.UserPasswordAuth(users),
        "authz": util.Authz(
            allowRules=[util.AnyControlEndpointMatcher(role="admins")],
            roleMatchers=[util.RolesFromUsername(roles=["admins"], usernames=list(users))],
        ),
        "change_hook_dialects": {"poller": {"allowed": list(plan.poller_names)}},
    }


def master_config(config: Config) -> dict[str, Any]:
    """The BuildmasterConfig of ``config`` (stackyard.toml) and its recipes."""
    settings = config.buildbot
    plan = make_plan(config, load_recipes(config.paths.recipes))
    objects = _Objects(plan)
    return {
        "title": settings.title,
        "titleURL": settings.url,
        "buildbotURL": settings.url,
        "buildbotNetUsageData": None,
        "db": {"db_url": settings.db_url},
        "protocols": {"pb": {"port": f"tcp:{settings.worker_port}:interface={settings.worker_host}"}},
        "workers": [make_worker(config, w, secret_value) for w in settings.workers],  # plain, docker or kubernetes
        "builders": [objects.builder(b) for b in plan.builders],
        "schedulers": [objects.scheduler(s) for s in plan.schedulers],
        "change_source": change_sources(plan),
        "www": www(settings, plan),
    }


def load(config_file: Path | str) -> dict[str, Any]:
    return master_config(load_config(Path(config_file)))
