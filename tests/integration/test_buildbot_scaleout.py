"""Scale-out with real processes on loopback: a master, a publisher and two build workers, each machine a clone of
the configuration repository in a root of its own (no shared directory; every var/ starts empty), a local git
upstream per project.

The publisher alone has the apt repository and its signing key; it makes the release's wheelhouse and serves it
over HTTP (stackyard serve-wheelhouse). Build workers get the locked wheels from there, build, lint and
smoke-test the deb and send it, with its sha256, through the master to the publisher (Buildbot's FileUpload and
FileDownload), which checks it again and publishes it to staging.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from builders.ctl import create_worker
from stackyard.config import load_config
from stackyard.images.build import read_record
from stackyard.images.registry import Registry
from stackyard.images.services import registry_password
from stackyard.rootfs import rootfs_tarball
from stackyard.wheels.upstream_requirements import FILES
from tests.conftest import ROOT, Workspace, free_port, images_toml
from tests.fixtures import projects
from tests.fixtures.index_server import IndexServer
from tests.integration.buildbot_harness import BIN, Api, Upstream, ctl, git, notifying_repo
from tests.integration.conftest import make_workspace

pytestmark = pytest.mark.integration

RELEASE = "2025.1"
PINS = "stackyard/pins"
LOCK = f"requirements/{RELEASE}/locks/tinyapp.txt"
MACHINES = ("publisher", "build1", "build2")


def renamed_sdist(out: Path, name: str, version: str) -> Path:
    """tinyapp's sdist with every 'tinyapp' (paths, code, console scripts) renamed ``name``: a second project."""
    (out / "tmp").mkdir(parents=True, exist_ok=True)
    source = projects.tinyapp(out / "tmp", version)
    sdist = out / f"{name}-{version}.tar.gz"
    with tarfile.open(source) as src, tarfile.open(sdist, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            member.name = member.name.replace("tinyapp", name)
            if data is not None:
                data = data.replace(b"tinyapp", name.encode())
                member.size = len(data)
                dst.addfile(member, io.BytesIO(data))
            else:
                dst.addfile(member)
    shutil.rmtree(out / "tmp")
    return sdist


@dataclass
class Project(Upstream):
    """A fixture project named ``name``: tinyapp's source renamed."""

    def sdist(self, version: str) -> Path:
        return renamed_sdist(self.work.parent, self.name, version)


def recipe(name: str, url: str) -> str:
    return textwrap.dedent(f"""\
        name: {name}
        description: a tiny fixture project
        source:
          git: {url}
        versions:
          "{RELEASE}": "1.0"
        console_scripts: [{name}]
        smoke:
          - {name} --version
        """)


def scale_out_table(web: int, pb: int, wheelhouse: int) -> str:
    return textwrap.dedent(f"""
        [buildbot]
        web_port = {web}
        worker_port = {pb}
        poll_interval = 3600
        images = true
        requirements_update = false
        verify = false
        releases_repo = ""
        pins_branch = "{PINS}"
        wheelhouse_url = "http://127.0.0.1:{wheelhouse}"
        [[buildbot.workers]]
        name = "publisher"
        roles = ["publish"]
        max_builds = 2
        [[buildbot.workers]]
        name = "build1"
        roles = ["build"]
        max_builds = 1
        [[buildbot.workers]]
        name = "build2"
        roles = ["build"]
        max_builds = 1
        [[buildbot.users]]
        name = "admin"
        """)


def clean_env(config: Path) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {
        "STACKYARD_CONFIG": str(config), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}


@dataclass
class Cluster:
    base: Path
    api: Api
    url: str
    admin_password: str
    master: Workspace
    machines: dict[str, Workspace]
    upstreams: dict[str, Project]
    configuration: Path
    index: IndexServer
    wheelhouse_port: int
    requirements: Path  # a working copy of the polled openstack/requirements (pushes go to its bare repository)
    server: subprocess.Popen | None = None  # type: ignore[type-arg]

    @property
    def log(self) -> Path:
        return self.master.root / "var" / "buildbot" / "twistd.log"

    def staging(self) -> str:
        repo = self.machines["publisher"].root / "var" / "repo"
        if not repo.exists():
            return ""
        return subprocess.run(["reprepro", "-b", str(repo), "list", f"bookworm-{RELEASE}-staging"],
                              capture_output=True, text=True, check=True).stdout

    def serve(self) -> None:
        publisher = self.machines["publisher"]
        self.server = subprocess.Popen([sys.executable, "-m", "stackyard", "--config", str(publisher.config), "serve-wheelhouse",
                                        "--port", str(self.wheelhouse_port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True, env=clean_env(publisher.config))
        assert self.server.stdout is not None
        line = self.server.stdout.readline()
        assert f"at http://127.0.0.1:{self.wheelhouse_port}/" in line, line

    def stop_serving(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=30)
            self.server = None

    def worker_of(self, build: dict) -> str:  # type: ignore[type-arg]
        return str(self.api.get(f"workers/{build['workerid']}")["workers"][0]["name"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, index: IndexServer, docker_engine: str) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("scaleout")
    web, pb, wheelhouse = free_port(), free_port(), free_port()
    url = f"http://127.0.0.1:{web}/"
    upstreams = {}
    for name in ("tinyapp", "tinytool"):
        work, bare = notifying_repo(base / "upstream" / f"{name}-work", base / "upstream" / f"{name}.git",
                                    f"{url}change_hook/poller?poller=tags-{name}")
        upstreams[name] = Project(work, bare, name)
        upstreams[name].release("1.0", "1.0")

    # the configuration repository: stackyard.toml, recipes and their locks; every machine clones it
    template = make_workspace(base / "template", index.url, base / "unused-cache")
    # openstack/requirements, polled: its branch starts where the configuration's inputs are
    requirements, requirements_bare = notifying_repo(base / "requirements-work", base / "requirements.git",
                                                     f"{url}change_hook/poller?poller=requirements-{RELEASE}")
    for name in FILES:
        (requirements / name).write_text((template.root / "requirements" / RELEASE / name).read_text())
    git(requirements, "add", "-A")
    git(requirements, "commit", "-q", "-m", "the requirements of the test")
    git(requirements, "push", "-q", "origin", f"HEAD:refs/heads/stable/{RELEASE}")
    text = template.config.read_text()
    assert text.count('series = "epoxy"\n') == 1
    text = text.replace('series = "epoxy"\n', f'series = "epoxy"\nrequirements_git = "{requirements_bare.as_uri()}"\n')
    text = re.sub(r'(?m)^cache = ".*"$', 'cache = "cache"', text)  # each machine its own
    text = re.sub(r'(?m)^gnupg_home = ".*"$', 'gnupg_home = "var/gnupg"', text)  # the publisher's signing key
    # images: the session's engine, a registry on the publisher (its credentials are made there, by services up)
    template.config.write_text(text + scale_out_table(web, pb, wheelhouse) + images_toml(docker_engine))
    shutil.copytree(ROOT / "images", template.root / "images")
    for name, up in upstreams.items():
        (template.root / "recipes" / f"{name}.yaml").write_text(recipe(name, up.url))
    (template.root / ".gitignore").write_text("/var/\n/cache/\n")
    template.run("lock", "--release", RELEASE, "tinyapp", "tinytool")
    configuration = base / "configuration.git"
    subprocess.run(["git", "init", "-q", "--bare", str(configuration)], check=True)
    git(template.root, "init", "-q", "-b", "main")
    git(template.root, "add", "-A")
    git(template.root, "commit", "-q", "-m", "the configuration")
    git(template.root, "push", "-q", str(configuration), "main")

    def clone(name: str) -> Workspace:
        subprocess.run(["git", "clone", "-q", "-b", "main", str(configuration), str(base / name / "root")], check=True)
        return Workspace(base / name / "root")

    master = clone("master")
    machines = {name: clone(name) for name in MACHINES}
    # the publisher makes the release's wheelhouse (tinyapp's and tinytool's locks) and serves it
    machines["publisher"].run("wheels", "--release", RELEASE, "tinyapp", "tinytool")
    # test speed only: each build worker's smoke test root comes from its own copy of one mmdebstrap tarball
    config = load_config(master.config)
    seed = rootfs_tarball(base / "seed-cache", config.codenames["bookworm"], base / "seed-cache" / "mmdebstrap.log")
    for name in MACHINES:
        (machines[name].root / "cache" / "rootfs").mkdir(parents=True)
        shutil.copy2(seed, machines[name].root / "cache" / "rootfs" / seed.name)
    assert not any((machines[n].root / "var").exists() for n in ("build1", "build2"))  # a build worker's var/ starts empty

    c = Cluster(base, Api(url), url, "", master, machines, upstreams, configuration, index, wheelhouse, requirements)
    workers: list[Path] = []
    machines["publisher"].run("services", "up")  # the registry (TLS, htpasswd) and its password: the publisher's alone
    r = ctl(master, "up")  # the master only: no worker here is named "local"
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        c.serve()
        secrets = master.root / "var" / "buildbot" / "secrets"
        c.admin_password = (secrets / "user-admin").read_text().strip()
        for name in MACHINES:
            ws = machines[name]
            wdir = base / name / "worker"
            env = clean_env(ws.config)
            create_worker(wdir, f"127.0.0.1:{pb}", name, (secrets / f"worker-{name}").read_text().strip(), env,
                          base / name / "worker-ctl.log")
            subprocess.run([str(BIN / "buildbot-worker"), "start", str(wdir)], env=env, check=True, capture_output=True, cwd=ws.root)
            workers.append(wdir)
        deadline = time.monotonic() + 90
        while sum(bool(w["connected_to"]) for w in c.api.get("workers")["workers"]) < len(MACHINES):
            assert time.monotonic() < deadline, c.api.get("workers")
            time.sleep(0.5)
        wait_log(c, "tags-tinytool: 1 existing tags")
        wait_log(c, "tags-tinyapp: 1 existing tags")
        wait_log(c, f"requirements-{RELEASE}: first read of {requirements_bare.as_uri()} stable/{RELEASE} at")
        c.api.login("admin", c.admin_password)
        yield c
    finally:
        for wdir in workers:
            subprocess.run([str(BIN / "buildbot-worker"), "stop", str(wdir)], capture_output=True, check=False)
        c.stop_serving()
        for ws in machines.values():  # the gpg-agents the signing keys' gpg started
            if (ws.root / "var" / "gnupg").is_dir():
                subprocess.run(["gpgconf", "--homedir", str(ws.root / "var" / "gnupg"), "--kill", "gpg-agent"], check=False,
                               capture_output=True)
        machines["publisher"].run("services", "down", check=False)
        down = ctl(master, "down")
        assert down.returncode == 0, down.stdout + down.stderr


def wait_log(c: Cluster, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in c.log.read_text(errors="replace"):
        assert time.monotonic() < deadline, c.log.read_text()[-3000:]
        time.sleep(0.5)


def failed_logs(c: Cluster, build: dict, nested: bool = False) -> str:  # type: ignore[type-arg]
    """The steps of ``build`` and the logs of its first failed step (of the publish build it triggered, if that failed)."""
    steps = c.api.steps(build)
    bad = [n for n, s in steps.items() if s not in ("success", "skipped", "warnings")]
    said = [str(steps)]
    for name in bad[:1]:
        said += [f"--- {name}: {log}\n{text[-3000:]}" for log, text in c.api.step_logs(build, name).items()]
    for publish in [] if nested else c.api.builds(f"publish-{RELEASE}"):
        if publish["results"] not in (0, None):
            said.append(failed_logs(c, publish, nested=True))
    return "\n".join(said)


def test_a_build_worker_with_an_empty_var_builds_from_the_publishers_wheelhouse_over_http(cluster: Cluster) -> None:
    c = cluster
    asked = len(c.index.requests)
    r = c.api.force("force-tinyapp-2025_1", f"tinyapp-{RELEASE}", release=RELEASE, project="tinyapp", version="")
    assert r.status_code == 200 and "error" not in r.json(), r.text
    build = c.api.wait_build(f"tinyapp-{RELEASE}", 1, timeout=1200)
    assert build["results"] == 0, failed_logs(c, build)
    steps = {k: v for k, v in c.api.steps(build).items() if k not in ("pin", "pin commit", "checkout pin commit")}  # no new version
    assert steps == {"checkout": "success", "lock": "success", "wheelhouse": "success", "wheels": "skipped",
                     "published history": "success", "inputs unchanged?": "success",
                     "deb build": "success", "lintian": "warnings", "smoke test": "success", "bundle": "success",
                     "upload": "success", "upload sha256": "success", "check on the master": "success", "publish": "success"}
    assert c.index.requests[asked:] == []  # no package index was asked: every wheel came from the publisher
    worker = c.worker_of(build)
    assert worker in ("build1", "build2")
    props = c.api.properties(build)
    assert props["url"].startswith(f"http://127.0.0.1:{c.wheelhouse_port}/{RELEASE}/bookworm-"), props["url"]
    assert "tinyapp-1.0-" in props["fetched"] and props["wheels_missing"] == ""
    # the publisher published it; the build worker has no reprepro base and not the repository's signing key (the
    # smoke test signs its throwaway flat repository with a key the worker makes for itself)
    assert "venv-tinyapp 1.0-2025.1.1" in c.staging(), c.staging()
    built = c.machines[worker].root / "var"
    publisher = c.machines["publisher"].root / "var"
    assert not (built / "repo" / "conf").exists() and not (built / "repo" / "db").exists()
    assert (publisher / "repo" / "conf").exists()
    keyring = "stackyard-archive-keyring.asc"
    assert (built / "repo" / keyring).read_text() != (publisher / "repo" / keyring).read_text()
    assert "ok: " in c.api.step_log(build, "check on the master")  # the master checked the sum
    (publish,) = c.api.builds(f"publish-{RELEASE}")
    assert c.worker_of(publish) == "publisher" and publish["results"] == 0
    assert c.api.steps(publish) == {"checkout": "success", "download": "success", "download sha256": "success", "receive": "success",
                                    "publish": "success", "share history": "success", "image": "success"}
    assert props["history"] == "none"  # never published before: the revision starts at .1
    assert "sha256 of the bundle" in c.api.step_log(publish, "receive")


def test_two_tags_at_once_build_on_both_workers_in_parallel_and_land_in_staging_and_in_git(cluster: Cluster) -> None:
    c = cluster
    before = {name: len(c.api.builds(f"{name}-{RELEASE}")) for name in c.upstreams}
    started = time.monotonic()
    for up in c.upstreams.values():  # pushed together: each push's hook polls its project's tags
        up.release("1.1", "1.1")
    builds = {name: c.api.wait_build(f"{name}-{RELEASE}", before[name] + 1, timeout=1800) for name in c.upstreams}
    seconds = time.monotonic() - started
    print(f"\ntwo tags to two debs in staging through the publisher: {seconds:.0f}s")
    for build in builds.values():
        assert build["results"] == 0, failed_logs(c, build)
    a, b = builds.values()
    assert {c.worker_of(a), c.worker_of(b)} == {"build1", "build2"}  # one on each
    assert a["started_at"] < b["complete_at"] and b["started_at"] < a["complete_at"]  # at the same time
    staging = c.staging()
    assert "venv-tinyapp 1.1-2025.1.1" in staging and "venv-tinytool 1.1-2025.1.1" in staging, staging
    # both images in the registry, built and pushed by the publisher from the debs it published; only it has the
    # registry's password
    config = load_config(c.machines["publisher"].config)
    registry = Registry(config.images, registry_password(config.images))
    for name in c.upstreams:
        record = read_record(config, config.release(RELEASE), name)
        assert record is not None and record.version == "1.1-2025.1.1", record
        assert registry.digest(name, f"{RELEASE}-debian_bookworm") == record.digest
    for name in ("build1", "build2"):
        worker_config = load_config(c.machines[name].config)
        assert not worker_config.images.password_file.exists()
        assert not (c.machines[name].root / "var" / "images").exists()
    # the configuration repository has both pin commits, each named in its build's properties; none lost
    log = git(c.configuration, "log", "--format=%H %s", f"refs/heads/{PINS}")
    for name, build in builds.items():
        commit = c.api.properties(build)["pin_commit"]
        assert f"{commit} {name} 1.1 for {RELEASE}: pin and lock" in log, log
        assert '"2025.1": "1.1"' in git(c.configuration, "show", f"{PINS}:recipes/{name}.yaml")
        assert c.api.steps(build)["wheels"] == "success"  # the tag's own source: built on the worker
        # the worker built the pin commit itself: checked out exactly, and the deb's recorded lock is that commit's
        props = c.api.properties(build)
        assert props["checkout"] == commit
        worker_root = c.machines[c.worker_of(build)].root
        assert git(worker_root, "rev-parse", "HEAD").strip() == commit
        lock = next(f for f in props["pin_files"].split() if "/locks/" in f)
        committed = git(c.configuration, "show", f"{commit}:{lock}")
        published = (c.machines["publisher"].root / "var" / "debs" / RELEASE / "changelogs" / f"venv-{name}.changelog").read_text()
        recorded = re.search(r"lock sha256:\s+([0-9a-f]{64})", published)
        assert recorded and recorded[1] == hashlib.sha256(committed.encode()).hexdigest(), published[:800]
        # the publisher published from the branch's tip, which holds that pin commit
        publish = next(p for p in c.api.builds(f"publish-{RELEASE}") if c.api.properties(p).get("pin_commit") == commit)
        git(c.configuration, "merge-base", "--is-ancestor", commit, c.api.properties(publish)["checkout"])  # raises if not
    # the wheels each worker built for its tag (the central wheelhouse lacked them) are merged into the central one
    central = c.machines["publisher"].root / "var" / "wheelhouse" / RELEASE
    (wheelhouse,) = [d for d in central.iterdir() if not d.name.startswith(".")]
    manifest = json.loads((wheelhouse / "manifest.json").read_text())
    sums = (wheelhouse / "SHA256SUMS").read_text()
    for name, build in builds.items():
        (merged,) = [w for w in manifest["wheels"] if w["name"] == name and w["version"] == "1.1"]
        built = next((c.machines[c.worker_of(build)].root / "var" / "wheelhouse" / RELEASE).glob(f"*/{merged['filename']}"))
        assert hashlib.sha256(built.read_bytes()).hexdigest() == merged["sha256"]
        assert hashlib.sha256((wheelhouse / merged["filename"]).read_bytes()).hexdigest() == merged["sha256"]
        assert f"{merged['sha256']}  {merged['filename']}\n" in sums
        assert f"{merged['filename']}#sha256={merged['sha256']}" in (wheelhouse / "simple" / name / "index.html").read_text()
        assert merged["merged_from"] == f"venv-{name}_1.1-2025.1.1.bundle.tar"
    assert len(sums.splitlines()) == len(manifest["wheels"]) == len({w["filename"] for w in manifest["wheels"]})
    # both bundles passed the master on their way
    artifacts = sorted(p.name for p in (c.master.root / "var" / "buildbot" / "artifacts" / RELEASE).iterdir())
    assert {"venv-tinyapp_1.1-2025.1.1.bundle.tar", "venv-tinytool_1.1-2025.1.1.bundle.tar"} <= set(artifacts), artifacts


def test_a_build_worker_with_an_empty_var_continues_the_published_revision_from_the_pins_branchs_tip(
        cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    # an operator changes tinyapp's packaging on the pins branch; no worker's clone has it
    edit = tmp_path / "edit"
    subprocess.run(["git", "clone", "-q", "-b", PINS, str(c.configuration), str(edit)], check=True)
    recipe_file = edit / "recipes" / "tinyapp.yaml"
    recipe_file.write_text(recipe_file.read_text().replace("a tiny fixture project", "a tiny fixture project, repackaged"))
    git(edit, "commit", "-q", "-am", "tinyapp: packaging changed")
    git(edit, "push", "-q", "origin", f"HEAD:{PINS}")
    tip = git(edit, "rev-parse", "HEAD").strip()
    assert "venv-tinyapp 1.1-2025.1.1" in c.staging()
    for name in ("build1", "build2"):  # no build worker has a changelog of its own any more
        shutil.rmtree(c.machines[name].root / "var" / "debs", ignore_errors=True)
    number = len(c.api.builds(f"tinyapp-{RELEASE}")) + 1
    r = c.api.force("force-tinyapp-2025_1", f"tinyapp-{RELEASE}", release=RELEASE, project="tinyapp", version="")
    assert r.status_code == 200 and "error" not in r.json(), r.text
    build = c.api.wait_build(f"tinyapp-{RELEASE}", number, timeout=1200)
    assert build["results"] == 0, failed_logs(c, build)
    props = c.api.properties(build)
    assert props["checkout"] == tip  # the branch's tip, not the worker's stale clone
    assert props["history"] == "seeded" and props["published"] == "1.1-2025.1.1"
    # tinyapp 1.1's wheel, built by a worker for the tag, now comes from the central wheelhouse: nothing is built
    assert props["wheels_missing"] == "" and c.api.steps(build)["wheels"] == "skipped"
    staging = c.staging()
    assert "venv-tinyapp 1.1-2025.1.2" in staging, staging  # the next revision, not .1 again with other bytes
    changelog = (c.machines["publisher"].root / "var" / "debs" / RELEASE / "changelogs" / "venv-tinyapp.changelog").read_text()
    assert re.findall(r"^venv-tinyapp \((1\.1-2025\.1\.\d)\)", changelog, re.M) == ["1.1-2025.1.2", "1.1-2025.1.1"], changelog


def test_a_worker_wheel_whose_name_and_version_the_wheelhouse_has_with_other_bytes_is_refused_naming_both(
        cluster: Cluster, tmp_path: Path) -> None:
    from stackyard.transfer import write_sha256

    c = cluster
    artifacts = c.master.root / "var" / "buildbot" / "artifacts" / RELEASE
    source = artifacts / "venv-tinytool_1.1-2025.1.1.bundle.tar"
    bundle = tmp_path / source.name
    with tarfile.open(source) as src, tarfile.open(bundle, "w") as dst:  # the same bundle, its wheel rebuilt other bytes
        entries = json.loads(src.extractfile("wheels/wheels.json").read())  # type: ignore[union-attr]
        (entry,) = entries
        other = src.extractfile(f"wheels/{entry['filename']}").read() + b"\0"  # type: ignore[union-attr]
        theirs = entry["sha256"]
        entry["sha256"] = hashlib.sha256(other).hexdigest()
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "wheels/wheels.json":
                data = json.dumps(entries).encode()
            elif member.name.endswith(".whl"):
                data = other
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    write_sha256(bundle)
    publisher = c.machines["publisher"]
    central = publisher.root / "var" / "wheelhouse" / RELEASE
    before = {p: p.read_bytes() for p in central.rglob("*") if p.is_file()}
    debs = sorted(p.name for p in (publisher.root / "var" / "debs" / RELEASE).rglob("*"))
    r = publisher.run("receive", "--release", RELEASE, str(bundle), check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    said = " ".join(r.stderr.split())
    assert f"{entry['filename']} (sha256 {entry['sha256']})" in said and f"as {entry['filename']} with other bytes (sha256 {theirs})" in said, said
    assert {p: p.read_bytes() for p in central.rglob("*") if p.is_file()} == before  # nothing merged
    assert sorted(p.name for p in (publisher.root / "var" / "debs" / RELEASE).rglob("*")) == debs  # nothing received


def test_a_damaged_bundle_is_refused_by_the_publisher_and_nothing_is_published(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    artifacts = c.master.root / "var" / "buildbot" / "artifacts" / RELEASE
    bundle = tmp_path / "venv-tinyapp_1.0-2025.1.1.bundle.tar"
    shutil.copy2(artifacts / bundle.name, bundle)
    shutil.copy2(artifacts / (bundle.name + ".sha256"), tmp_path)
    data = bytearray(bundle.read_bytes())
    data[2000] ^= 0xFF
    bundle.write_bytes(bytes(data))
    publisher = c.machines["publisher"]
    debs = publisher.root / "var" / "debs" / RELEASE
    listing = sorted(p.name for p in debs.rglob("*"))
    r = publisher.run("receive", "--release", RELEASE, str(bundle), check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert re.search(rf"{bundle}: sha256 [0-9a-f]{{64}} differs from [0-9a-f]{{64}} in {bundle.name}.sha256", r.stderr), r.stderr
    assert sorted(p.name for p in debs.rglob("*")) == listing


def test_a_worker_that_cannot_reach_the_wheelhouse_fails_naming_the_url_is_retried_on_the_other_and_nothing_is_published(
        cluster: Cluster) -> None:
    c = cluster
    c.stop_serving()
    try:
        before = c.staging()
        number = len(c.api.builds(f"tinytool-{RELEASE}")) + 1
        publishes = len(c.api.builds(f"publish-{RELEASE}"))
        r = c.api.force("force-tinytool-2025_1", f"tinytool-{RELEASE}", release=RELEASE, project="tinytool", version="")
        assert r.status_code == 200 and "error" not in r.json(), r.text
        first = c.api.wait_build(f"tinytool-{RELEASE}", number, timeout=600)
        assert first["results"] == 5, c.api.steps(first)  # RETRY: Buildbot requeues the request ...
        second = c.api.wait_build(f"tinytool-{RELEASE}", number + 1, timeout=600)
        assert {c.worker_of(first), c.worker_of(second)} == {"build1", "build2"}  # ... and another worker takes it
        assert second["results"] == 2, c.api.steps(second)  # every build worker tried: the build fails
        assert second["buildrequestid"] == first["buildrequestid"]
        for build in (first, second):
            steps = c.api.steps(build)
            assert steps["wheelhouse"] in ("failure", "retry") and "publish" not in steps and "deb build" not in steps, steps
            said = c.api.step_log(build, "wheelhouse")
            assert f"the wheelhouse at http://127.0.0.1:{c.wheelhouse_port}/{RELEASE}/" in said, said
            assert "Traceback" not in said
        assert c.staging() == before and len(c.api.builds(f"publish-{RELEASE}")) == publishes
    finally:
        c.serve()


def test_a_wheel_damaged_on_the_wheelhouse_server_is_refused_and_nothing_is_written(cluster: Cluster, tmp_path: Path) -> None:
    from stackyard.transfer import WheelhouseServer

    c = cluster
    served = tmp_path / "served" / "wheelhouse"
    shutil.copytree(c.machines["publisher"].root / "var" / "wheelhouse", served, symlinks=True)
    (current,) = [d for d in (served / RELEASE).iterdir() if d.is_symlink()]  # the generation the wheelhouse is now
    (wheel,) = current.resolve().glob("tinypure-*.whl")
    wheel.write_bytes(wheel.read_bytes() + b"damaged")
    subprocess.run(["git", "clone", "-q", "-b", "main", str(c.configuration), str(tmp_path / "fresh")], check=True)
    fresh = Workspace(tmp_path / "fresh")
    server = WheelhouseServer(served, "127.0.0.1", 0).start()
    try:
        r = fresh.run("fetch-wheelhouse", "--release", RELEASE, "tinyapp", "--url", server.url, check=False)
    finally:
        server.stop()
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert wheel.name in r.stderr and "sha256" in r.stderr, r.stderr
    assert not (fresh.root / "var" / "wheelhouse" / RELEASE).exists() or not any(
        (fresh.root / "var" / "wheelhouse" / RELEASE).glob("*/manifest.json"))


def test_an_upper_constraints_move_is_locked_and_committed_by_the_publisher_and_rebuilt_by_the_build_workers(
        cluster: Cluster) -> None:
    c = cluster
    before = {name: len(c.api.builds(f"{name}-{RELEASE}")) for name in c.upstreams}
    tip = git(c.configuration, "rev-parse", f"refs/heads/{PINS}").strip()
    uc = (c.requirements / "upper-constraints.txt").read_text()
    assert "tinypure===1.0\n" in uc
    (c.requirements / "upper-constraints.txt").write_text(uc.replace("tinypure===1.0", "tinypure===1.1"))
    git(c.requirements, "commit", "-q", "-am", "tinypure 1.1")
    git(c.requirements, "push", "-q", "origin", f"HEAD:refs/heads/stable/{RELEASE}")  # the hook polls
    moved = git(c.requirements, "rev-parse", "HEAD").strip()
    # another build re-locks tinyapp on the branch after the wheels build's checkout, before its commit (a tag build
    # of tinyapp, say): the commit is refused, and Buildbot builds the request again from the new tip
    deadline = time.monotonic() + 600
    while not [b for b in c.api.builds(f"wheels-{RELEASE}") if c.api.steps(b).get("checkout") == "success"]:
        assert time.monotonic() < deadline, c.api.builds(f"wheels-{RELEASE}")
        time.sleep(0.1)
    other = c.base / "other-build"
    git(c.base, "clone", "-q", "-b", PINS, str(c.configuration), str(other))
    (other / LOCK).write_text((other / LOCK).read_text() + "# made by another build\n")
    git(other, "commit", "-q", "-am", "tinyapp: another build's lock")
    git(other, "push", "-q", "origin", f"HEAD:refs/heads/{PINS}")
    theirs = git(other, "rev-parse", "HEAD").strip()
    refused = c.api.wait_build(f"wheels-{RELEASE}", 1, timeout=1200)
    assert refused["results"] == 5, failed_logs(c, refused)  # RETRY: the same request, built again
    assert c.api.steps(refused)["requirements commit"] == "retry"
    said = c.api.step_logs(refused, "requirements commit")["stdio"]
    assert f"{PINS} of origin changed {LOCK} after {tip} (this build's checkout)" in said, said
    wheels = c.api.wait_build(f"wheels-{RELEASE}", 2, timeout=1200)
    assert wheels["results"] == 0, failed_logs(c, wheels)
    assert wheels["buildrequestid"] == refused["buildrequestid"]
    assert c.worker_of(wheels) == "publisher"  # the central wheelhouse's
    assert c.api.steps(wheels) == {"checkout": "success", "requirements": "success", "lock": "success",
                                   "requirements commit": "success", "wheels": "success", "wheels-deb": "success",
                                   "rebuild and promote": "success"}
    props = c.api.properties(wheels)
    tip = theirs  # the new checkout: the other build's lock, which this one's re-lock replaces
    assert props["checkout"] == tip and props["changed_projects"] == "tinyapp tinytool"
    # the publisher re-locked on the branch's tip and committed the inputs and the locks there, on top of it
    commit = props["pin_commit"]
    assert git(c.configuration, "rev-parse", f"{commit}^").strip() == tip
    assert "tinypure===1.1" in git(c.configuration, "show", f"{commit}:requirements/{RELEASE}/upper-constraints.txt")
    assert f"commit: {moved}" in git(c.configuration, "show", f"{commit}:requirements/{RELEASE}/SOURCE")
    for name in c.upstreams:
        assert "tinypure==1.1" in git(c.configuration, "show", f"{commit}:requirements/{RELEASE}/locks/{name}.txt")
    # both projects were rebuilt by the build workers from that commit, published by the publisher, then promoted
    rebuild = c.api.wait_build(f"rebuild-{RELEASE}", 1, timeout=1800)
    assert rebuild["results"] == 0, failed_logs(c, rebuild)
    published = c.machines["publisher"].root / "var" / "debs" / RELEASE / "changelogs"
    for name in c.upstreams:
        build = next(b for b in c.api.builds(f"{name}-{RELEASE}")[before[name]:] if b["results"] == 0)
        assert c.worker_of(build) in ("build1", "build2") and c.api.properties(build)["checkout"] == commit
        assert c.api.steps(build)["deb build"] == "success"
        lock = git(c.configuration, "show", f"{commit}:requirements/{RELEASE}/locks/{name}.txt")
        recorded = re.search(r"lock sha256:\s+([0-9a-f]{64})", (published / f"venv-{name}.changelog").read_text())
        assert recorded and recorded[1] == hashlib.sha256(lock.encode()).hexdigest()
    (promote,) = c.api.builds(f"promote-{RELEASE}")
    assert promote["results"] == 0 and set(c.api.properties(promote)["projects"].split()) == set(c.upstreams)
    released = subprocess.run(["reprepro", "-b", str(c.machines["publisher"].root / "var" / "repo"), "list", f"bookworm-{RELEASE}"],
                              capture_output=True, text=True, check=True).stdout
    assert "venv-tinyapp 1.1-2025.1.3" in released and "venv-tinytool 1.1-2025.1.2" in released, released
