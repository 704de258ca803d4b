"""Images for openstack-helm, built from the very debs that were published.

A project image is the shared base (a Debian rootfs made locally by
mmdebstrap) plus three layers: the Debian packages it needs (the deb's
Depends, the WSGI server, the recipe's own: cached while they do not change),
the project's user (uid/gid 42424) and the published ``venv-<project>``
installed by apt from the release's distribution. The install checks the
downloaded file against the sha256 of the file in the repository's pool, so
image and deb carry identical bits.

Tags: ``<registry>/<namespace>/<image>:<release>-debian_<codename>`` (moves
with each build) and ``...-<YYYYMMDDTHHMMSSZ>`` (never moves). A push sends
the dated tag first and moves the release tag last, so a failed push moves
nothing. Each build is recorded in ``<output>/images/<release>/<image>.json``;
a build whose inputs (Dockerfile, base, deb) did not change is not redone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import docker
import docker.errors
from debian.debfile import DebFile
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError

from stackyard import stage
from stackyard.config import Config, Release
from stackyard.errors import BuildError, ConfigError, InputError
from stackyard.events import Note, Reporter, discard
from stackyard.images import engine as docker_engine
from stackyard.images.engine import PushResult
from stackyard.images.registry import Registry
from stackyard.recipes import Recipe
from stackyard.repo.apt import AptRepository, staging
from stackyard.repo.server import RepoServer
from stackyard.rootfs import rootfs_tarball
from stackyard.runner import RUNNER, Runner
from stackyard.wheels.cache import sha256_file
from stackyard.wheels.lock import lock_path

# what every image has before its project arrives
BASE_PACKAGES = ("ca-certificates", "adduser", "python3", "sudo", "netbase")
# keep images small: no documentation but the copyright files, no man pages, no translations
BASE_OPTIONS = (
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",  # merged /usr without the usrmerge package (and its perl)
    "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-include=/usr/share/locale/locale.alias",
    "--aptopt=APT::Install-Recommends \"false\"",
)
WSGI_PACKAGES = {"apache": ("apache2", "libapache2-mod-wsgi-py3"), "uwsgi": ("uwsgi-core", "uwsgi-plugin-python3"), "none": ()}
KEYRING = "stackyard-archive-keyring.gpg"


@dataclass(frozen=True)
class PublishedDeb:
    package: str
    version: str
    distribution: str
    file: Path  # in the repository's pool
    sha256: str
    depends: tuple[str, ...]  # package names, first of each alternative
    revision: str  # upstream source revision (pbr's git sha) or ""


@stage.record("image")
class ImageRecord:
    image: str
    repository: str
    release_tag: str
    dated_tag: str
    image_id: str
    inputs: str
    version: str
    size: int
    digest: str = ""  # the registry manifest both tags point at, once pushed


@dataclass(frozen=True)
class ImageResult:
    record: ImageRecord
    built: bool  # False: the inputs were unchanged and the previous image stands
    seconds: float
    push: tuple[PushResult, ...] = ()


def _record_path(config: Config, release: Release, image: str) -> Path:
    return config.paths.output / "images" / release.id / f"{image}.json"


def read_record(config: Config, release: Release, image: str) -> ImageRecord | None:
    return stage.read_record(_record_path(config, release, image), ImageRecord)


def release_tag(release: Release) -> str:
    return f"{release.id}-debian_{release.codename}"


def depends_names(field: str) -> tuple[str, ...]:
    """Package names of a Depends field: the first of each alternative, without versions or arch qualifiers."""
    names = []
    for clause in field.split(","):
        first = clause.split("|")[0].strip()
        if first:
            names.append(first.split()[0].split(":")[0].split("(")[0])
    return tuple(dict.fromkeys(names))


def _upstream_revision(deb: DebFile, recipe: Recipe, memo: Path) -> str:
    """The upstream commit pbr recorded in the project's dist-info, if it did (remembered per deb)."""
    from packaging.utils import canonicalize_name

    if memo.exists():
        return memo.read_text().strip()
    revision = ""
    want = canonicalize_name(recipe.source.distribution).replace("-", "_")
    for member in deb.data.tgz().getmembers():
        parts = Path(member.name).parts
        if len(parts) >= 2 and parts[-1] == "pbr.json" and parts[-2].endswith(".dist-info"):
            dist = parts[-2].removesuffix(".dist-info").rsplit("-", 1)[0]
            if canonicalize_name(dist).replace("-", "_") == want:
                handle = deb.data.tgz().extractfile(member)
                revision = str(json.load(handle).get("git_version", "")) if handle else ""
                break
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(revision + "\n")
    return revision


def published_deb(config: Config, release: Release, recipe: Recipe, distribution: str, *,
                  runner: Runner = RUNNER) -> PublishedDeb:
    listed = {p.name: p for p in AptRepository(config, runner).list(distribution)}
    found = listed.get(recipe.package)
    if found is None:
        raise InputError(f"{recipe.package} is not published in {distribution}",
                         hint=f"stackyard deb --release {release.id} {recipe.name} && "
                              f"stackyard publish --release {release.id} {recipe.name}")
    file = config.repo.path / found.filekey
    if not file.is_file():
        raise InputError(f"{recipe.package} {found.version} is listed in {distribution} but {file} is missing",
                         hint="the repository is damaged: reprepro check")
    deb = DebFile(str(file))
    sha256 = sha256_file(file)
    return PublishedDeb(
        package=recipe.package, version=found.version, distribution=distribution, file=file, sha256=sha256,
        depends=depends_names(deb.debcontrol().get("Depends", "")),
        revision=_upstream_revision(deb, recipe, config.paths.cache / "deb-revisions" / sha256),
    )


def _quoted(value: object) -> str:
    """A Dockerfile double-quoted string."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _templates(config: Config) -> Environment:
    env = Environment(loader=FileSystemLoader(config.paths.images), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["quoted"] = _quoted
    return env


def render(config: Config, template: str, **context: object) -> str:
    try:
        return _templates(config).get_template(template).render(**context)
    except TemplateSyntaxError as exc:
        raise ConfigError(f"{config.paths.images / (exc.name or template)}:{exc.lineno}: {exc.message}",
                          hint="fix the template") from None
    except TemplateError as exc:
        raise ConfigError(f"{config.paths.images / template}: {exc}", hint="fix the template") from None


def project_template(config: Config, recipe: Recipe) -> str:
    own = f"{recipe.name}.Dockerfile.j2"
    return own if (config.paths.images / own).exists() else "project.Dockerfile.j2"


def image_info_lines(image: str, release: Release, deb: PublishedDeb, recipe: Recipe, lock_sha256: str) -> list[str]:
    """The head of /etc/image_info (the build appends the Debian package list, dpkg-query's)."""
    try:
        upstream = recipe.version(release.id)
    except ConfigError:
        upstream = ""
    return [f"image: {image}", f"openstack-release: {release.id}", f"debian: {release.codename}",
            f"upstream: {recipe.source.distribution} {upstream}".rstrip(),
            f"upstream-revision: {deb.revision or '-'}", f"upstream-source: {recipe.source.git or recipe.source.pypi or '-'}",
            f"package: {deb.package}={deb.version}", f"package-sha256: {deb.sha256}",
            f"package-distribution: {deb.distribution}", f"lock-sha256: {lock_sha256 or '-'}"]


def ensure_base(config: Config, release: Release, client: docker.DockerClient, log: Path, report: Reporter, *,
                runner: Runner = RUNNER) -> str:
    """The base image for the release's codename: made from a local rootfs when its inputs change."""
    codename = config.codenames[release.codename]
    tarball = rootfs_tarball(config.paths.cache, codename, log, BASE_PACKAGES, BASE_OPTIONS, flavour="image", runner=runner)
    dockerfile = render(config, "base.Dockerfile.j2", codename=codename.name)
    key = hashlib.sha256(dockerfile.encode() + b"\0" + sha256_file(tarball).encode()).hexdigest()[:12]
    tag = f"stackyard-base:{codename.name}-{key}"
    return ensure_image(client, tag, dockerfile, log, lambda: report(Note("image", f"base {tag}: importing {tarball.name}")),
                        {"rootfs.tar": tarball})


def ensure_image(client: docker.DockerClient, tag: str, dockerfile: str, log: Path, announce: Callable[[], None],
                 files: Mapping[str, Path] | None = None) -> str:
    """``tag`` (named after its inputs) if the engine has it, else built from ``dockerfile`` and ``files``
    (context name -> file), ``announce`` called first."""
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    announce()
    with tempfile.TemporaryDirectory(prefix="stackyard-image-") as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_text(dockerfile)
        for name, file in (files or {}).items():
            shutil.copy(file, context / name)
        docker_engine.build(client, context, tag, log)
    return tag


class ImageStage:
    """A project's image (stackyard.stage): its inputs are the Dockerfile rendered from the templates, the base,
    the published deb and the keyring; it is intact while the engine still has the recorded image."""

    kind = "image"

    def __init__(self, config: Config, release: Release, recipe: Recipe, client: docker.DockerClient, *,
                 distribution: str | None, nocache: bool, report: Reporter, runner: Runner) -> None:
        self.config, self.release, self.recipe, self.client = config, release, recipe, client
        self.distribution, self.nocache, self.runner = distribution or staging(release), nocache, runner
        self.spec = recipe.image
        self.name = self.spec.name
        self.repository = config.images.repository(self.spec.name)
        self.log = config.logs_dir("image", release) / f"{self.spec.name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.report = report
        self.digest = self._prepare()  # everything the image is made from, looked up once: build() renders it

    def record_path(self) -> Path:
        return _record_path(self.config, self.release, self.name)

    def record_type(self) -> type[ImageRecord]:
        return ImageRecord

    def inputs(self) -> str:
        return self.digest

    def _prepare(self) -> str:
        """The published deb, the base image, the keyring, the template and its variables; their digest."""
        config, release, recipe, spec = self.config, self.release, self.recipe, self.spec
        self.deb = deb = published_deb(config, release, recipe, self.distribution, runner=self.runner)
        base = ensure_base(config, release, self.client, self.log, self.report, runner=self.runner)
        self.keyring = keyring = config.repo.path / KEYRING
        if not keyring.exists():
            raise InputError(f"{keyring}: missing", hint=f"publish first: stackyard publish --release {release.id}")
        packages = sorted({*deb.depends, *WSGI_PACKAGES[spec.wsgi], *spec.packages} - {recipe.package})
        self.template = template = project_template(config, recipe)
        self.lock = lock = lock_path(config, release, recipe.name)
        self.context = context = dict(
            base=base, project=recipe.name, user=recipe.name, uid=config.images.uid, packages=packages, wsgi=spec.wsgi,
            package=deb.package, version=deb.version, deb_file=deb.file.name, sha256=deb.sha256,
            distribution=deb.distribution, component=config.repo.component, venv=f"{config.deb.prefix}/{recipe.name}",
            # /etc/image_info (as openstack-helm-images' images carry): what the image is made of
            image_info=image_info_lines(spec.name, release, deb, recipe, sha256_file(lock) if lock.exists() else ""),
        )
        # what the image is made of: its templates (not the other kinds' templates: a worker or infra image change
        # rebuilds no project image), their variables, the base, the keyring
        h = hashlib.sha256(json.dumps(context, sort_keys=True).encode())
        templates = {config.paths.images / template, config.paths.images / "project.Dockerfile.j2",
                     *(config.paths.images / "wsgi").glob("*.j2")}
        for file in sorted(templates):
            h.update(file.name.encode() + b"\0" + file.read_bytes())
        h.update(f"{sha256_file(keyring)}\0{self.client.images.get(base).id}\0{template}".encode())
        return h.hexdigest()

    def intact(self, record: ImageRecord) -> bool:
        if record.repository != self.repository:
            return False
        try:
            self.client.images.get(record.image_id)
            return True
        except docker.errors.ImageNotFound:
            return False

    def stands(self, record: ImageRecord) -> str:
        return f"{record.repository}:{record.dated_tag}"

    def build(self, inputs: str, previous: ImageRecord | None, report: Reporter) -> ImageRecord:
        config, release, recipe, spec, deb, client = self.config, self.release, self.recipe, self.spec, self.deb, self.client
        lock = self.lock
        now = dt.datetime.now(dt.timezone.utc)
        dated = f"{release_tag(release)}-{now:%Y%m%dT%H%M%SZ}"
        labels = {
            "org.opencontainers.image.title": spec.name,
            "org.opencontainers.image.description": recipe.description,
            "org.opencontainers.image.version": deb.version,
            "org.opencontainers.image.revision": deb.revision,
            "org.opencontainers.image.created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "org.opencontainers.image.source": recipe.source.git or f"{config.index.url}/{recipe.source.distribution}/",
            "org.opencontainers.image.base.name": self.context["base"],
            "org.openstack.release": release.id,
            "org.stackyard.package": f"{deb.package}={deb.version}",
            "org.stackyard.deb-sha256": deb.sha256,
            "org.stackyard.lock-sha256": sha256_file(lock) if lock.exists() else "",
            "org.stackyard.inputs": inputs,
        }
        dockerfile = render(config, self.template, labels=labels, **self.context)
        with tempfile.TemporaryDirectory(prefix="stackyard-image-") as tmp, RepoServer(config.repo.path) as repo:
            build_dir = Path(tmp)
            (build_dir / "Dockerfile").write_text(dockerfile)
            shutil.copy(self.keyring, build_dir / KEYRING)
            image_id = docker_engine.build(
                client, build_dir, f"{self.repository}:{dated}", self.log, buildargs={"STACKYARD_REPO": repo.url},
                nocache=self.nocache, on_step=lambda i, n, text: report(Note("image", f"{spec.name} [{i}/{n}] {text}")),
            )
        client.api.tag(image_id, self.repository, release_tag(release))
        return ImageRecord(image=spec.name, repository=self.repository, release_tag=release_tag(release), dated_tag=dated,
                           image_id=image_id, inputs=inputs, version=deb.version,
                           size=int(client.images.get(image_id).attrs["Size"]))


def build_image(config: Config, release: Release, recipe: Recipe, client: docker.DockerClient, *,
                distribution: str | None = None, nocache: bool = False, report: Reporter = discard,
                runner: Runner = RUNNER) -> ImageResult:
    started = time.monotonic()
    image = ImageStage(config, release, recipe, client, distribution=distribution, nocache=nocache, report=report,
                       runner=runner)
    outcome = stage.run(image, report=report)
    return ImageResult(outcome.record, built=not outcome.unchanged, seconds=time.monotonic() - started)


def chart_paths(config: Config, image: str) -> list[tuple[str, str]]:
    """The paths openstack-helm's chart for ``image`` names (images/charts/PATHS.tsv): [(path, named by)]."""
    from stackyard.charts.paths import read_paths_tsv

    table = config.paths.images / "charts" / "PATHS.tsv"
    return read_paths_tsv(table.read_text()).get(image, []) if table.exists() else []


def check_chart_paths(config: Config, record: ImageRecord, client: docker.DockerClient) -> int:
    """Every path the image's chart hard-codes exists in the image (a created, never started, container is
    asked through the engine's archive API, symlinks such as /var/lib/openstack followed): how many were
    checked; a BuildError naming the missing ones otherwise."""
    wanted = chart_paths(config, record.image)
    if not wanted:
        return 0
    api = client.api
    container = api.create_container(record.image_id, command=["true"], network_disabled=True,
                                     labels={"org.stackyard.check": "chart-paths"})
    missing = []
    try:
        for path, source in wanted:
            response = api.head(api._url("/containers/{0}/archive", container["Id"]), params={"path": path})
            if response.status_code == 404:
                missing.append(f"{path} (named by {source})")
            elif response.status_code != 200:
                raise BuildError(f"{record.image}: checking {path} in {record.image_id[:19]}: the engine answered "
                                 f"{response.status_code}")
    finally:
        api.remove_container(container["Id"], force=True)
    if missing:
        raise BuildError(f"{record.image}: the image lacks what openstack-helm's chart expects: {'; '.join(missing)}; "
                         f"nothing was pushed", hint="fix the image (recipe image: section, images/*.Dockerfile.j2)")
    return len(wanted)


def push_image(config: Config, release: Release, result: ImageResult, client: docker.DockerClient, password: str,
               registry: Registry, report: Reporter = discard) -> ImageResult:
    """Push the dated tag, then move the release tag; nothing is pushed when the registry already has it, nor when
    the image lacks a path its openstack-helm chart expects (images/charts/PATHS.tsv)."""
    record = result.record
    log = config.logs_dir("image", release) / f"{record.image}.log"
    if record.digest and registry.digest(record.image, record.release_tag) == record.digest \
            and registry.digest(record.image, record.dated_tag) == record.digest:
        report(Note("image", f"{record.image}: {record.repository}:{record.dated_tag} is already in the registry"))
        return result
    checked = check_chart_paths(config, record, client)  # before anything moves
    if checked:
        report(Note("image", f"{record.image}: the {checked} paths openstack-helm's chart names are in the image"))
    pushes = []
    for tag in (record.dated_tag, record.release_tag):
        client.api.tag(record.image_id, record.repository, tag)
        pushes.append(docker_engine.push(client, record.repository, tag, config.images, password, log))
        report(Note("image", f"pushed {record.repository}:{tag} ({pushes[-1].pushed_layers} layers sent, "
                             f"{pushes[-1].existing_layers} already there)"))
    record = dataclasses.replace(record, digest=pushes[-1].digest)
    stage.write_record(_record_path(config, release, record.image), record)
    return ImageResult(record, result.built, result.seconds, tuple(pushes))
