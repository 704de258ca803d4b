"""The ``stackyard`` command: parses arguments, calls the core, renders results.

Exit codes come from the exception hierarchy (stackyard.errors), here only.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from stackyard import __version__
from stackyard.config import Config, Release, load_config
from stackyard.errors import BuildError, InputError, StackyardError, exit_code
from stackyard.recipes import Recipe, load_recipes, package_name, select
from stackyard.render import ConsoleReporter, table
from stackyard.runner import RUNNER, Runner

if TYPE_CHECKING:
    from stackyard.debs.venv_deb import CheckResult
    from stackyard.pin_commit import PinCommit
    from stackyard.repo.operator_data import AptPlan


def _config(args: argparse.Namespace) -> Config:
    return load_config(Path(args.config))


def _release(args: argparse.Namespace) -> tuple[Config, Release]:
    config = _config(args)
    return config, config.release(args.release)


def _project(args: argparse.Namespace) -> tuple[Config, Release, Recipe]:
    """``--release`` and the one PROJECT argument of a command."""
    config, release = _release(args)
    (recipe,) = _recipes(config, [args.project])
    return config, release, recipe


def _recipes(config: Config, names: list[str]) -> list[Recipe]:
    """The recipes ``names`` (all of them when empty); an unknown name is an InputError listing the known ones."""
    return select(load_recipes(config.paths.recipes), names, config.paths.recipes)


def command(sub: argparse._SubParsersAction, name: str, help_: str,  # type: ignore[type-arg]
            func: Callable[[argparse.Namespace], int], *, release: bool = True,
            projects: str | None = None) -> argparse.ArgumentParser:
    """The subcommand ``name`` running ``func``; with ``--release`` (required) unless ``release`` is False, and
    PROJECT arguments when ``projects`` is an nargs ("*": all by default, "+": at least one)."""
    s = sub.add_parser(name, help=help_)
    s.set_defaults(func=func)
    if release:
        s.add_argument("--release", required=True)
    if projects:
        s.add_argument("projects", nargs=projects, metavar="PROJECT")
    return s


def since_and_json(s: argparse.ArgumentParser) -> None:
    """The options of the commands that commit to the pins branch."""
    s.add_argument("--since", metavar="COMMIT", default="",
                   help="the checkout the files were made from: refuse, naming them, files the branch changed after it")
    s.add_argument("--json", action="store_true", help="print the result as JSON (commit, branch, base, files, attempts)")


def _releases(config: Config, name: str) -> list[Release]:
    return list(config.releases.values()) if name == "all" else [config.release(name)]


def cmd_check(args: argparse.Namespace) -> int:
    from stackyard.http import Http
    from stackyard.wheels.extras import verify_extras
    from stackyard.wheels.package_index import PackageIndex

    config = _config(args)
    recipes = load_recipes(config.paths.recipes)
    for recipe in recipes.values():
        for rid in recipe.versions:
            config.release(rid)
    # recipes with extras: each pinned version must declare them (the index's metadata, cached)
    index = PackageIndex(config.index.url, Http(config.index.retries, config.index.timeout))
    checked = 0
    for recipe in recipes.values():
        for rid in recipe.versions:
            checked += verify_extras(config, config.release(rid), recipe, index=index) is not None
    extras = f"; extras checked for {checked} pinned versions" if checked else ""
    print(f"{config.file}: {len(config.releases)} releases; {len(recipes)} recipes OK{extras}")
    return 0


def cmd_requirements_update(args: argparse.Namespace) -> int:
    from stackyard.http import Http
    from stackyard.wheels.upstream_requirements import update_requirements

    config, release = _release(args)
    git = not args.origin and bool(release.requirements_git)  # the release's requirements_git, at --revision or its head
    origin = args.origin or release.requirements_git or release.upstream
    before = {name: (config.requirements_dir(release) / name).read_text()
              for name in ("upper-constraints.txt", "global-requirements.txt", "bindep.txt")
              if (config.requirements_dir(release) / name).exists()}
    source = update_requirements(config, release, origin, Http(config.index.retries, config.index.timeout),
                                 runner=args.runner, git_branch=release.requirements_branch if git else None,
                                 revision=args.revision)
    changed = [name for name in ("upper-constraints.txt", "global-requirements.txt", "bindep.txt")
               if before.get(name) != (config.requirements_dir(release) / name).read_text()]
    print(f"{config.requirements_dir(release)}: updated from {source.origin} (commit {source.commit}); "
          + (f"changed: {' '.join(changed)}" if changed else "no file changed"))
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    from stackyard.wheels.lock import lock_projects

    config, release = _release(args)
    recipes = load_recipes(config.paths.recipes)
    results = lock_projects(config, release, select(recipes, args.projects, config.paths.recipes),
                            force=args.force, report=ConsoleReporter(), runner=args.runner)
    rows = [[r.project, str(r.packages), "changed" if r.changed else "unchanged", f"{r.seconds:.1f}",
             str(r.file.relative_to(config.paths.root))] for r in results]
    if args.json:  # pins_changed: the pins and hashes moved (a header-only change needs no rebuild)
        from stackyard.wheels.lock import pins_digest

        print_json([{"project": r.project, "packages": r.packages, "changed": r.changed, "pins_changed": r.pins_changed,
                     "pins_sha256": pins_digest(r.file.read_text()), "file": row[4]} for r, row in zip(results, rows, strict=True)])
    else:
        print(table(["project", "packages", "lock", "seconds", "file"], rows))
    return 0


def cmd_pin(args: argparse.Namespace) -> int:
    from stackyard.pins import pin

    config, release, recipe = _project(args)
    result = pin(recipe, release.id, args.version)
    if result.changed:
        print(f"{recipe.file}: versions.{release.id}: {result.previous} -> {result.current}")
    else:
        print(f"{recipe.file}: versions.{release.id}: {result.current} kept ({args.version} is not newer)")
    return 0


def cmd_pin_commit(args: argparse.Namespace) -> int:
    from stackyard.pin_commit import commit_pin

    config, release, recipe = _project(args)
    return _said_commit(args, commit_pin(config, release, recipe, message_suffix=args.message or "", since=args.since or None,
                                         runner=args.runner))


def cmd_requirements_commit(args: argparse.Namespace) -> int:
    from stackyard.pin_commit import commit_requirements

    config, release = _release(args)
    return _said_commit(args, commit_requirements(config, release, since=args.since or None, runner=args.runner))


def print_json(data: object) -> None:
    """What every --json prints (Buildbot's steps read it). Indented: one value a line, as a Buildbot worker cuts a
    line of 4096 characters or more and loses a character at each cut (keystone's fetch-wheelhouse lists about
    150 wheels)."""
    print(json.dumps(data, indent=1))


def _say(args: argparse.Namespace, data: object, text: str) -> int:
    """``data`` as JSON with --json, else ``text``."""
    if args.json:
        print_json(data)
    else:
        print(text)
    return 0


def _said_commit(args: argparse.Namespace, result: PinCommit) -> int:
    what = f"{result.project} {result.version} for {result.release}" if result.project else f"the requirements of {result.release}"
    return _say(args, dataclasses.asdict(result),
                f"{result.branch} of {result.remote}: {result.commit} {what} ({' '.join(result.files)}; push attempt {result.attempts})"
                if result.commit else f"{result.branch} of {result.remote}: already has {what}; no commit")


def cmd_wait_for(args: argparse.Namespace) -> int:
    from stackyard.http import Http
    from stackyard.wait_for import forget_cached_pages, wait_for_version

    config, release, recipe = _project(args)
    if recipe.source.git:
        print(f"{recipe.name}: built from {recipe.source.git} at tag {args.version}: no index to wait for")
        return 0
    found = wait_for_version(config.index.url, recipe.source.distribution, args.version,
                             Http(config.index.retries, config.index.timeout), args.attempts, args.delay,
                             say=lambda line: print(line, flush=True))
    forgot = forget_cached_pages(config, release, recipe.source.distribution)
    if forgot:
        print(forgot)
    print(f"{recipe.name} {found.version} ({release.id}): on {config.index.url} after {found.attempts} attempts")
    return 0


def cmd_bindep(args: argparse.Namespace) -> int:
    from stackyard.wheels import bindep

    config = _config(args)
    for release in _releases(config, args.release):
        file = config.requirements_dir(release) / "bindep.txt"
        packages = bindep.packages_for(bindep.parse_bindep(file.read_text(), file), release.codename)
        if args.install:
            installed = bindep.ensure_installed(packages, file, runner=args.runner)
            print(f"{release.id}: {len(packages)} build dependencies present" + (f", installed {' '.join(installed)}" if installed else ""))
        else:
            print(" ".join(packages))
    return 0


def cmd_wheels(args: argparse.Namespace) -> int:
    from stackyard.wheels import bindep
    from stackyard.wheels.wheelhouse import build_wheelhouse

    config, release = _release(args)
    recipes = load_recipes(config.paths.recipes)
    chosen = select(recipes, args.projects, config.paths.recipes) if args.projects else []
    if not args.projects and not args.all:
        from stackyard.wheels.lock import lock_path

        chosen = [r for r in recipes.values() if lock_path(config, release, r.name).exists()]
    bindep_file = config.requirements_dir(release) / "bindep.txt"
    bindep.ensure_installed(bindep.packages_for(bindep.parse_bindep(bindep_file.read_text(), bindep_file), release.codename), bindep_file,
                            runner=args.runner)
    result = build_wheelhouse(
        config, release, chosen, upper_constraints=args.all, reporter=ConsoleReporter(), allowed_failures=set(args.allow_fail),
        runner=args.runner,
    )
    rows = [[k, str(v)] for k, v in result.counts.items() if v] + [["seconds", f"{result.seconds:.1f}"]]
    print(table(["outcome", "count"], rows))
    failed = result.failed
    if failed:
        print(table(["failed", "version", "log"], [[i.name, i.version, str(i.log)] for i in failed]))
        raise BuildError(
            f"{len(failed)} of {len(result.items)} wheels failed; the previous wheelhouse was left in place",
            hint="read the logs above; add a package to [wheels] allowed_failures only if nothing needs it",
        )
    print(f"wheelhouse: {result.path}  (index: {result.path / 'simple'})")
    return 0


def cmd_wheels_deb(args: argparse.Namespace) -> int:
    from stackyard.debs.wheels_deb import build_wheels_deb

    config, release = _release(args)
    result = build_wheels_deb(config, release, runner=args.runner)
    record = result.record
    print(table(["package", "version", "architecture", "wheels", "build", "file"],
                [[record.package, record.version, record.architecture, str(record.wheels),
                  "unchanged" if result.unchanged else f"built, lintian: {len(record.lintian_warnings)} warnings",
                  str(result.file)]]))
    return 0


def _deb_check(args: argparse.Namespace, config: Config, release: Release, recipes: list) -> int:
    """``stackyard deb --check``: what a build would do, from the inputs alone; nothing is built."""
    from stackyard.debs.venv_deb import build_log, deb_status, lintian_log, smoke_log

    statuses = [deb_status(config, release, recipe, runner=args.runner) for recipe in recipes]
    if args.json:
        print_json([{"project": s.project, "package": s.package, "version": s.version, "todo": list(s.todo),
                     "reason": s.reason, "file": str(s.file) if s.file else None,
                     "lintian_warnings": len(s.lintian_warnings),
                     "logs": {"build": str(build_log(config, release, s.package, s.version)),
                              "lintian": str(lintian_log(config, release, s.package, s.version)),
                              "smoke": str(smoke_log(config, release, s.package, s.version))}}
                    for s in statuses])
    else:
        print(table(["package", "version", "to do", "why"],
                    [[s.package, s.version, " ".join(s.todo) or "nothing", s.reason] for s in statuses]))
    return 0


def cmd_deb(args: argparse.Namespace) -> int:
    from stackyard.debs.record import smoke_passed
    from stackyard.debs.smoke import smoke_test
    from stackyard.debs.venv_deb import build_deb

    config, release = _release(args)
    recipes = _recipes(config, args.projects)
    if args.check:
        return _deb_check(args, config, release, recipes)
    if args.json:
        raise InputError("--json goes with --check")
    report = ConsoleReporter()
    rows = []
    for recipe in recipes:
        result = build_deb(config, release, recipe, rebuild=args.rebuild, lint=not args.no_lint, report=report,
                           runner=args.runner)
        smoke = "skipped"
        if result.unchanged and smoke_passed(result.file):
            smoke = "passed before"
        elif not args.no_smoke and not args.no_lint:
            tested = smoke_test(config, release, recipe, result.file, report=report, runner=args.runner)
            smoke = f"passed ({len(tested.findings)} checks)"
        state = "unchanged" if result.unchanged else ("new" if result.new_entry else "same")
        rows.append([result.package, result.version, state, str(len(result.lintian_warnings)),
                     smoke, f"{result.seconds:.1f}", str(result.file)])
    print(table(["package", "version", "changelog", "lintian W", "smoke", "seconds", "file"], rows))
    return 0


def _each_project(args: argparse.Namespace, step: Callable[..., Any], headers: list[str],
                  row: Callable[[Any], list[str]]) -> int:
    """``step(config, release, recipe, report=, runner=)`` for each named project, then a table of ``row(result)``."""
    config, release = _release(args)
    report = ConsoleReporter()
    rows = [row(step(config, release, recipe, report=report, runner=args.runner)) for recipe in _recipes(config, args.projects)]
    print(table(headers, rows))
    return 0


def cmd_lintian(args: argparse.Namespace) -> int:
    """lintian on each project's built file: every W:/E: line on stdout, the warnings recorded with the file."""
    from stackyard.debs.venv_deb import lint_deb

    def row(result: CheckResult) -> list[str]:  # errors were a ToolError naming each E: line
        for warning in result.findings:
            print(warning)
        return [result.package, result.version, str(len(result.findings)), f"{result.seconds:.1f}", str(result.file)]

    return _each_project(args, lint_deb, ["package", "version", "lintian W", "seconds", "file"], row)


def cmd_smoke(args: argparse.Namespace) -> int:
    """The smoke test of each project's built and linted file, in a clean root; the verdict is recorded with it."""
    from stackyard.debs.smoke import smoke_built

    def row(result: CheckResult) -> list[str]:
        for check in result.findings:
            print(f"    ok: {check}")
        return [result.package, result.version, f"passed ({len(result.findings)} checks)", f"{result.seconds:.1f}", str(result.file)]

    return _each_project(args, smoke_built, ["package", "version", "smoke", "seconds", "file"], row)


def _print_packages(listed: list) -> None:  # list[PublishedPackage]
    print(table(["distribution", "package", "version", "arch"], [[p.distribution, p.name, p.version, p.architecture] for p in listed]))


def cmd_publish(args: argparse.Namespace) -> int:
    from stackyard.repo.apt import AptRepository, staging
    from stackyard.repo.publish import publishable

    config, release = _release(args)
    debs = publishable(config, release, _recipes(config, args.projects),
                       named=bool(args.projects), runner=args.runner)
    if not debs:
        raise InputError(f"nothing to publish for {release.id}", hint=f"stackyard deb --release {release.id} PROJECT")
    _print_packages(AptRepository(config, args.runner).publish(release, debs))
    print(f"published {len(debs)} packages to {staging(release)} in {config.repo.path}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from stackyard.repo.apt import AptRepository, final

    config, release = _release(args)
    packages = [package_name(p) for p in args.projects]
    if args.force is not None and not args.force.strip():
        raise InputError("--force needs a reason", hint='e.g. --force "hotfix: verify cannot run keystone-only changes"')
    listed, snapshot = AptRepository(config).promote(release, packages, force=args.force)
    _print_packages(listed)
    forced = f" (forced without a passing verify: {args.force})" if args.force else ""
    print(f"promoted to {final(release)}; snapshot {snapshot}{forced}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from stackyard.repo.operator_data import parse_project_release
    from stackyard.verify.container import clean_leftovers
    from stackyard.verify.plan import Override
    from stackyard.verify.run import verify, workdir_of

    config = _config(args)
    if args.clean:  # make down: a container a killed verify left, its mounts, its root
        releases = list(config.releases.values()) if args.release in (None, "all") else [config.release(args.release)]
        for release in releases:
            workdir = workdir_of(config, release)
            if workdir.exists():
                for line in clean_leftovers(workdir, workdir / "verify.log") or [f"{workdir}: nothing left running"]:
                    print(f"verify {release.id}: {line}")
        return 0
    if not args.release:
        raise InputError("verify needs --release (or --clean)")
    release = config.release(args.release)
    overrides = tuple(Override.parse(o) for o in args.set)
    upgrades = dict(parse_project_release(config, value, "--upgrade") for value in args.upgrade)
    result = verify(config, release, args.projects, promoted=args.promoted, overrides=overrides,
                    report=ConsoleReporter(), keep=args.keep, runner=args.runner, upgrades=upgrades, again=args.again)
    record = result.record
    rows = []
    for step in record.steps:
        if step.kind == "unit":
            rows.append([step.service, step.state, step.api or "-", "", f"{step.seconds:.1f}"])
        else:
            rows.append([step.service or "-", "", "", f"{step.name}" + (f": {step.detail}" if step.detail else ""),
                         f"{step.seconds:.1f}"])
    print(table(["service", "unit state", "API answered", "scenario step", "seconds"], rows))
    phases = ", ".join(f"{k} {v:.0f}s" for k, v in record.phases.items())
    print(f"verify {release.id}: " + ("unchanged, " if result.unchanged else "")
          + f"passed in {record.seconds:.0f}s ({phases}); peak memory "
          f"{record.peak_memory_bytes / 2**30:.1f} GiB; {len(record.packages)} packages from {record.distribution}")
    for package in record.upgrades:
        print(f"upgraded on the running control plane: {package.name} to {package.version}")
    print(f"record: {result.path}")
    return 0


def _apt_plan(args: argparse.Namespace, config: Config) -> AptPlan:
    from stackyard.repo.operator_data import apt_plan, parse_project_release

    projects = dict(parse_project_release(config, value) for value in args.project)
    return apt_plan(config, config.release(args.release), staging=args.staging, projects=projects, url=args.url,
                    runner=args.runner)


def cmd_apt_config(args: argparse.Namespace) -> int:
    from stackyard.repo.operator_data import apt_files, write_apt_files

    config = _config(args)
    plan = _apt_plan(args, config)
    for warning in plan.warnings:
        print(f"stackyard: warning: {warning}", file=sys.stderr)
    keyring = config.repo.path / "stackyard-archive-keyring.gpg"
    files = apt_files(plan, keyring.read_bytes() if keyring.exists() else b"")
    if args.output:
        for target in write_apt_files(files, Path(args.output)):
            print(target)
        return 0
    for rel, content in files.items():
        if rel.endswith(".gpg"):
            print(f"# /{rel}: the repository's key, {config.repo.url}/{keyring.name} "
                  f"(or: stackyard apt-config --release {args.release} --output /)\n")
        else:
            print(f"# /{rel}\n{content.decode()}")
    return 0


def cmd_puppet_data(args: argparse.Namespace) -> int:
    from stackyard.repo.operator_data import puppet_data

    config = _config(args)
    plan = _apt_plan(args, config)
    armored = config.repo.path / "stackyard-archive-keyring.asc"
    suffix = "-staging" if args.staging else ""
    out = Path(args.output) if args.output else config.paths.output / "puppet" / f"{plan.release.id}{suffix}.yaml"
    text, count = puppet_data(config, plan, armored.read_text() if armored.exists() else "", runner=args.runner)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"{out}: {count} packages of {plan.release.id}"
          + "".join(f", {p} from {r.id}" for p, r in sorted(plan.projects.items())))
    return 0


def cmd_image(args: argparse.Namespace) -> int:
    from stackyard.events import Note
    from stackyard.images import engine as docker_engine
    from stackyard.images.build import build_image, push_image
    from stackyard.images.registry import Registry
    from stackyard.images.services import registry_password
    from stackyard.repo.apt import final, staging

    config, release = _release(args)
    recipes = _recipes(config, args.projects)
    distribution = final(release) if args.promoted else staging(release)
    client = docker_engine.connect(config.images)
    registry = password = None
    if args.push:  # a wrong login or an unreachable registry fails here, before anything is built
        password = registry_password(config.images)
        registry = Registry(config.images, password)
        registry.check_login()
    reporter = ConsoleReporter()
    rows = []
    for recipe in recipes:
        reporter(Note("image", f"{recipe.image.name} ({release.id}) from {recipe.package} in {distribution}"))
        result = build_image(config, release, recipe, client, distribution=distribution, report=reporter, runner=args.runner)
        if registry is not None and password is not None:
            result = push_image(config, release, result, client, password, registry, reporter)
        r = result.record
        layers = f"{sum(p.pushed_layers for p in result.push)} sent" if result.push else ("already there" if args.push else "-")
        rows.append([r.image, r.version, "built" if result.built else "unchanged", f"{r.size / 1e6:.0f} MB",
                     f"{result.seconds:.1f}", layers, f"{r.repository}:{r.dated_tag}"])
    print(table(["image", "deb version", "build", "size", "seconds", "push", "reference"], rows))
    return 0


def cmd_helm_values(args: argparse.Namespace) -> int:
    from stackyard.images.helm_values import chart_values, write
    from stackyard.images.services import registry_password

    config, release = _release(args)
    out = Path(args.output) if args.output else config.paths.output / "helm" / release.id
    charts = chart_values(config, release, load_recipes(config.paths.recipes), registry_password(config.images),
                          by_digest=args.by_digest)
    rows = []
    for chart, file in write(charts.values(), release, out):
        rows.append([chart.chart, str(len(chart.values["images"]["tags"])), " ".join(chart.left) or "-", str(file)])
    print(table(["chart", "image keys", "left to the chart", "values file"], rows))
    return 0


def cmd_chart_verify(args: argparse.Namespace) -> int:
    from stackyard.charts.plan import charts_for, default_charts_dir
    from stackyard.charts.run import ChartRun, clean
    from stackyard.errors import ToolError
    from stackyard.images import engine as docker_engine
    from stackyard.images.services import registry_password

    config = _config(args)
    reporter = ConsoleReporter()
    if args.clean:  # make down: what a killed run left on the engine (none is left on an engine that is not running)
        try:
            client = docker_engine.connect(config.images)
        except ToolError as exc:
            print(f"chart-verify: nothing removed: {exc.message}")
            return 0
        print(f"chart-verify: removed {clean(client, None, reporter)} containers, networks and volumes")
        return 0
    if not args.release:
        raise InputError("chart-verify needs --release (or --clean)")
    release = config.release(args.release)
    client = docker_engine.connect(config.images)
    charts_dir = Path(args.charts) if args.charts else default_charts_dir(config.paths.images)
    run = ChartRun(config, release, client, charts_dir, charts_for(args.projects), report=reporter,
                   runner=args.runner, password=registry_password(config.images))
    try:
        outcome = run.run()
    finally:
        rows = [[f"{r.chart} {r.step}", r.container or "-", r.state or "-", r.api or "-",
                 (r.detail or r.script)[:70], f"{r.seconds:.1f}"] for r in run.outcome.rows]
        print(table(["service / step", "container", "state", "API answered", "detail", "seconds"], rows))
    print(f"chart-verify {release.id}: {' '.join(outcome.charts)} passed in {outcome.seconds:.0f}s")
    print(f"record: {config.paths.output / 'charts' / release.id / 'chart-verify.json'}")
    return 0


def cmd_services(args: argparse.Namespace) -> int:
    from stackyard.images import services as local_services

    config = _config(args)
    statuses = local_services.up(config) if args.action == "up" else local_services.down(config)
    print(table(["service", "state", "where"], [[s.name, s.state, s.detail] for s in statuses]))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stackyard", description=__doc__)
    p.add_argument("--version", action="version", version=f"stackyard {__version__}")
    p.add_argument("--debug", action="store_true", default=bool(os.environ.get("STACKYARD_DEBUG")),
                   help="show the traceback of an error (also: STACKYARD_DEBUG=1)")
    p.add_argument("--config", default=os.environ.get("STACKYARD_CONFIG", "stackyard.toml"),
                   help="stackyard.toml to use (default: ./stackyard.toml or $STACKYARD_CONFIG)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("check", help="validate stackyard.toml and every recipe")
    s.set_defaults(func=cmd_check)

    req = sub.add_parser("requirements", help="per-release upstream inputs").add_subparsers(dest="action", required=True)
    s = req.add_parser("update", help="refresh upper-constraints, global-requirements and bindep")
    s.add_argument("--release", required=True)
    s.add_argument("--from", dest="origin",
                   help="openstack/requirements checkout or raw URL (default: the release's 'requirements_git', else 'upstream')")
    s.add_argument("--revision", metavar="COMMIT",
                   help="with the release's requirements_git: this commit of its branch (default: the branch's head)")
    s.set_defaults(func=cmd_requirements_update)
    s = req.add_parser("commit", help="commit the release's requirements and locks to [buildbot] pins_branch and push it")
    s.add_argument("--release", required=True)
    since_and_json(s)
    s.set_defaults(func=cmd_requirements_commit)

    s = command(sub, "lock", "compile per-project locks with hashes", cmd_lock, projects="*")
    s.add_argument("--force", action="store_true", help="recompile even if the inputs did not change")
    s.add_argument("--json", action="store_true",
                   help="print the results as JSON (project, packages, changed, pins_changed, pins_sha256, file)")

    s = command(sub, "pin", "move a recipe's upstream version for a release forward (e.g. to a new tag)", cmd_pin)
    s.add_argument("project", metavar="PROJECT")
    s.add_argument("version", metavar="VERSION")

    s = command(sub, "pin-commit", "commit a project's pin and lock to [buildbot] pins_branch and push it", cmd_pin_commit)
    s.add_argument("project", metavar="PROJECT")
    s.add_argument("--message", help="a paragraph added to the commit message (e.g. the build's URL)")
    since_and_json(s)

    s = command(sub, "wait-for", "wait until a new upstream version of a project is on the package index", cmd_wait_for)
    s.add_argument("project", metavar="PROJECT")
    s.add_argument("version", metavar="VERSION")
    s.add_argument("--attempts", type=int, default=15, help="attempts before giving up (default: 15)")
    s.add_argument("--delay", type=float, default=30,
                   help="seconds before the second attempt; doubling, at most 10x (default: 30)")

    s = command(sub, "bindep", "list or install the Debian build dependencies of a release", cmd_bindep, release=False)
    s.add_argument("--release", required=True, help="release id, series, or 'all'")
    s.add_argument("--install", action="store_true")

    s = command(sub, "wheels", "build the release's wheelhouse", cmd_wheels, projects="*")
    s.add_argument("--all", action="store_true", help="also every entry of upper-constraints")
    s.add_argument("--allow-fail", action="append", default=[], metavar="NAME", help="a package allowed to fail")

    command(sub, "wheels-deb", "package the wheelhouse as openstack-wheels-<release>", cmd_wheels_deb)

    s = command(sub, "deb", "build, lint and smoke-test venv-<project> packages", cmd_deb, projects="+")
    s.add_argument("--no-smoke", action="store_true", help="build only (the package cannot be published)")
    s.add_argument("--rebuild", action="store_true", help="build, lint and test again even if nothing it is made from changed")
    s.add_argument("--no-lint", action="store_true",
                   help="build only, no lintian and no smoke test (then: stackyard lintian, stackyard smoke)")
    s.add_argument("--check", action="store_true",
                   help="build nothing: say whether the inputs changed and what is left to do (build, lintian, smoke)")
    s.add_argument("--json", action="store_true", help="with --check: print it as JSON")

    command(sub, "lintian", "run lintian on the built venv-<project> package (after deb --no-lint)", cmd_lintian, projects="+")

    command(sub, "smoke", "smoke-test the built and linted venv-<project> package in a clean root", cmd_smoke, projects="+")

    command(sub, "publish", "put tested packages into <codename>-<release>-staging", cmd_publish, projects="*")

    s = command(sub, "promote", "copy packages from staging to <codename>-<release> and snapshot", cmd_promote, projects="*")
    s.add_argument("--force", metavar="REASON",
                   help="promote without a passing verify record for the staged versions; REASON goes into the snapshot's record")

    s = command(sub, "verify", "boot a bookworm machine, install the release's packages, run a control plane and a scenario", cmd_verify, release=False)
    s.add_argument("--release", help="the release whose staging (or, with --promoted, promoted) packages are installed")
    s.add_argument("projects", nargs="*", metavar="PROJECT",
                   help="default: keystone glance placement neutron nova python-openstackclient (what a project needs is added: nova needs glance, placement and neutron); cinder when named")
    s.add_argument("--promoted", action="store_true", help="install from <codename>-<release> instead of its staging")
    s.add_argument("--set", action="append", default=[], metavar="FILE:SECTION.KEY=VALUE",
                   help="change one option of a configuration file verify writes (repeatable)")
    s.add_argument("--upgrade", action="append", default=[], metavar="PROJECT=RELEASE",
                   help="after the scenario, upgrade PROJECT to RELEASE's package on the running control plane as "
                        "'apt-config --project' configures it, migrate, restart, and ask again (repeatable)")
    s.add_argument("--keep", action="store_true", help="keep the root after a passing verify too (until the next one)")
    s.add_argument("--again", action="store_true",
                   help="run even when the latest record passed with the very same packages (else: unchanged, nothing runs)")
    s.add_argument("--clean", action="store_true",
                   help="only kill a container a killed verify left, unmount and remove its root (every release without --release)")

    for name, help_, out_help in (
        ("apt-config", "the apt sources, pins and keyring for a release (deb822 .sources, .pref)",
         "write the files under DIR (/etc/apt/..., /usr/share/keyrings/...): --output / configures this host"),
        ("puppet-data", "write hiera YAML: apt::sources, apt::pins, the keyring and every package's exact version",
         "file to write (default: <output>/puppet/<release>.yaml)"),
    ):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--release", required=True, help="the release every package comes from")
        s.add_argument("--project", action="append", default=[], metavar="PROJECT=RELEASE",
                       help="take this project from another release (repeatable), e.g. keystone=2025.2")
        s.add_argument("--staging", action="store_true", help="the staging distributions instead of the promoted ones")
        s.add_argument("--url", help="the repository URL hosts use (default: [repo] url)")
        s.add_argument("--output", metavar="DIR" if name == "apt-config" else "FILE", help=out_help)
        s.set_defaults(func=cmd_apt_config if name == "apt-config" else cmd_puppet_data)

    s = command(sub, "image", "build openstack-helm images from the published debs (and push them)", cmd_image, projects="+")
    s.add_argument("--push", action="store_true", help="push to [images] registry: the dated tag, then the release tag")
    s.add_argument("--promoted", action="store_true", help="install from <codename>-<release> instead of its staging")

    s = command(sub, "helm-values", "write openstack-helm values overrides (images.tags, registry login)", cmd_helm_values)
    s.add_argument("--output", help="directory (default: <output>/helm/<release>)")
    s.add_argument("--by-digest", action="store_true",
                   help="reference images as repository@sha256:... (the pushed digest) instead of the dated tag")

    s = sub.add_parser("chart-verify", help="run the openstack-helm charts' scripts and configuration in containers "
                                            "from the pushed images, then the scenario")
    s.add_argument("--release", help="the release whose pushed images run")
    s.add_argument("projects", nargs="*", metavar="PROJECT",
                   help="charts (default: keystone glance placement nova; keystone is always there, nova brings glance and placement)")
    s.add_argument("--charts", help="openstack-helm charts directory (default: the vendored images/charts/openstack-helm)")
    s.add_argument("--clean", action="store_true",
                   help="only remove the containers, networks and volumes runs left (a killed run)")
    s.set_defaults(func=cmd_chart_verify)

    s = command(sub, "services", "start or stop the embedded Docker engine and registry (make up / make down)", cmd_services, release=False)
    s.add_argument("action", choices=["up", "down"])

    from stackyard.transfer_cli import add_commands  # scale-out: bundle, verify-artifact, receive, fetch/serve-wheelhouse

    add_commands(sub)
    return p


def main(argv: list[str] | None = None, *, runner: Runner | None = None) -> int:
    """``runner``: the tool runner of every command (default: stackyard.runner.RUNNER; unit tests pass a fake)."""
    args = parser().parse_args(argv)
    args.runner = runner if runner is not None else RUNNER
    if args.command == "wheels" and args.projects and args.all:
        print("stackyard: error: give PROJECT... or --all, not both", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except StackyardError as exc:  # the one mapping to exit codes
        if args.debug:
            traceback.print_exc()
        print(f"stackyard: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print("stackyard: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout went away (| head): nothing to report
        with contextlib.suppress(OSError, ValueError):  # no flush error at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # a bug: one line, the traceback only when asked for
        if args.debug:
            raise
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"stackyard: internal error: {type(exc).__name__}: {message[:1000]} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1
