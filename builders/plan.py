"""What the Buildbot master runs, as plain data: builders, steps, schedulers, pollers.

Generated from stackyard.toml, the recipes and the releases, with no Buildbot
import, so unit tests check it without processes. ``builders.master`` turns
the plan into Buildbot objects. Every step is a ``stackyard`` command: what
Buildbot runs is what a person runs.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Union

from builders.deliverables import ReleaseTarget, release_target
from builders.requirements import PROJECT as REQUIREMENTS_PROJECT
from builders.settings import BUILD, PUBLISH
from builders.settings import BuildbotConfig as Config
from builders.tags import SeriesRule, deliverable_versions, series_rule
from stackyard.errors import ConfigError
from stackyard.recipes import Recipe

RELEASES_POLLER = "openstack-releases"

# a wheels build's property (true by default; a force form may turn it off): refresh upper-constraints first
REQUIREMENTS_UPDATE = "requirements_update"
# a wheels build's property (the force form's): projects rebuilt and promoted even though their pins did not move
REBUILD = "rebuild"

# master locks (exclusive): one apt repository, one registry, one wheelhouse per release
REPREPRO = "reprepro"
REGISTRY = "registry"


def wheelhouse_lock(release: str) -> str:
    return f"wheelhouse-{release}"


@dataclass(frozen=True)
class Prop:
    """A build property in a command line: ``version`` from a tag or the force form."""

    name: str
    split: bool = False  # a space-separated list becomes several arguments
    flag: str | None = None  # "--revision": the pair (flag, value) when the property is set, nothing when it is not


Arg = Union[str, Prop]


@dataclass(frozen=True)
class StepPlan:
    name: str
    command: tuple[Arg, ...]  # argv; shell-free
    locks: tuple[str, ...] = ()
    only_if: str | None = None  # run only when this property is non-empty
    json_property: str | None = None  # stdout (JSON) is kept as this property, see builders.master
    trigger: str | None = None  # a Trigger step instead of a command: "changed-projects" | "promote"
    kind: str | None = None  # how its output is read: "deb-check" (sets DEB_TODO), "lintian" (W:/E: lines)
    logfiles: tuple[tuple[str, str], ...] = ()  # (log name, property holding a file the step appends to on the worker)
    show_skipped: bool = False  # a skipped step stays visible (the deb stages: "skipped" says the inputs did not change)
    # scale-out transfers (Buildbot's own): "upload" (worker -> master), "download" (master -> worker), "master" (a
    # command on the master); command = (source, destination) for the first two, argv for "master"; "%(prop:x)s" in
    # them is a build property
    transfer: str | None = None


# ``stackyard deb --check --json`` sets one property per stage left to do (its reason, or "" when it is not),
# and where each stage writes its tool log; see builders.master.deb_check_properties
DEB_TODO = {"build": "deb_build", "lintian": "deb_lintian", "smoke": "deb_smoke"}
DEB_LOGS = {"build": "deb_build_log", "lintian": "deb_lintian_log", "smoke": "deb_smoke_log"}


@dataclass(frozen=True)
class BuilderPlan:
    name: str
    kind: str  # "wheels" | "project" | "promote" | "publish" (scale-out: the publisher takes a build worker's deb) | "rebuild"
    release: str
    project: str | None
    steps: tuple[StepPlan, ...]
    workers: tuple[str, ...]
    locks: tuple[str, ...] = ()  # held for the whole build: one build per builder at a time
    # worker locks (one per worker) held for the whole build, (name, "exclusive" | "counting"): "checkout" (scale-out
    # with a pins branch) lets one build at a time check a worker's clone out and edit it (a project build: its own
    # revision; the wheels build: the tip, then its requirements and locks); the publish builds, which only move the
    # publisher's clone forward and edit nothing, share it
    worker_locks: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SchedulerPlan:
    name: str
    kind: str  # "force" | "triggerable" | "nightly" | "tag" | "release" | "requirements"
    builders: tuple[str, ...]
    release: str
    project: str | None = None
    repository: str | None = None  # "tag", "release", "requirements": only changes of this repository (the poller's)
    hour: int = 0
    minute: int = 0


@dataclass(frozen=True)
class PollerPlan:
    name: str  # "tags-<project>": POST /change_hook/poller?poller=<name> polls at once
    project: str
    repourl: str
    rules: tuple[SeriesRule, ...]
    interval: int


@dataclass(frozen=True)
class ReleasesPollerPlan:
    """The openstack/releases poller: POST /change_hook/poller?poller=openstack-releases polls at once."""

    name: str
    repourl: str
    branch: str
    targets: tuple[ReleaseTarget, ...]  # every (index recipe, configured release) it may start
    interval: int


@dataclass(frozen=True)
class RequirementsPollerPlan:
    """openstack/requirements' branch of a release: POST /change_hook/poller?poller=requirements-<release> polls at once."""

    name: str
    release: str
    repourl: str
    branch: str
    interval: int


def requirements_poller_name(release: str) -> str:
    return f"requirements-{release}"


@dataclass(frozen=True)
class MasterPlan:
    builders: tuple[BuilderPlan, ...]
    schedulers: tuple[SchedulerPlan, ...]
    pollers: tuple[PollerPlan, ...]
    locks: tuple[str, ...] = field(default=())
    releases: ReleasesPollerPlan | None = None  # None: no recipe from the index, or [buildbot] releases_repo = ""
    requirements: tuple[RequirementsPollerPlan, ...] = ()  # one per release with requirements_git

    @property
    def poller_names(self) -> tuple[str, ...]:
        """Every change source, by the name the change hook takes."""
        return (tuple(p.name for p in self.pollers) + ((self.releases.name,) if self.releases else ())
                + tuple(r.name for r in self.requirements))

    def builder(self, name: str) -> BuilderPlan:
        return next(b for b in self.builders if b.name == name)


# a commit of files made on the build's checkout (scale-out: the "checkout" step's property; one machine has none, so
# no flag): refused if the branch's tip changed them since
SINCE_CHECKOUT = Prop("checkout", flag="--since")


def stackyard(*args: Arg) -> tuple[Arg, ...]:
    return ("stackyard", *args)


@dataclass(frozen=True)
class StepTemplate:
    """A project builder's step, with ``{release}`` and ``{project}`` filled in per builder."""

    name: str
    command: tuple[Arg, ...]
    locks: tuple[str, ...] = ()
    only_if: str | None = None
    setting: str | None = None  # a setting of [buildbot] that must be true (or non-empty)
    source: str | None = None  # only for recipes with this kind of source ("pypi")
    json_property: str | None = None
    kind: str | None = None
    logfiles: tuple[tuple[str, str], ...] = ()
    show_skipped: bool = False

    def render(self, release: str, project: str, **values: object) -> StepPlan:
        def fill(a: Arg) -> Arg:
            return a.format(release=release, project=project, **values) if isinstance(a, str) else a

        return StepPlan(self.name, tuple(fill(a) for a in self.command), tuple(fill(x) for x in self.locks),  # type: ignore[misc]
                        self.only_if, self.json_property, kind=self.kind, logfiles=self.logfiles,
                        show_skipped=self.show_skipped)


# A project builder, in order: a new version (a tag, an openstack/releases entry
# or the force form's "upstream ref") is awaited on the index (recipes from the
# index: a release is tagged before its sdist is uploaded), then moves the
# recipe's pin; then the pipeline of the earlier stages. The deb is four steps a
# packager reads apart: "inputs unchanged?" (fast: lock and packaging digests
# against the kept changelog, the file against its record) decides which of
# build, lintian and smoke test run; a build with nothing changed skips all three.
PROJECT_STEPS: tuple[StepTemplate, ...] = (
    StepTemplate("wait-for", stackyard("wait-for", "--release", "{release}", "--attempts", "{wait_attempts}", "--delay", "{wait_delay}",
                                       "{project}", Prop("version")), only_if="version", source="pypi"),
    StepTemplate("pin", stackyard("pin", "--release", "{release}", "{project}", Prop("version")), only_if="version"),
    StepTemplate("lock", stackyard("lock", "--release", "{release}", "{project}")),
    # [buildbot] pins_branch: the new pin and its lock become a commit there (its hash: the pin_commit property)
    StepTemplate("pin commit", stackyard("pin-commit", "--release", "{release}", "{project}", SINCE_CHECKOUT, "--json"),
                 only_if="version",
                 setting="pins_branch", json_property="pin_commit"),
    StepTemplate("wheels", stackyard("wheels", "--release", "{release}", "{project}"), locks=("wheelhouse-{release}",)),
    StepTemplate("inputs unchanged?", stackyard("deb", "--release", "{release}", "{project}", "--check", "--json"),
                 json_property="deb", kind="deb-check"),
    StepTemplate("deb build", stackyard("deb", "--release", "{release}", "{project}", "--no-lint", "--no-smoke"),
                 only_if=DEB_TODO["build"], logfiles=(("dpkg-buildpackage", DEB_LOGS["build"]),), show_skipped=True),
    StepTemplate("lintian", stackyard("lintian", "--release", "{release}", "{project}"), only_if=DEB_TODO["lintian"],
                 kind="lintian", show_skipped=True),
    StepTemplate("smoke test", stackyard("smoke", "--release", "{release}", "{project}"), only_if=DEB_TODO["smoke"],
                 logfiles=(("smoke", DEB_LOGS["smoke"]),), show_skipped=True),
    StepTemplate("publish", stackyard("publish", "--release", "{release}", "{project}"), locks=(REPREPRO,)),
    StepTemplate("image", stackyard("image", "--release", "{release}", "{project}", "--push"), locks=(REGISTRY,), setting="images"),
)


# Scale-out ([[buildbot.workers]] declare roles): a build worker's var/ starts empty and stays its own. The project
# builder gets the lock's wheels from the publisher's wheelhouse over HTTP (building only what it lacks: a new tag's
# own source), builds, lints and smoke-tests the deb, then sends it (a bundle and its .sha256) to the master, where
# the sum is checked, and triggers publish-<release> on the publisher: it downloads the bundle, checks it again,
# unpacks it into its own var/, publishes it to staging and builds and pushes the image (its credentials stay there).
ARTIFACTS = "artifacts"  # under the master's basedir: artifacts/<release>/<bundle>
BUNDLE_PROP = "%(prop:bundle)s"
SCALE_OUT_FETCH = StepTemplate("wheelhouse", stackyard("fetch-wheelhouse", "--release", "{release}", "{project}", "--url",
                                                       "{wheelhouse_url}", "--json"), json_property="fetch")
SCALE_OUT_WHEELS = StepTemplate("wheels", stackyard("wheels", "--release", "{release}", "{project}"), only_if="wheels_missing")
SCALE_OUT_SEND = (
    StepTemplate("bundle", stackyard("bundle", "--release", "{release}", "{project}", "--out", "outbox",
                                     Prop("wheels_missing", flag="--wheels"), "--json"),
                 json_property="bundle"),
)


# [buildbot] pins_branch (scale-out): each machine's clone of the configuration repository is brought to the pins
# branch before a build (its tip; a tag build then its own pin commit, exactly; the publisher the tip, which must
# contain the build's pin commit), so no worker builds from a stale checkout
CHECKOUT = StepPlan("checkout", stackyard("checkout", "--json"), json_property="checkout")
CHECKOUT_LOCK = "checkout"  # a worker lock: builds at once on one worker would check their shared clone out under each other
EDITS_CHECKOUT, READS_CHECKOUT = ((CHECKOUT_LOCK, "exclusive"),), ((CHECKOUT_LOCK, "counting"),)
CHECKOUT_PIN = StepPlan("checkout pin commit", stackyard("checkout", "--revision", Prop("pin_commit"), "--json"),
                        only_if="pin_commit", json_property="checkout")
# before the deb's version is decided: the changelog the publisher published, so an empty var/ does not restart at .1
SCALE_OUT_HISTORY = StepTemplate("published history", stackyard("fetch-history", "--release", "{release}", "{project}", "--url",
                                                                "{wheelhouse_url}", "--json"), json_property="history")


def scale_out_project_steps(steps: tuple[StepPlan, ...], release: str, project: str, master_dir: str,
                            wheelhouse_url: str, pins: bool = False) -> tuple[StepPlan, ...]:
    """The one-machine project steps, turned into a build worker's: the configuration at the pins branch (``pins``),
    the wheelhouse and the published history from the publisher, the deb sent on."""
    out: list[StepPlan] = [CHECKOUT] if pins else []
    for s in steps:
        if s.name == "wheels":
            out += [SCALE_OUT_FETCH.render(release, project, wheelhouse_url=wheelhouse_url),
                    SCALE_OUT_WHEELS.render(release, project),
                    SCALE_OUT_HISTORY.render(release, project, wheelhouse_url=wheelhouse_url)]
        elif s.name in ("publish", "image"):
            continue  # the publisher's
        else:
            out.append(s)
        if s.name == "pin commit":
            out.append(CHECKOUT_PIN)
    at_master = f"{master_dir}/{ARTIFACTS}/{release}/{BUNDLE_PROP}"
    out += [t.render(release, project) for t in SCALE_OUT_SEND]
    out += [
        StepPlan("upload", (f"outbox/{BUNDLE_PROP}", at_master), transfer="upload"),
        StepPlan("upload sha256", (f"outbox/{BUNDLE_PROP}.sha256", f"{at_master}.sha256"), transfer="upload"),
        StepPlan("check on the master", ("stackyard", "verify-artifact", at_master), transfer="master"),
        StepPlan("publish", (), trigger="publish"),
    ]
    return tuple(out)


CHECKOUT_CONTAINS = StepPlan("checkout", stackyard("checkout", Prop("pin_commit", flag="--contains"), "--json"),
                             json_property="checkout")


def publish_steps(config: Config, release: str, master_dir: str) -> tuple[StepPlan, ...]:
    """publish-<release> on the publisher: a build worker's bundle in, checked, published (and its image pushed)."""
    at_master = f"{master_dir}/{ARTIFACTS}/{release}/{BUNDLE_PROP}"
    project = Prop("publish_project")  # not "project": Buildbot sets that one from the source stamp (empty here)
    steps = [CHECKOUT_CONTAINS] if config.buildbot.pins_branch else []
    steps += [
        StepPlan("download", (at_master, f"inbox/{BUNDLE_PROP}"), transfer="download"),
        StepPlan("download sha256", (f"{at_master}.sha256", f"inbox/{BUNDLE_PROP}.sha256"), transfer="download"),
        # the wheels a build worker built are merged into the release's wheelhouse: under its lock
        StepPlan("receive", stackyard("receive", "--release", release, f"inbox/{BUNDLE_PROP}"), locks=(wheelhouse_lock(release),)),
        StepPlan("publish", stackyard("publish", "--release", release, project), locks=(REPREPRO,)),
        StepPlan("share history", stackyard("share-history", "--release", release, project), locks=(REPREPRO,)),
    ]
    if config.buildbot.images:
        steps.append(StepPlan("image", stackyard("image", "--release", release, project, "--push"), locks=(REGISTRY,)))
    return tuple(steps)


def force_scheduler_name(builder: str) -> str:
    """Buildbot wants an identifier (no dots): ``force-keystone-2025_1``."""
    return "force-" + builder.replace(".", "_")


def project_builder_name(project: str, release: str) -> str:
    return f"{project}-{release}"


def _workers(config: Config, builder: str, role: str = BUILD) -> tuple[str, ...]:
    """The workers of ``role`` whose ``builders`` patterns take ``builder``. One machine (no roles declared): every
    worker has both roles. Scale-out: project builders go to build workers; the wheels builder (the central
    wheelhouse it serves), promote and publish to the publisher."""
    chosen = tuple(
        w.name for w in config.buildbot.workers
        if role in w.roles and (not w.builders or any(fnmatch.fnmatchcase(builder, p) for p in w.builders))
    )
    if not chosen:
        which = f"worker with the role {role!r}" if config.buildbot.scale_out else "worker"
        raise ConfigError(f"{config.file}: buildbot.workers: no {which} may take builder {builder!r}; add it to such a worker's 'builders'")
    return chosen


def _projects_of(recipes: dict[str, Recipe], release: str) -> list[Recipe]:
    return [r for r in recipes.values() if release in r.versions]


def wheels_steps(config: Config, release: str, projects: list[str]) -> tuple[StepPlan, ...]:
    """Refresh the inputs (from requirements_git: at the polled commit, ``requirements_commit``; forced or nightly:
    the branch's head), re-lock every project, build the wheelhouse, then rebuild the projects whose pins moved.
    With a pins branch the new inputs and locks are committed there first (scale-out: made on its tip, checked out
    before), so the build workers rebuilding those projects check out what was locked."""
    settings = config.buildbot
    steps = [CHECKOUT] if settings.checks_out else []
    if config.buildbot.requirements_update or config.releases[release].requirements_git:
        # only_if: true unless a force form (make demo: build the committed pins) turned it off
        steps.append(StepPlan("requirements", stackyard("requirements", "update", "--release", release,
                                                        Prop("requirements_commit", flag="--revision")),
                              only_if=REQUIREMENTS_UPDATE, show_skipped=True))
    steps.append(StepPlan("lock", stackyard("lock", "--release", release, "--json", *projects), json_property="locks"))
    if settings.pins_branch:
        steps.append(StepPlan("requirements commit", stackyard("requirements", "commit", "--release", release, SINCE_CHECKOUT,
                                                               "--json"), json_property="pin_commit"))
    steps += [
        StepPlan("wheels", stackyard("wheels", "--release", release, *projects), locks=(wheelhouse_lock(release),)),
        StepPlan("wheels-deb", stackyard("wheels-deb", "--release", release), locks=(wheelhouse_lock(release),)),
    ]
    if projects and settings.checks_out:
        # this build holds the publisher's clone (it edits it); the rebuilds' publish builds need it: they run in a
        # build of their own, not waited for, so the lock is released first
        steps.append(StepPlan("rebuild and promote", (), only_if="changed_projects", trigger="rebuild"))
    elif projects:
        steps += REBUILD_STEPS
    return tuple(steps)


REBUILD_STEPS = (StepPlan("rebuild changed projects", (), only_if="changed_projects", trigger="changed-projects"),
                 StepPlan("promote", (), only_if="changed_projects", trigger="promote"))


def promote_steps(config: Config, release: str) -> tuple[StepPlan, ...]:
    """A control plane from the staging packages answers the scenario, then they are promoted (promote refuses
    what no passing verify installed). ``[buildbot] verify = false`` (fixture packages that cannot run a control
    plane) promotes with --force naming that key."""
    projects = Prop("projects", split=True)
    promote = stackyard("promote", "--release", release, projects)
    if not config.buildbot.verify:
        return (StepPlan("promote", (*promote, "--force", "[buildbot] verify = false"), locks=(REPREPRO,)),)
    return (StepPlan("verify", stackyard("verify", "--release", release, projects)),
            StepPlan("promote", promote, locks=(REPREPRO,)))


def make_plan(config: Config, recipes: dict[str, Recipe]) -> MasterPlan:
    settings = config.buildbot
    builders: list[BuilderPlan] = []
    schedulers: list[SchedulerPlan] = []
    pollers: list[PollerPlan] = []
    requirements: list[RequirementsPollerPlan] = []
    owner: dict[str, str] = {}

    def add(builder: BuilderPlan, source: str) -> None:
        if builder.name in owner:
            raise ConfigError(f"{source}: name: builder {builder.name!r} is also made by {owner[builder.name]}; rename the project")
        owner[builder.name] = source
        builders.append(builder)
        schedulers.append(SchedulerPlan(force_scheduler_name(builder.name), "force", (builder.name,), builder.release, builder.project))

    hour, minute = (int(x) for x in settings.nightly.split(":"))
    central = PUBLISH if settings.scale_out else BUILD  # where the wheelhouse is made and served from
    edits = EDITS_CHECKOUT if settings.checks_out else ()  # builds that check out and edit the clone
    master_dir = str(settings.basedir)
    for rid in config.releases:
        projects = [r.name for r in _projects_of(recipes, rid)]
        wheels = f"wheels-{rid}"
        add(BuilderPlan(wheels, "wheels", rid, None, wheels_steps(config, rid, projects), _workers(config, wheels, central),
                        (f"build-{wheels}",), edits),
            f"{config.file}: releases.{rid}")
        schedulers.append(SchedulerPlan(f"nightly-{rid}", "nightly", (wheels,), rid, hour=hour, minute=minute))
        promote = f"promote-{rid}"
        add(BuilderPlan(promote, "promote", rid, None, promote_steps(config, rid), _workers(config, promote, PUBLISH),
                        (f"build-{promote}",)),
            f"{config.file}: releases.{rid}")
        if edits and projects:  # see wheels_steps: the rebuilds after an upper-constraints move, on the publisher
            rebuild = f"rebuild-{rid}"
            add(BuilderPlan(rebuild, "rebuild", rid, None, REBUILD_STEPS, _workers(config, rebuild, PUBLISH)),
                f"{config.file}: releases.{rid}")
            schedulers.append(SchedulerPlan(f"trigger-{rebuild}", "triggerable", (rebuild,), rid))
        if settings.scale_out:
            publish = f"publish-{rid}"
            add(BuilderPlan(publish, "publish", rid, None, publish_steps(config, rid, master_dir), _workers(config, publish, PUBLISH),
                            worker_locks=READS_CHECKOUT if settings.pins_branch else ()),
                f"{config.file}: releases.{rid}")
            schedulers.append(SchedulerPlan(f"trigger-{publish}", "triggerable", (publish,), rid))
        schedulers.append(SchedulerPlan(f"trigger-{promote}", "triggerable", (promote,), rid))
        release = config.releases[rid]
        if release.requirements_git:  # upper-constraints polled: its moves start the wheels builder
            requirements.append(RequirementsPollerPlan(requirements_poller_name(rid), rid, release.requirements_git,
                                                       release.requirements_branch, settings.poll_interval))
            schedulers.append(SchedulerPlan(f"requirements-{wheels}", "requirements", (wheels,), rid, REQUIREMENTS_PROJECT,
                                            repository=release.requirements_git))

    # Who starts a project builder with a new upstream version: a recipe from git, its tag poller
    # (tags-<project>); a recipe from the index, the openstack/releases poller. Never both.
    targets: list[ReleaseTarget] = []
    for recipe in recipes.values():
        rules = []
        source = "git" if recipe.source.git else "pypi"
        for rid in config.releases:
            if rid not in recipe.versions:
                continue
            name = project_builder_name(recipe.name, rid)
            steps = tuple(t.render(rid, recipe.name, wait_attempts=settings.wait_attempts, wait_delay=settings.wait_delay)
                          for t in PROJECT_STEPS
                          if (t.setting is None or getattr(settings, t.setting)) and t.source in (None, source))
            if settings.scale_out:
                steps = scale_out_project_steps(steps, rid, recipe.name, master_dir, settings.wheelhouse_url,
                                                settings.checks_out)
            add(BuilderPlan(name, "project", rid, recipe.name, steps, _workers(config, name), (f"build-{name}",), edits),
                str(recipe.file))
            schedulers.append(SchedulerPlan(f"trigger-{name}", "triggerable", (name,), rid, recipe.name))
            release = config.releases[rid]
            if recipe.source.git:
                schedulers.append(SchedulerPlan(f"tag-{name}", "tag", (name,), rid, recipe.name, repository=recipe.source.git))
                listed = deliverable_versions(settings.deliverables, release.series, recipe.name)
                rules.append(series_rule(rid, recipe.versions[rid], listed))
            elif settings.releases_repo:
                schedulers.append(SchedulerPlan(f"release-{name}", "release", (name,), rid, recipe.name, repository=settings.releases_repo))
                targets.append(release_target(recipe.name, recipe.source.distribution, rid, release.series, recipe.versions[rid]))
        if recipe.source.git and rules:
            pollers.append(PollerPlan(f"tags-{recipe.name}", recipe.name, recipe.source.git, tuple(rules), settings.poll_interval))

    locks = sorted({lock for b in builders for s in b.steps for lock in s.locks} | {lock for b in builders for lock in b.locks})
    releases = None
    if targets:
        releases = ReleasesPollerPlan(RELEASES_POLLER, settings.releases_repo, settings.releases_branch, tuple(targets),
                                      settings.poll_interval)
    return MasterPlan(tuple(builders), tuple(schedulers), tuple(pollers), tuple(locks), releases, tuple(requirements))
