"""debian/ as rendered for the real service recipes: units, uwsgi, sudoers, rootwrap (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from debian.changelog import Changelog

from stackyard.config import load_config
from stackyard.debs.venv_deb import render_debian
from stackyard.errors import ConfigError
from stackyard.recipes import load_recipe, load_recipes
from tests.conftest import ROOT

CONFIG = load_config(ROOT / "stackyard.toml")
RECIPES = load_recipes(ROOT / "recipes")
SERVICES = ("keystone", "glance", "placement", "nova", "neutron", "cinder")


def render(name: str, tmp_path: Path) -> Path:
    recipe = RECIPES[name]
    release = CONFIG.release("2025.1")
    changelog = Changelog()
    changelog.new_block(package=recipe.package, version=f"{recipe.version('2025.1')}-2025.1.1", distributions="bookworm-2025.1",
                        urgency="medium", author=CONFIG.deb.maintainer, date="Thu, 01 Jan 2026 00:00:00 +0000",
                        changes=["", "  * test", ""])
    render_debian(CONFIG, release, recipe, tmp_path, changelog)
    return tmp_path


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_recipe_serves_its_apis_with_uwsgi_from_the_venv(name: str, tmp_path: Path) -> None:
    recipe = RECIPES[name]
    assert recipe.apis, f"{name} serves no API"
    src = render(name, tmp_path)
    control = (src / "debian/control").read_text()
    assert "uwsgi-core, uwsgi-plugin-python3" in control
    install = (src / f"debian/{recipe.package}.install").read_text()
    for api in recipe.apis:
        ini = (src / f"etc/{name}/{api.name}-uwsgi.ini").read_text()
        assert f"virtualenv = /opt/openstack/{name}\n" in ini and f"module = {api.module}\n" in ini
        assert f"http-socket = :{api.port}\n" in ini and "plugins = python3\n" in ini
        assert f"etc/{name}/{api.name}-uwsgi.ini etc/{name}/" in install
        unit = (src / f"debian/{recipe.package}.{api.name}.service").read_text()
        assert f"User={name}\n" in unit and f"ExecStart=/usr/bin/uwsgi --ini /etc/{name}/{api.name}-uwsgi.ini\n" in unit
        assert f"dh_installsystemd --name={api.name} --no-enable --no-start" in (src / "debian/rules").read_text()


def test_api_ports_are_openstacks_and_unique() -> None:
    ports = {a.name: a.port for r in RECIPES.values() for a in r.apis}
    assert ports == {"keystone-api": 5000, "glance-api": 9292, "placement-api": 8778, "nova-api": 8774,
                     "nova-metadata": 8775, "neutron-api": 9696, "cinder-api": 8776}


@pytest.mark.parametrize("name", ["nova", "neutron", "cinder"])
def test_rootwrap_and_privsep_go_through_sudo_with_the_venv_paths(name: str, tmp_path: Path) -> None:
    recipe = RECIPES[name]
    assert recipe.rootwrap and recipe.privsep and f"{name}-rootwrap" in recipe.console_scripts
    assert "privsep-helper" not in recipe.console_scripts  # never linked into /usr/bin: two venvs would clash there
    src = render(name, tmp_path)
    sudoers = (src / "debian/sudoers").read_text()
    venv = f"/opt/openstack/{name}"
    rules = [line for line in sudoers.splitlines() if line and not line.startswith(("#", "Defaults"))]
    expected = [f"{name} ALL = (root) NOPASSWD: {venv}/bin/{name}-rootwrap /etc/{name}/rootwrap.conf *"]
    if f"{name}-rootwrap-daemon" in recipe.console_scripts:
        expected.append(f"{name} ALL = (root) NOPASSWD: {venv}/bin/{name}-rootwrap-daemon /etc/{name}/rootwrap.conf")
    expected.append(f"{name} ALL = (root) NOPASSWD: {venv}/bin/privsep-helper *")
    assert rules == expected
    assert f'Defaults:{name} secure_path="{venv}/bin:' in sudoers
    rules_file = (src / "debian/rules").read_text()
    assert f"sed -i 's#^exec_dirs=#exec_dirs={venv}/bin,#' debian/$(PKG)/etc/{name}/rootwrap.conf" in rules_file
    assert f"install -D -m 0440 debian/sudoers debian/$(PKG)/etc/sudoers.d/{name}" in rules_file
    assert "sudo" in (src / "debian/control").read_text().split("Depends:")[-1]


@pytest.mark.parametrize("name", ["keystone", "glance", "placement"])
def test_projects_without_privileged_helpers_get_no_sudoers(name: str, tmp_path: Path) -> None:
    src = render(name, tmp_path)
    assert not (src / "debian/sudoers").exists() and "sudoers" not in (src / "debian/rules").read_text()


def test_maintainer_scripts_respect_statoverride_and_remove_only_a_user_they_made(tmp_path: Path) -> None:
    src = render("nova", tmp_path)
    postinst = (src / "debian/venv-nova.postinst").read_text()
    postrm = (src / "debian/venv-nova.postrm").read_text()
    assert 'if ! dpkg-statoverride --list "$1"' in postinst and "own /etc/nova root:nova 0750" in postinst
    assert "echo nova > /var/lib/venv-nova/created-user" in postinst
    assert "|| true" not in postinst  # byte-compilation failures are reported, not hidden
    assert "if [ -f /var/lib/venv-nova/created-user ]; then" in postrm
    unit = (src / "debian/venv-nova.nova-compute.service").read_text()
    assert "StateDirectory" not in unit and "RuntimeDirectory" not in unit  # postinst owns /var/lib/nova, tmpfiles /run/nova


def test_an_api_and_a_service_with_one_name_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "demo.yaml"
    file.write_text('name: demo\nsource: {pypi: demo}\nversions: {"2025.1": "1.0"}\n'
                    "services: [{name: demo-api, command: demo-api}]\n"
                    "apis: [{name: demo-api, module: 'demo.wsgi:application', port: 8080}]\n")
    with pytest.raises(ConfigError, match="'demo-api' names both a service and an API"):
        load_recipe(file)
    file.write_text('name: demo\nsource: {pypi: demo}\nversions: {"2025.1": "1.0"}\n'
                    "apis: [{name: demo-api, module: 'demo.wsgi', port: 8080}]\n")
    with pytest.raises(ConfigError, match=r"apis\[0\]\.module"):
        load_recipe(file)
