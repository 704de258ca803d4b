"""stackyard.recipes: one YAML per project; errors name 'file: key'."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from stackyard.errors import ConfigError, InputError
from stackyard.recipes import ImageSpec, Source, load_recipe, load_recipes, select

GOOD = """\
name: demo
description: A demo service
source:
  pypi: demo-dist
versions:
  "2025.1": "1.2.3"
  "2025.2": "2.0.0.0rc1"
extras: [ldap, memcache]
console_scripts: [demo-manage]
services:
  - name: demo-api
    command: demo-api --config-file /etc/demo/demo.conf
runtime_packages: [libldap-2.5-0]
smoke: ["demo-manage --version"]
constraints:
  drop: [oslo.config]
  replace:
    oslo.db: ../src/oslo.db
    oslo.log: git+https://opendev.org/openstack/oslo.log@6.0.0
    oslo.utils: /srv/oslo.utils
image:
  wsgi: uwsgi
"""

MakeRecipe = Callable[..., Path]


def error_of(file: Path) -> str:
    """The message after '<file>: ' (the path itself contains the test's name)."""
    with pytest.raises(ConfigError) as info:
        load_recipe(file)
    text = str(info.value)
    assert text.startswith(f"{file}: "), text
    return text[len(f"{file}: "):]


def test_all_real_recipes_load(repo: Path) -> None:
    recipes = load_recipes(repo / "recipes")
    files = sorted(p.stem for p in (repo / "recipes").glob("*.yaml"))
    assert sorted(recipes) == files
    assert {"keystone", "nova", "placement", "python-openstackclient"} <= set(recipes)
    for recipe in recipes.values():
        assert recipe.version("2025.1")
        assert recipe.file.stem == recipe.name
    keystone = recipes["keystone"]
    assert keystone.version("2025.1") == "27.0.2"
    assert keystone.extras == ("ldap",)  # keystone declares no 'memcache' extra: the clients are requirements
    assert keystone.package == "venv-keystone"
    assert recipes["placement"].source.distribution == "openstack-placement"
    assert [s.name for s in recipes["nova"].services] == ["nova-conductor", "nova-scheduler", "nova-compute",
                                                         "nova-novncproxy", "nova-serialproxy", "nova-spicehtml5proxy"]
    assert [(a.name, a.port) for a in recipes["nova"].apis] == [("nova-api", 8774), ("nova-metadata", 8775)]


def test_good_recipe(make_recipe: MakeRecipe, tmp_path: Path) -> None:
    recipe = load_recipe(make_recipe("demo", GOOD))
    assert recipe.description == "A demo service"
    assert recipe.source == Source(pypi="demo-dist")
    assert recipe.versions == {"2025.1": "1.2.3", "2025.2": "2.0.0.0rc1"}
    assert recipe.services[0].name == "demo-api"
    assert recipe.services[0].description == ""
    assert recipe.constraints.drop == ("oslo.config",)
    assert recipe.image.wsgi == "uwsgi" and recipe.image.name == "demo" and recipe.image.chart is None
    replace = dict(recipe.constraints.replace)
    assert list(replace) == sorted(replace)
    # a relative path is resolved against the recipe's directory and becomes a file:// URI
    assert replace["oslo.db"] == (tmp_path / "src" / "oslo.db").resolve().as_uri()
    assert replace["oslo.db"].startswith("file:///")
    assert replace["oslo.utils"] == "file:///srv/oslo.utils"
    assert replace["oslo.log"] == "git+https://opendev.org/openstack/oslo.log@6.0.0"


def test_defaults(make_recipe: MakeRecipe) -> None:
    recipe = load_recipe(make_recipe("mini", 'name: mini\nsource: {pypi: mini}\nversions: {"2025.1": "1.0"}\n'))
    assert recipe.description == "OpenStack mini"
    assert recipe.extras == () and recipe.services == () and recipe.smoke == ()
    assert recipe.constraints.drop == () and recipe.constraints.replace == ()
    assert recipe.image == ImageSpec(name="mini", wsgi="none", packages=(), chart=None, chart_keys=(), client_keys=())
    assert recipe.requirements == () and recipe.keep_tests is False


def test_version_for_unknown_release(make_recipe: MakeRecipe) -> None:
    recipe = load_recipe(make_recipe("demo", GOOD))
    with pytest.raises(InputError) as info:
        recipe.version("2026.1")
    assert f"{recipe.file}: versions:" in str(info.value)
    assert "2026.1" in str(info.value)


def test_source_requirement_pypi_and_git() -> None:
    assert Source(pypi="openstack-placement").requirement("13.0.0") == "openstack-placement==13.0.0"
    git = Source(git="https://opendev.org/openstack/keystone.git/")
    assert git.distribution == "keystone"
    assert git.requirement("27.0.2") == "keystone @ git+https://opendev.org/openstack/keystone.git/@27.0.2"


def test_unknown_top_key(make_recipe: MakeRecipe) -> None:
    file = make_recipe("demo", GOOD + "colour: blue\n")
    text = error_of(file)
    assert text.startswith("colour: unknown key")


def test_unknown_nested_key(make_recipe: MakeRecipe) -> None:
    file = make_recipe("demo", GOOD.replace("  wsgi: uwsgi", "  wsgi: uwsgi\n  tag: latest"))
    assert error_of(file).startswith("image.tag: unknown key")
    file = make_recipe("demo", GOOD.replace("  drop: [oslo.config]", "  drop: [oslo.config]\n  pin: {}"))
    assert error_of(file).startswith("constraints.pin: unknown key")


@pytest.mark.parametrize(
    "old, new, key",
    [
        ("extras: [ldap, memcache]", "extras: ldap", "extras"),
        ("console_scripts: [demo-manage]", "console_scripts: [1]", "console_scripts[0]"),
        ("console_scripts: [demo-manage]", "console_scripts: ['bad name']", "console_scripts[0]"),
        ("runtime_packages: [libldap-2.5-0]", "runtime_packages: [LibLDAP]", "runtime_packages[0]"),
        ("smoke: [\"demo-manage --version\"]", "smoke: {a: b}", "smoke"),
        ("services:\n  - name: demo-api\n    command: demo-api --config-file /etc/demo/demo.conf",
         "services: {demo-api: x}", "services"),
        ("    command: demo-api --config-file /etc/demo/demo.conf", "    command: 42", "services[0].command"),
        ("    command: demo-api --config-file /etc/demo/demo.conf", "    cmd: demo-api", "services[0].cmd"),
        ("description: A demo service", "description: [a]", "description"),
        ("  pypi: demo-dist", "  pypi: [demo-dist]", "source.pypi"),
        ("  drop: [oslo.config]", "  drop: oslo.config", "constraints.drop"),
        ("    oslo.db: ../src/oslo.db", "    oslo.db: src/oslo.db", "constraints.replace.oslo.db"),
        ("  \"2025.2\": \"2.0.0.0rc1\"", "  \"2025.2\": \"latest\"", "versions.2025.2"),
        ("  \"2025.2\": \"2.0.0.0rc1\"", "  \"2025.3\": \"2.0.0\"", "versions.2025.3"),
    ],
)
def test_wrong_types_name_file_and_key(make_recipe: MakeRecipe, old: str, new: str, key: str) -> None:
    assert old in GOOD
    file = make_recipe("demo", GOOD.replace(old, new))
    assert error_of(file).startswith(f"{key}:")


def test_services_entry_requires_command(make_recipe: MakeRecipe) -> None:
    file = make_recipe("demo", GOOD.replace("    command: demo-api --config-file /etc/demo/demo.conf\n", ""))
    assert error_of(file).startswith("services[0].command: is required")


@pytest.mark.parametrize("missing", ["name", "source", "versions"])
def test_required_top_keys(make_recipe: MakeRecipe, missing: str) -> None:
    body = {"name": "name: demo\n", "source": "source: {pypi: demo}\n", "versions": 'versions: {"2025.1": "1.0"}\n'}
    del body[missing]
    file = make_recipe("demo", "".join(body.values()))
    assert error_of(file).startswith(f"{missing}: is required")


def test_name_must_match_file(make_recipe: MakeRecipe) -> None:
    file = make_recipe("other", GOOD)
    text = error_of(file)
    assert text.startswith("name:")
    assert "'demo'" in text and "'other'" in text


def test_both_pypi_and_git(make_recipe: MakeRecipe) -> None:
    file = make_recipe("demo", GOOD.replace("  pypi: demo-dist", "  pypi: demo-dist\n  git: https://opendev.org/x/demo"))
    text = error_of(file)
    assert text.startswith("source:")
    assert "exactly one" in text


def test_neither_pypi_nor_git(make_recipe: MakeRecipe) -> None:
    file = make_recipe("demo", GOOD.replace("  pypi: demo-dist", "  pypi: null"))
    assert error_of(file).startswith("source:")


@pytest.mark.parametrize("value", ["1.0", "27", "true"])
def test_unquoted_numeric_version(make_recipe: MakeRecipe, value: str) -> None:
    file = make_recipe("demo", GOOD.replace('"2025.1": "1.2.3"', f'"2025.1": {value}'))
    text = error_of(file)
    assert text.startswith("versions.2025.1:")
    assert "quote" in text


def test_unquoted_release_id_asks_for_quotes(make_recipe: MakeRecipe) -> None:
    # YAML reads an unquoted 2025.1 as the float 2025.1; the message should say to quote it
    # (the library's own hint for release ids), not contradict itself.
    file = make_recipe("demo", GOOD.replace('"2025.1": "1.2.3"', '2025.1: "1.2.3"'))
    text = error_of(file)
    assert text.startswith("versions.2025.1:")
    assert "quote" in text


def test_invalid_yaml(make_recipe: MakeRecipe) -> None:
    file = make_recipe("demo", "name: [demo\n")
    assert error_of(file).startswith("invalid YAML")


def test_top_level_must_be_a_mapping(make_recipe: MakeRecipe) -> None:
    file = make_recipe("demo", "- a\n- b\n")
    assert error_of(file).startswith("<top>: must be a mapping")


def test_select(make_recipe: MakeRecipe, tmp_path: Path) -> None:
    make_recipe("demo", GOOD)
    make_recipe("mini", 'name: mini\nsource: {pypi: mini}\nversions: {"2025.1": "1.0"}\n')
    recipes = load_recipes(tmp_path / "recipes")
    assert [r.name for r in select(recipes, [], tmp_path / "recipes")] == ["demo", "mini"]
    assert [r.name for r in select(recipes, ["mini", "demo"], tmp_path / "recipes")] == ["mini", "demo"]
    with pytest.raises(InputError) as info:
        select(recipes, ["demo", "glance", "heat"], tmp_path / "recipes")
    text = str(info.value)
    assert "unknown project glance, heat" in text
    assert "known projects: demo, mini" in text
    assert str(tmp_path / "recipes" / "glance.yaml") in text


def test_image_spec_and_extra_requirements(make_recipe: MakeRecipe) -> None:
    recipe = load_recipe(make_recipe("cli", 'name: cli\nsource: {pypi: cli}\nversions: {"2025.1": "1.0"}\n'
                                     'requirements: [SQLAlchemy, PyMySQL]\n'
                                     'image: {name: openstack-client, packages: [mariadb-client]}\n'))
    assert recipe.requirements == ("SQLAlchemy", "PyMySQL")
    assert recipe.image.name == "openstack-client" and recipe.image.packages == ("mariadb-client",)


@pytest.mark.parametrize("image, key, message", [
    ("{wsgi: gunicorn}", "image.wsgi", "not one of apache, uwsgi, none"),
    ("{chart_keys: [keystone_api]}", "image.chart", "need the chart they belong to"),
    ("{chart: keystone, chart_keys: [Keystone-API]}", "image.chart_keys[0]", "is not valid"),
    ("{registry: quay.io}", "image", "registry"),
])
def test_bad_image_spec_names_the_key(make_recipe: MakeRecipe, image: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_recipe(make_recipe("bad", f'name: bad\nsource: {{pypi: bad}}\nversions: {{"2025.1": "1.0"}}\nimage: {image}\n'))
    assert f"bad.yaml: {key}" in str(info.value) and message in str(info.value)


def test_keep_tests_must_be_a_boolean(make_recipe: MakeRecipe) -> None:
    assert load_recipe(make_recipe("kt", 'name: kt\nsource: {pypi: kt}\nversions: {"2025.1": "1.0"}\nkeep_tests: true\n')).keep_tests
    with pytest.raises(ConfigError, match=r"kt.yaml: keep_tests: must be true or false"):
        load_recipe(make_recipe("kt", 'name: kt\nsource: {pypi: kt}\nversions: {"2025.1": "1.0"}\nkeep_tests: "yes"\n'))


@pytest.mark.parametrize("project", ["keystone", "glance", "placement", "nova", "neutron", "cinder"])
def test_service_venvs_carry_the_deployment_drivers_and_smoke_test_them(repo: Path, project: str) -> None:
    recipe = load_recipes(repo / "recipes")[project]
    assert {"PyMySQL", "python-memcached", "pymemcache"} <= set(recipe.requirements)
    imports = [c for c in recipe.smoke if c.startswith(f"/opt/openstack/{project}/bin/python -c ")]
    assert imports and all(m in imports[0] for m in ("pymysql", "memcache", "pymemcache"))
