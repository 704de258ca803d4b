"""Images from the published debs: which deb and packages, the Dockerfile's inputs and labels, when a build is skipped,
and the push order (a fake Docker client and a fake runner: no engine, no registry, no process)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from stackyard.config import Config, Release, load_config
from stackyard.errors import ConfigError, InputError
from stackyard.events import Event, Note, Unchanged
from stackyard.images import build as images
from stackyard.images.build import (
    ImageResult,
    build_image,
    depends_names,
    project_template,
    published_deb,
    push_image,
    read_record,
    release_tag,
    render,
)
from stackyard.images.engine import PushResult
from stackyard.recipes import Recipe, load_recipe
from tests.deb_workspace import REPO, rootfs, sha
from tests.fake_docker import FakeClient, write_deb
from tests.fake_repo import published
from tests.fakes import FakeRunner

CONTROL = """\
Package: venv-tiny
Version: 1.2.0-2025.1.1
Architecture: amd64
Depends: python3 (>= 3.11), libxml2 | libxml2-dev, adduser:any, venv-tiny-data, libc6 (>= 2.36)
Description: tiny
"""
PBR = json.dumps({"git_version": "0a1b2c3", "is_release": True}).encode()


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    """The project's own image templates; a registry elsewhere."""
    config = make_config(extra='[images]\nregistry = "registry.example:5000"\n')
    config.file.write_text(config.file.read_text().replace('output = "var"\n', f'output = "var"\nimages = "{REPO / "images"}"\n'))
    return load_config(config.file)


@pytest.fixture
def recipe(make_recipe: Callable[..., Path]) -> Recipe:
    return load_recipe(make_recipe("tiny", """\
        name: tiny
        description: Tiny service
        source: {pypi: tiny}
        versions: {"2025.1": "1.2.0"}
        image: {wsgi: uwsgi, packages: [curl]}
        """))


def publish(config: Config, *, pool: bool = True, keyring: bool = True) -> FakeRunner:
    """venv-tiny in staging: listed by reprepro, its file in the pool, the repository's keyring beside it."""
    if pool:
        write_deb(config.repo.path / "pool/main/v/venv-tiny/venv-tiny_1.2.0-2025.1.1_amd64.deb", CONTROL, {
            "./opt/openstack/tiny/lib/python3.11/site-packages/tiny-1.2.0.dist-info/pbr.json": PBR,
            "./opt/openstack/tiny/lib/python3.11/site-packages/pbr-6.1.0.dist-info/pbr.json": b'{"git_version": "other"}',
            "./opt/openstack/tiny/bin/tiny-manage": b"#!/bin/sh\n"})
    config.repo.path.mkdir(parents=True, exist_ok=True)
    if keyring:
        (config.repo.path / "stackyard-archive-keyring.gpg").write_bytes(b"\x99key")
    fake = published(config, {"bookworm-2025.1-staging": [("venv-tiny", "1.2.0-2025.1.1")]})
    fake.reply("mmdebstrap", effect=rootfs)
    return fake


class Server:
    """Stands in for RepoServer (a loopback HTTP server thread): the build only needs its URL."""

    url = "http://127.0.0.1:8099"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "RepoServer", Server)


# -- pure decisions ----------------------------------------------------------------

def test_depends_names_keep_the_first_alternative_without_versions_or_qualifiers() -> None:
    assert depends_names("python3 (>= 3.11), libxml2 | libxml2-dev, adduser:any,, libc6(>=2.36), python3") == (
        "python3", "libxml2", "adduser", "libc6")
    assert depends_names("") == ()


def test_the_release_tag_moves_with_the_codename(release: Release) -> None:
    assert release_tag(release) == "2025.1-debian_bookworm"


def test_a_project_template_of_its_own_wins_over_the_shared_one(config: Config, recipe: Recipe, tmp_path: Path,
                                                                make_config: Callable[..., Config]) -> None:
    assert project_template(config, recipe) == "project.Dockerfile.j2"
    own = make_config()  # images under tmp_path
    own.paths.images.mkdir(parents=True)
    (own.paths.images / "tiny.Dockerfile.j2").write_text("FROM {{ base }}\n")
    assert project_template(own, recipe) == "tiny.Dockerfile.j2"


def test_template_errors_are_configuration_errors_naming_the_file(make_config: Callable[..., Config]) -> None:
    config = make_config()
    config.paths.images.mkdir(parents=True)
    (config.paths.images / "bad.j2").write_text("FROM x\n{% if %}\n")
    with pytest.raises(ConfigError, match=rf"{config.paths.images / 'bad.j2'}:2: "):
        render(config, "bad.j2")
    (config.paths.images / "undefined.j2").write_text("FROM {{ nope }}\n")
    with pytest.raises(ConfigError, match=r"undefined.j2: 'nope' is undefined"):
        render(config, "undefined.j2")
    (config.paths.images / "quoted.j2").write_text('LABEL a={{ value | quoted }}\n')
    assert render(config, "quoted.j2", value='say "hi"\\\nbye') == 'LABEL a="say \\"hi\\"\\\\ bye"\n'


# -- the published deb -------------------------------------------------------------------

def test_the_published_deb_gives_its_version_hash_depends_and_upstream_revision(config: Config, release: Release,
                                                                                recipe: Recipe) -> None:
    fake = publish(config)
    deb = published_deb(config, release, recipe, "bookworm-2025.1-staging", runner=fake)
    assert (deb.package, deb.version, deb.distribution) == ("venv-tiny", "1.2.0-2025.1.1", "bookworm-2025.1-staging")
    assert deb.sha256 == sha(deb.file.read_bytes())
    assert deb.depends == ("python3", "libxml2", "adduser", "venv-tiny-data", "libc6")
    assert deb.revision == "0a1b2c3"  # the project's pbr.json, not a dependency's
    memo = config.paths.cache / "deb-revisions" / deb.sha256
    assert memo.read_text() == "0a1b2c3\n"
    memo.write_text("remembered\n")
    assert published_deb(config, release, recipe, "bookworm-2025.1-staging", runner=fake).revision == "remembered"


def test_an_unpublished_or_missing_deb_is_an_input_error(config: Config, release: Release, recipe: Recipe) -> None:
    fake = publish(config, pool=False)
    with pytest.raises(InputError, match="venv-tiny 1.2.0-2025.1.1 is listed in bookworm-2025.1-staging but .*/pool/main/v/venv-tiny/venv-tiny_1.2.0-2025.1.1_amd64.deb is missing"):
        published_deb(config, release, recipe, "bookworm-2025.1-staging", runner=fake)
    with pytest.raises(InputError, match="venv-tiny is not published in bookworm-2025.1") as info:
        published_deb(config, release, recipe, "bookworm-2025.1", runner=fake)
    assert info.value.hint == "stackyard deb --release 2025.1 tiny && stackyard publish --release 2025.1 tiny"


# -- building -----------------------------------------------------------------------------

def test_a_build_makes_the_base_then_the_project_image_from_the_published_deb(config: Config, release: Release,
                                                                              recipe: Recipe) -> None:
    client, notes = FakeClient(), []
    result = build_image(config, release, recipe, client, report=notes.append, runner=publish(config))
    base, project = client.builds
    assert base["tag"].startswith("stackyard-base:bookworm-") and base["files"] == ["Dockerfile", "rootfs.tar"]
    assert "FROM scratch\nADD rootfs.tar /\n" in base["dockerfile"]
    dockerfile = project["dockerfile"]
    assert dockerfile.startswith(f"# tiny for openstack-helm: the published venv-tiny 1.2.0-2025.1.1 on the stackyard base.\n"
                                 f"FROM {base['tag']}\n")
    packages = re.search(r"--no-install-recommends (.*) \\\n", dockerfile)
    assert packages and packages.group(1) == "adduser curl libc6 libxml2 python3 uwsgi-core uwsgi-plugin-python3 venv-tiny-data"
    deb = config.repo.path / "pool/main/v/venv-tiny/venv-tiny_1.2.0-2025.1.1_amd64.deb"
    assert f'echo "{sha(deb.read_bytes())}  /var/cache/apt/archives/{deb.name}" | sha256sum --check --strict' in dockerfile
    assert 'org.stackyard.package="venv-tiny=1.2.0-2025.1.1"' in dockerfile and 'org.opencontainers.image.revision="0a1b2c3"' in dockerfile
    assert 'org.opencontainers.image.source="https://pypi.org/simple/tiny/"' in dockerfile
    assert project["buildargs"] == {"STACKYARD_REPO": Server.url} and project["network_mode"] == "host"
    assert project["files"] == ["Dockerfile", "stackyard-archive-keyring.gpg"]
    record = result.record
    assert result.built and record == read_record(config, release, "tiny")
    assert record.repository == "registry.example:5000/stackyard/tiny" and record.release_tag == "2025.1-debian_bookworm"
    assert re.fullmatch(r"2025\.1-debian_bookworm-\d{8}T\d{6}Z", record.dated_tag)
    assert project["tag"] == f"{record.repository}:{record.dated_tag}" and record.size == client.size
    assert client.tagged == [(record.image_id, record.repository, "2025.1-debian_bookworm")]
    assert any(isinstance(n, Note) and n.text == "tiny [1/2] FROM scratch" for n in notes)


def test_unchanged_inputs_keep_the_image_and_a_vanished_image_is_built_again(config: Config, release: Release,
                                                                            recipe: Recipe) -> None:
    client = FakeClient()
    first = build_image(config, release, recipe, client, runner=publish(config))
    notes: list[Event] = []
    again = build_image(config, release, recipe, client, report=notes.append, runner=publish(config))
    assert not again.built and again.record == first.record and len(client.builds) == 2  # base and project, once
    assert Unchanged("image", "tiny", f"{first.record.repository}:{first.record.dated_tag} stands (inputs unchanged)") in notes
    del client.tags[f"{first.record.repository}:{first.record.dated_tag}"]
    del client.tags[f"{first.record.repository}:2025.1-debian_bookworm"]  # pruned from the engine
    assert build_image(config, release, recipe, client, runner=publish(config)).built and len(client.builds) == 3


def test_a_changed_input_builds_again(config: Config, release: Release, recipe: Recipe) -> None:
    client = FakeClient()
    first = build_image(config, release, recipe, client, runner=publish(config))
    (config.repo.path / "stackyard-archive-keyring.gpg").write_bytes(b"\x99another key")
    second = build_image(config, release, recipe, client, runner=publish(config, keyring=False))
    assert second.built and second.record.inputs != first.record.inputs


def test_without_the_repository_keyring_nothing_is_built(config: Config, release: Release, recipe: Recipe) -> None:
    client = FakeClient()
    with pytest.raises(InputError, match="stackyard-archive-keyring.gpg: missing"):
        build_image(config, release, recipe, client, runner=publish(config, keyring=False))
    assert [b["tag"].split(":")[0] for b in client.builds] == ["stackyard-base"]


# -- pushing ------------------------------------------------------------------------------

class Registry:
    def __init__(self, digests: dict[str, str]) -> None:
        self.digests = digests

    def digest(self, image: str, tag: str) -> str | None:
        return self.digests.get(f"{image}:{tag}")


def built(config: Config, release: Release, recipe: Recipe, client: FakeClient) -> ImageResult:
    return build_image(config, release, recipe, client, runner=publish(config))


def test_a_push_sends_the_dated_tag_first_and_records_the_digest(config: Config, release: Release, recipe: Recipe) -> None:
    client = FakeClient()
    result = built(config, release, recipe, client)
    pushed = push_image(config, release, result, client, "pw", Registry({}))  # type: ignore[arg-type]
    record = result.record
    assert [(repo, tag) for repo, tag, _ in client.pushes] == [(record.repository, record.dated_tag),
                                                               (record.repository, "2025.1-debian_bookworm")]
    assert client.pushes[0][2] == {"username": "stackyard", "password": "pw"}
    assert pushed.push == (PushResult(f"{record.repository}:{record.dated_tag}", "sha256:" + "1".rjust(64, "d"), 1, 1),
                           PushResult(f"{record.repository}:2025.1-debian_bookworm", "sha256:" + "2".rjust(64, "d"), 1, 1))
    assert pushed.record.digest == "sha256:" + "2".rjust(64, "d") == read_record(config, release, "tiny").digest  # type: ignore[union-attr]


def test_an_image_the_registry_already_has_is_not_pushed_again(config: Config, release: Release, recipe: Recipe) -> None:
    client = FakeClient()
    pushed = push_image(config, release, built(config, release, recipe, client), client, "pw", Registry({}))  # type: ignore[arg-type]
    record = pushed.record
    both = Registry({f"tiny:{record.release_tag}": record.digest, f"tiny:{record.dated_tag}": record.digest})
    notes: list[Any] = []
    again = push_image(config, release, pushed, client, "pw", both, notes.append)  # type: ignore[arg-type]
    assert again is pushed and len(client.pushes) == 2
    assert notes == [Note("image", f"tiny: {record.repository}:{record.dated_tag} is already in the registry")]
    moved = Registry({f"tiny:{record.release_tag}": "sha256:" + "9" * 64, f"tiny:{record.dated_tag}": record.digest})
    push_image(config, release, pushed, client, "pw", moved)  # type: ignore[arg-type]
    assert len(client.pushes) == 4  # the release tag points elsewhere: push again


# -- the image command ----------------------------------------------------------------------

class FakeRegistry:
    """Stands in for the registry client: a login that passes or not, and the digests it holds."""

    refuse = False
    digests: dict[str, str] = {}
    logins: list[str] = []

    def __init__(self, images_: object, password: str) -> None:
        self.password = password

    def check_login(self) -> None:
        FakeRegistry.logins.append(self.password)
        if FakeRegistry.refuse:
            raise InputError("registry registry.example:5000 refused the login of 'stackyard'")

    def digest(self, image: str, tag: str) -> str | None:
        return FakeRegistry.digests.get(f"{image}:{tag}")


@pytest.fixture
def command(config: Config, recipe: Recipe, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, list[str], FakeClient]]:
    """Runs 'stackyard image' against a fake engine (the one connect would return) and a fake registry."""
    from stackyard import cli
    from stackyard.images import engine as docker_engine
    from stackyard.images import registry as registry_client

    client = FakeClient()
    monkeypatch.setattr(docker_engine, "connect", lambda images_: client)
    monkeypatch.setattr(registry_client, "Registry", FakeRegistry)
    monkeypatch.setattr(FakeRegistry, "refuse", False)
    monkeypatch.setattr(FakeRegistry, "digests", {})
    monkeypatch.setattr(FakeRegistry, "logins", [])
    monkeypatch.setenv("STACKYARD_REGISTRY_PASSWORD", "pw")

    def run(*argv: str) -> tuple[int, list[str], FakeClient]:
        code = cli.main(["--config", str(config.file), "image", "--release", "2025.1", "tiny", *argv], runner=publish(config))
        out, err = capsys.readouterr()
        rows = [line.split() for line in out.splitlines()[2:]]
        return code, (rows[0] if rows else [err]), client

    return run


def test_the_image_command_builds_once_and_reports_unchanged_after(command: Callable[..., Any]) -> None:
    code, row, client = command()
    assert code == 0, row
    assert row[:5] == ["tiny", "1.2.0-2025.1.1", "built", "123", "MB"] and row[6] == "-"  # no --push: nothing sent
    assert row[7].startswith("registry.example:5000/stackyard/tiny:2025.1-debian_bookworm-")
    code, row, client = command()
    assert code == 0 and row[2] == "unchanged" and len(client.builds) == 2


def test_the_promoted_distribution_must_hold_the_deb(command: Callable[..., Any]) -> None:
    code, (err,), client = command("--promoted")
    assert code == 2 and "venv-tiny is not published in bookworm-2025.1\n" in err and client.builds == []


def test_push_checks_the_login_before_building_and_skips_what_the_registry_has(command: Callable[..., Any],
                                                                              config: Config) -> None:
    FakeRegistry.refuse = True
    code, (err,), client = command("--push")
    assert code == 2 and "refused the login" in err and client.builds == [] and FakeRegistry.logins == ["pw"]
    FakeRegistry.refuse = False
    code, row, client = command("--push")
    assert code == 0 and row[6:8] == ["2", "sent"] and len(client.pushes) == 2
    record = read_record(config, config.release("2025.1"), "tiny")
    assert record is not None and record.digest
    FakeRegistry.digests = {f"tiny:{record.release_tag}": record.digest, f"tiny:{record.dated_tag}": record.digest}
    code, row, client = command("--push")
    assert code == 0 and row[2] == "unchanged" and row[6:8] == ["already", "there"] and len(client.pushes) == 2


def test_only_the_project_images_templates_are_its_inputs(make_config: Callable[..., Config], release: Release,
                                                          recipe: Recipe, tmp_path: Path) -> None:
    templates = tmp_path / "images"
    shutil.copytree(REPO / "images", templates)  # a copy: the test edits templates
    config = make_config(extra='[images]\nregistry = "registry.example:5000"\n')
    config.file.write_text(config.file.read_text().replace('output = "var"\n', f'output = "var"\nimages = "{templates}"\n'))
    config = load_config(config.file)
    client = FakeClient()
    first = build_image(config, release, recipe, client, runner=publish(config))
    (config.paths.images / "worker.Dockerfile.j2").write_text("FROM another kind of image\n")
    assert not build_image(config, release, recipe, client, runner=publish(config, keyring=False)).built
    wsgi = config.paths.images / "wsgi" / "uwsgi.j2"
    wsgi.write_text(wsgi.read_text() + "# changed\n")
    again = build_image(config, release, recipe, client, runner=publish(config, keyring=False))
    assert again.built and again.record.inputs != first.record.inputs
