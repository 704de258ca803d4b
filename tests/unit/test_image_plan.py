"""Image stage logic that needs no engine: settings, Dockerfile rendering, Depends."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stackyard.config import parse_config
from stackyard.errors import ConfigError
from stackyard.images.build import _quoted, depends_names, release_tag, render
from tests.conftest import ROOT
from tests.unit.test_config import BASE, FILE, config_error, data


def test_images_defaults_and_relative_engine_socket(tmp_path: Path) -> None:
    config = parse_config(data(), tmp_path / "stackyard.toml")
    images = config.images
    assert images.registry == "127.0.0.1:5443" and images.uid == 42424
    assert images.engine == f"unix://{tmp_path}/var/run/docker.sock"
    assert images.engine_socket == tmp_path / "var/run/docker.sock"
    assert images.ca_cert == tmp_path / "var/registry/ca.crt"
    assert images.repository("keystone") == "127.0.0.1:5443/stackyard/keystone"
    external = parse_config(data(images={"engine": "tcp://10.0.0.5:2376", "ca_cert": ""}), FILE).images
    assert external.engine_socket is None and external.ca_cert is None


@pytest.mark.parametrize("images, key", [
    ({"registry": "Registry.Example:5000/x"}, "images.registry"),
    ({"engine": "http://127.0.0.1:2375"}, "images.engine"),
    ({"namespace": "Open Stack"}, "images.namespace"),
    ({"uid": 0}, "images.uid"),
    ({"ca_cert": 5}, "images.ca_cert"),
    ({"regsitry": "x"}, "images.regsitry"),
])
def test_bad_images_settings_name_the_key(images: dict[str, object], key: str) -> None:
    assert f"{FILE}: {key}: " in config_error(data(images=images))


def test_depends_names_take_the_first_alternative_without_versions() -> None:
    field = "python3.11, libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, libfoo:any, adduser"
    assert depends_names(field) == ("python3.11", "libc6", "debconf", "libfoo", "adduser")
    assert depends_names("") == ()


def test_tags_and_quoting() -> None:
    config = parse_config(BASE, FILE)
    assert release_tag(config.release("2025.1")) == "2025.1-debian_bookworm"
    assert _quoted('say "hi"\\now') == '"say \\"hi\\"\\\\now"'


def context(**changes: object) -> dict[str, object]:
    values: dict[str, object] = dict(
        base="stackyard-base:bookworm-abc", project="keystone", user="keystone", uid=42424,
        packages=["apache2", "libapache2-mod-wsgi-py3", "python3.11"], wsgi="apache", package="venv-keystone",
        version="27.0.2-2025.1.1", deb_file="venv-keystone_27.0.2-2025.1.1_amd64.deb", sha256="ab" * 32,
        distribution="bookworm-2025.1-staging", component="main", venv="/opt/openstack/keystone",
        labels={"org.opencontainers.image.version": "27.0.2-2025.1.1", "org.opencontainers.image.description": 'a "b"'},
        image_info=["image: keystone", "package: venv-keystone=27.0.2-2025.1.1", "lock-sha256: " + "cd" * 32],
    )
    values.update(changes)
    return values


def test_the_project_dockerfile(tmp_path: Path) -> None:
    config = parse_config(data(paths={"images": str(ROOT / "images")}), tmp_path / "stackyard.toml")
    text = render(config, "project.Dockerfile.j2", **context())
    lines = text.splitlines()
    assert lines[1] == "FROM stackyard-base:bookworm-abc"
    assert "apt-get install -y -q --no-install-recommends apache2 libapache2-mod-wsgi-py3 python3.11" in text
    assert "useradd --uid 42424 --gid 42424" in text
    assert "WSGIPythonHome /var/lib/openstack" in text  # the apache block
    assert f'echo "{"ab" * 32}  /var/cache/apt/archives/venv-keystone_27.0.2-2025.1.1_amd64.deb" | sha256sum --check' in text
    assert "ln -s /opt/openstack/keystone /var/lib/openstack" in text
    # the per-build repository address comes after every cacheable layer
    arg = lines.index("ARG STACKYARD_REPO")
    assert [line.split()[0] for line in lines[arg + 1:] if line and not line.startswith((" ", "#"))] == ["RUN", "USER"]
    assert max(i for i, line in enumerate(lines) if line.startswith("RUN apt-get update")) < arg
    assert lines[-1] == "USER keystone" and lines[arg - 3].startswith("LABEL ")
    assert 'org.opencontainers.image.description="a \\"b\\""' in text
    assert "uwsgi" not in text
    # /etc/image_info in the install layer: the given lines, then dpkg-query's package list
    assert ("printf '%s\\n' \"image: keystone\" \"package: venv-keystone=27.0.2-2025.1.1\" \"lock-sha256: "
            + "cd" * 32 + '"') in text
    assert "dpkg-query -W -f='  ${Package} ${Version} ${Architecture}\\n'; } > /etc/image_info" in text
    uwsgi = render(config, "project.Dockerfile.j2", **context(wsgi="uwsgi"))
    assert "ENV UWSGI_PLUGIN=python3 UWSGI_VIRTUALENV=/var/lib/openstack" in uwsgi and "WSGIPythonHome" not in uwsgi


def test_a_template_error_names_file_and_line(tmp_path: Path) -> None:
    images = tmp_path / "images"
    shutil.copytree(ROOT / "images", images)
    (images / "keystone.Dockerfile.j2").write_text('{% extends "project.Dockerfile.j2" %}\n\n{% block user %}{{ user }\n')
    config = parse_config(data(paths={"images": str(images)}), tmp_path / "stackyard.toml")
    with pytest.raises(ConfigError) as info:
        render(config, "keystone.Dockerfile.j2", **context())
    assert f"{images}/keystone.Dockerfile.j2:3: " in str(info.value)
    incomplete = context()
    del incomplete["sha256"]
    with pytest.raises(ConfigError) as info:
        render(config, "project.Dockerfile.j2", **incomplete)
    assert "project.Dockerfile.j2: 'sha256' is undefined" in str(info.value)


def test_registry_password_is_made_once_private_and_the_environment_wins(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from stackyard.images.services import registry_config, registry_password

    monkeypatch.delenv("STACKYARD_REGISTRY_PASSWORD", raising=False)
    config = parse_config(data(), tmp_path / "stackyard.toml")
    first = registry_password(config.images)
    assert len(first) >= 32 and registry_password(config.images) == first
    assert config.images.password_file.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("STACKYARD_REGISTRY_PASSWORD", "from-env")
    assert registry_password(config.images) == "from-env"
    text = registry_config(config, tmp_path / "htpasswd", tmp_path / "c.crt", tmp_path / "c.key")
    assert "addr: 127.0.0.1:5443" in text and f"path: {tmp_path}/htpasswd" in text and f"certificate: {tmp_path}/c.crt" in text
