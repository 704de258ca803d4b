"""The ``stackyard`` command: parses arguments, calls the core, renders results.

Exit codes come from the exception hierarchy (stackyard.errors), here only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from stackyard import __version__
from stackyard.config import Config, Release, load_config
from stackyard.errors import BuildError, StackyardError
from stackyard.events import Outcome
from stackyard.recipes import load_recipes, select
from stackyard.render import ConsoleReporter, table


def _config(args: argparse.Namespace) -> Config:
    return load_config(Path(args.config))


def _releases(config: Config, name: str) -> list[Release]:
    return list(config.releases.values()) if name == "all" else [config.release(name)]


def cmd_check(args: argparse.Namespace) -> int:
    config = _config(args)
    recipes = load_recipes(config.paths.recipes)
    for recipe in recipes.values():
        for rid in recipe.versions:
            config.release(rid)
    print(f"{config.file}: {len(config.releases)} releases; {len(recipes)} recipes OK")
    return 0


def cmd_requirements_update(args: argparse.Namespace) -> int:
    from stackyard.http import Http
    from stackyard.upstream_requirements import update_requirements

    config = _config(args)
    release = config.release(args.release)
    origin = args.origin or release.upstream
    source = update_requirements(config, release, origin, Http(config.index.retries, config.index.timeout))
    print(f"{config.requirements_dir(release)}: updated from {source.origin} (commit {source.commit})")
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    from stackyard.lock import compile_lock

    config = _config(args)
    release = config.release(args.release)
    recipes = load_recipes(config.paths.recipes)
    rows = []
    for recipe in select(recipes, args.projects, config.paths.recipes):
        print(f"==> lock {recipe.name} {recipe.version(release.id)} ({release.id})", file=sys.stderr, flush=True)
        result = compile_lock(config, release, recipe, force=args.force)
        rows.append([result.project, str(result.packages), "changed" if result.changed else "unchanged",
                     f"{result.seconds:.1f}", str(result.file.relative_to(config.paths.root))])
    print(table(["project", "packages", "lock", "seconds", "file"], rows))
    return 0


def cmd_bindep(args: argparse.Namespace) -> int:
    from stackyard import bindep

    config = _config(args)
    for release in _releases(config, args.release):
        file = config.requirements_dir(release) / "bindep.txt"
        packages = bindep.packages_for(bindep.parse_bindep(file.read_text(), file), release.codename)
        if args.install:
            installed = bindep.ensure_installed(packages, file)
            print(f"{release.id}: {len(packages)} build dependencies present" + (f", installed {' '.join(installed)}" if installed else ""))
        else:
            print(" ".join(packages))
    return 0


def cmd_wheels(args: argparse.Namespace) -> int:
    from stackyard import bindep
    from stackyard.wheelhouse import build_wheelhouse

    config = _config(args)
    release = config.release(args.release)
    recipes = load_recipes(config.paths.recipes)
    chosen = select(recipes, args.projects, config.paths.recipes) if args.projects else []
    if not args.projects and not args.all:
        from stackyard.lock import lock_path

        chosen = [r for r in recipes.values() if lock_path(config, release, r.name).exists()]
    bindep_file = config.requirements_dir(release) / "bindep.txt"
    bindep.ensure_installed(bindep.packages_for(bindep.parse_bindep(bindep_file.read_text(), bindep_file), release.codename), bindep_file)
    result = build_wheelhouse(
        config, release, chosen, upper_constraints=args.all, reporter=ConsoleReporter(), allowed_failures=set(args.allow_fail)
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
    from stackyard.wheels_deb import build_wheels_deb

    config = _config(args)
    release = config.release(args.release)
    result = build_wheels_deb(config, release)
    print(table(["package", "version", "architecture", "wheels", "file"],
                [[result.package, result.version, result.architecture, str(result.wheels), str(result.file)]]))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stackyard", description=__doc__)
    p.add_argument("--version", action="version", version=f"stackyard {__version__}")
    p.add_argument("--config", default=os.environ.get("STACKYARD_CONFIG", "stackyard.toml"),
                   help="stackyard.toml to use (default: ./stackyard.toml or $STACKYARD_CONFIG)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("check", help="validate stackyard.toml and every recipe")
    s.set_defaults(func=cmd_check)

    req = sub.add_parser("requirements", help="per-release upstream inputs").add_subparsers(dest="action", required=True)
    s = req.add_parser("update", help="refresh upper-constraints, global-requirements and bindep")
    s.add_argument("--release", required=True)
    s.add_argument("--from", dest="origin", help="openstack/requirements checkout or raw URL (default: the release's 'upstream')")
    s.set_defaults(func=cmd_requirements_update)

    s = sub.add_parser("lock", help="compile per-project locks with hashes")
    s.add_argument("--release", required=True)
    s.add_argument("projects", nargs="*", metavar="PROJECT")
    s.add_argument("--force", action="store_true", help="recompile even if the inputs did not change")
    s.set_defaults(func=cmd_lock)

    s = sub.add_parser("bindep", help="list or install the Debian build dependencies of a release")
    s.add_argument("--release", required=True, help="release id, series, or 'all'")
    s.add_argument("--install", action="store_true")
    s.set_defaults(func=cmd_bindep)

    s = sub.add_parser("wheels", help="build the release's wheelhouse")
    s.add_argument("--release", required=True)
    s.add_argument("projects", nargs="*", metavar="PROJECT")
    s.add_argument("--all", action="store_true", help="also every entry of upper-constraints")
    s.add_argument("--allow-fail", action="append", default=[], metavar="NAME", help="a package allowed to fail")
    s.set_defaults(func=cmd_wheels)

    s = sub.add_parser("wheels-deb", help="package the wheelhouse as openstack-wheels-<release>")
    s.add_argument("--release", required=True)
    s.set_defaults(func=cmd_wheels_deb)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "wheels" and args.projects and args.all:
        print("stackyard: error: give PROJECT... or --all, not both", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except StackyardError as exc:
        print(f"stackyard: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("stackyard: interrupted", file=sys.stderr)
        return 130
