"""The scale-out commands of ``stackyard`` (see stackyard.transfer): bundle, verify-artifact, receive,
fetch-wheelhouse, serve-wheelhouse."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path

from stackyard.cli import _config, _project, _release, command


def _say(args: argparse.Namespace, data: object, text: str) -> int:
    """``data`` as JSON with --json (what Buildbot's steps read), else ``text``. Indented: one value a line, as a
    Buildbot worker cuts a line of 4096 characters or more and loses a character at each cut (keystone's
    fetch-wheelhouse lists about 150 wheels)."""
    print(json.dumps(data, indent=1) if args.json else text)
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from stackyard.transfer import bundle

    config, release, recipe = _project(args)
    b = bundle(config, release, recipe, Path(args.out), args.wheels.split())
    return _say(args, {"bundle": b.path.name, "sha256": b.sha256, "package": b.package, "version": b.version, "deb": b.deb},
                f"{b.path} (sha256 {b.sha256}): {b.package} {b.version}")


def cmd_verify_artifact(args: argparse.Namespace) -> int:
    from stackyard.transfer import verify_sha256

    for f in args.files:
        print(f"ok: {f}: sha256 {verify_sha256(Path(f))}")
    return 0


def cmd_receive(args: argparse.Namespace) -> int:
    from stackyard.transfer import receive

    config, release = _release(args)
    b = receive(config, release, Path(args.file))
    print(f"received {b.package} {b.version} ({b.deb}, sha256 of the bundle {b.sha256} checked)")
    return 0


def cmd_fetch_wheelhouse(args: argparse.Namespace) -> int:
    from stackyard.transfer import fetch_wheelhouse

    config, release, recipe = _project(args)
    r = fetch_wheelhouse(config, release, recipe, args.url)
    return _say(args, r.as_json() | {"wheels_missing": " ".join(r.missing)},
                f"{r.url} has no wheel for: {', '.join(r.missing)} (build them: stackyard wheels --release {release.id} {recipe.name})"
                if r.missing else f"{recipe.name}: {len(r.fetched)} wheels fetched, {len(r.kept)} kept, from {r.url} into {r.wheelhouse}")


def cmd_serve_wheelhouse(args: argparse.Namespace) -> int:
    from stackyard.transfer import WheelhouseServer

    config = _config(args)
    server = WheelhouseServer(config.paths.output / "wheelhouse", args.host, args.port,
                              history=config.paths.output / "history").start()
    print(f"serving {config.paths.output / 'wheelhouse'} at {server.url}/ (Ctrl-C or SIGTERM stops)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


def cmd_share_history(args: argparse.Namespace) -> int:
    from stackyard.transfer import share_history

    config, release, recipe = _project(args)
    r = share_history(config, release, recipe)
    print(f"{r['package']} {r['version']}: its changelog (sha256 {r['sha256']}) is the history build workers continue from")
    return 0


def cmd_fetch_history(args: argparse.Namespace) -> int:
    from stackyard.transfer import fetch_history

    config, release, recipe = _project(args)
    r = fetch_history(config, release, recipe, args.url)
    return _say(args, r, {"none": f"{recipe.package}: never published for {release.id}",
                          "kept": f"{recipe.package}: the changelog here is the published {r['published']}'s or newer; kept",
                          "seeded": f"{recipe.package}: continues from the published {r['published']}"}[r["history"]])


def cmd_checkout(args: argparse.Namespace) -> int:
    from stackyard.pin_commit import checkout

    config = _config(args)
    r = checkout(config, revision=args.revision or None, contains=args.contains or None)
    return _say(args, {"checkout": r.commit, "checkout_branch": r.branch, "checkout_moved": r.moved},
                f"{r.commit} ({r.branch} of {r.remote})" + ("" if r.moved else ": already checked out"))


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    s = command(sub, "bundle", "pack a tested deb, its record and changelog for the publisher, with a .sha256 beside it", cmd_bundle)
    s.add_argument("project")
    s.add_argument("--out", required=True, help="directory the bundle and its .sha256 are written to")
    s.add_argument("--wheels", default="", help="space-separated name==version: wheels built here to send along (the "
                                                "central wheelhouse lacked them: fetch-wheelhouse's missing)")
    s.add_argument("--json", action="store_true")

    s = command(sub, "verify-artifact", "check files against the .sha256 beside each", cmd_verify_artifact, release=False)
    s.add_argument("files", nargs="+")

    s = command(sub, "receive", "check a bundle's sha256 and unpack its deb into this machine's var/ (the publisher)", cmd_receive)
    s.add_argument("file")

    s = command(sub, "fetch-wheelhouse", "get a project's locked wheels from the publisher's wheelhouse over HTTP", cmd_fetch_wheelhouse)
    s.add_argument("project")
    s.add_argument("--url", required=True, help="the server of 'stackyard serve-wheelhouse' (http://HOST:PORT)")
    s.add_argument("--json", action="store_true")

    s = command(sub, "share-history", "the publisher: keep the published changelog of a project for build workers",
                cmd_share_history)
    s.add_argument("project")

    s = command(sub, "fetch-history", "continue a project's changelog from the one the publisher published", cmd_fetch_history)
    s.add_argument("project")
    s.add_argument("--url", required=True, help="the server of 'stackyard serve-wheelhouse' (http://HOST:PORT)")
    s.add_argument("--json", action="store_true")

    s = command(sub, "checkout", "check out the configuration repository at [buildbot] pins_branch's tip (or a pin commit)",
                cmd_checkout, release=False)
    which = s.add_mutually_exclusive_group()
    which.add_argument("--revision", default="", help="exactly this commit (a tag build's pin commit)")
    which.add_argument("--contains", default="", help="the branch's tip, which must contain this commit")
    s.add_argument("--json", action="store_true")

    s = command(sub, "serve-wheelhouse", "serve every release's wheelhouse (PEP 503 index, manifest) read-only over HTTP", cmd_serve_wheelhouse, release=False)
    s.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1; 0.0.0.0 for build workers elsewhere)")
    s.add_argument("--port", type=int, default=8081)
