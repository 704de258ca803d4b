"""helm-values: the recipes against the vendored chart image keys, the values files by tag and by digest."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from stackyard.config import Config, load_config
from stackyard.errors import InputError
from stackyard.images.build import ImageRecord
from stackyard.images.helm_values import ChartValues, chart_values, dump, image_path, openstack_keys, read_chart_images
from stackyard.recipes import load_recipes, parse_recipe
from stackyard.stage import write_record

REPO = Path(__file__).resolve().parents[2]
VENDORED = REPO / "images" / "charts"

CLIENT = "quay.io/airshipit/openstack-client:2026.1-ubuntu_noble"
TSV = (
    "chart\timage_key\tdefault_image\n"
    f"keystone\tbootstrap\t{CLIENT}\n"
    f"keystone\tdb_init\t{CLIENT}\n"
    f"keystone\tks_user\t{CLIENT}\n"
    "keystone\tkeystone_api\tquay.io/airshipit/keystone:2026.1-ubuntu_noble\n"
    "keystone\tkeystone_db_sync\tquay.io/airshipit/keystone:2026.1-ubuntu_noble\n"
    "keystone\tdep_check\tquay.io/airshipit/kubernetes-entrypoint:latest-ubuntu_noble\n"
    "keystone\trabbit_init\tdocker.io/rabbitmq:4.3.5-management\n"
    "keystone\ttest\tdocker.io/xrally/xrally-openstack:2.0.0\n"
    "glance\tglance_api\tquay.io/airshipit/glance:2026.1-ubuntu_noble\n"
    "glance\timage_repo_sync\tdocker.io/docker:17.07.0\n"
)

RECIPES = {
    "keystone": "name: keystone\nsource: {pypi: keystone}\nversions: {'2025.1': '27.0.2'}\n"
                "image: {wsgi: apache, chart: keystone, chart_keys: [keystone_api, keystone_db_sync], "
                "client_keys: [bootstrap, db_init, ks_user]}\n",
    "python-openstackclient": "name: python-openstackclient\nsource: {pypi: python-openstackclient}\n"
                              "versions: {'2025.1': '7.5.0'}\nimage: {name: openstack-client}\n",
    "glance": "name: glance\nsource: {pypi: glance}\nversions: {'2025.1': '30.2.0'}\n"
              "image: {wsgi: uwsgi, chart: glance, chart_keys: [glance_api]}\n",
}


@pytest.fixture
def workspace(tmp_path: Path) -> Config:
    """A small stackyard.toml in tmp_path, with its own images/charts/IMAGES.tsv."""
    (tmp_path / "images" / "charts").mkdir(parents=True)
    (tmp_path / "images" / "charts" / "IMAGES.tsv").write_text(TSV)
    (tmp_path / "stackyard.toml").write_text(textwrap.dedent("""\
        architecture = "amd64"
        [paths]
        output = "var"
        [images]
        registry = "registry.example:5000"
        [codenames.bookworm]
        python = "3.11"
        glibc = "2.36"
        [releases."2025.1"]
        series = "epoxy"
        codename = "bookworm"
        upstream = "https://example.invalid/2025.1"
        """))
    return load_config(tmp_path / "stackyard.toml")


def recipes(tmp_path: Path, **changes: str) -> dict:  # type: ignore[type-arg]
    texts = RECIPES | changes
    return {name: parse_recipe(yaml.safe_load(text), tmp_path / f"{name}.yaml") for name, text in texts.items()}


def record(config: Config, image: str, digest: str | None = None) -> ImageRecord:
    """Writes the image's record as ``stackyard image`` does (digest "": built, not pushed)."""
    if digest is None:
        digest = "sha256:" + image.encode().hex().ljust(64, "0")[:64]
    rec = ImageRecord(image=image, repository=f"registry.example:5000/stackyard/{image}",
                      release_tag="2025.1-debian_bookworm", dated_tag="2025.1-debian_bookworm-20261122T010203Z",
                      image_id="sha256:" + "2" * 64, inputs="3" * 64, version="1-2025.1.1", size=1, digest=digest)
    path = config.paths.output / "images" / "2025.1" / f"{image}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_record(path, rec)
    return rec


# -- the recipes against the vendored chart keys -----------------------------------------------


def test_the_vendored_chart_table_names_its_source() -> None:
    source = (VENDORED / "SOURCE").read_text().splitlines()[0].split()
    assert source[0] == "openstack/openstack-helm" and len(source[1]) == 40
    charts = read_chart_images(VENDORED / "IMAGES.tsv")
    assert {"keystone", "glance", "placement", "nova", "neutron", "cinder", "heat", "horizon"} <= set(charts)


def test_each_recipe_covers_exactly_its_charts_openstack_image_keys() -> None:
    charts = read_chart_images(VENDORED / "IMAGES.tsv")
    problems = []
    for recipe in sorted(load_recipes(REPO / "recipes").values(), key=lambda r: r.name):
        spec = recipe.image
        if not spec.chart:
            continue
        if spec.chart not in charts:
            problems.append(f"{recipe.file.name}: image.chart {spec.chart} is not in images/charts/IMAGES.tsv")
            continue
        own, client = openstack_keys(charts[spec.chart], spec.name)
        for field, want, have in (("chart_keys", own, spec.chart_keys), ("client_keys", client, spec.client_keys)):
            missing = sorted(set(want) - set(have))
            extra = sorted(set(have) - set(want))
            if missing:
                problems.append(f"{recipe.file.name}: image.{field} misses {spec.chart} chart keys {', '.join(missing)}")
            if extra:
                problems.append(f"{recipe.file.name}: image.{field} names {', '.join(extra)}, which the {spec.chart} "
                                f"chart lacks or does not run on the {spec.name if field == 'chart_keys' else 'openstack-client'} image")
            if len(set(have)) != len(have):
                problems.append(f"{recipe.file.name}: image.{field} names a key twice")
    assert not problems, "\n".join(problems)


def test_real_recipes_leave_only_non_openstack_images_to_the_chart(tmp_path: Path) -> None:
    (tmp_path / "stackyard.toml").write_text(
        f'architecture = "amd64"\n[paths]\noutput = "var"\nimages = "{REPO / "images"}"\n'
        '[codenames.bookworm]\npython = "3.11"\nglibc = "2.36"\n'
        '[releases."2025.1"]\nseries = "epoxy"\ncodename = "bookworm"\nupstream = "https://example.invalid/2025.1"\n')
    config = load_config(tmp_path / "stackyard.toml")
    real = load_recipes(REPO / "recipes")
    for recipe in real.values():
        record(config, recipe.image.name)
    charts = chart_values(config, config.release("2025.1"), real, "secret")
    assert set(charts) == {r.image.chart for r in real.values() if r.image.chart}
    for chart in charts.values():
        for key, image in chart.left.items():
            assert not image_path(image).startswith(("airshipit/openstack-client", f"airshipit/{chart.chart}")), (chart.chart, key)
    assert set(charts["nova"].left) == {"dep_check", "image_repo_sync", "nova_service_cleaner", "nova_storage_init",
                                        "nova_wait_for_computes_init", "rabbit_init", "test"}
    assert set(charts["neutron"].left) == {"dep_check", "image_repo_sync", "netoffload", "rabbit_init", "test"}


def test_image_path_drops_registry_tag_and_digest() -> None:
    assert image_path("quay.io/airshipit/nova:2026.1-ubuntu_noble") == "airshipit/nova"
    assert image_path("docker.io/rabbitmq:4.3.5-management") == "rabbitmq"
    assert image_path("symas/openldap:2.6.8-debian-12") == "symas/openldap"
    assert image_path("127.0.0.1:5443/stackyard/nova@sha256:" + "a" * 64) == "stackyard/nova"
    assert openstack_keys({"a": "quay.io/airshipit/neutron:stein-18.04-sriov", "b": CLIENT,
                           "c": "quay.io/airshipit/ceph-config-helper:latest-ubuntu_jammy"}, "neutron") == (("a",), ("b",))


# -- the values files ----------------------------------------------------------------------------


def test_values_by_dated_tag(tmp_path: Path, workspace: Config) -> None:
    config, release = workspace, workspace.release("2025.1")
    rs = recipes(tmp_path)
    with pytest.raises(InputError, match="no image of 2025.1 has been built"):
        chart_values(config, release, rs, "secret")
    ks = record(config, "keystone")
    with pytest.raises(InputError, match="openstack-client image of 2025.1 has not been pushed"):
        chart_values(config, release, rs, "secret")
    client = record(config, "openstack-client")
    charts = chart_values(config, release, rs, "secret")
    assert list(charts) == ["keystone"]  # glance's image was never built
    keystone = charts["keystone"]
    own, theirs = f"{ks.repository}:{ks.dated_tag}", f"{client.repository}:{client.dated_tag}"
    assert keystone.values["images"]["tags"] == {
        "bootstrap": theirs, "db_init": theirs, "keystone_api": own, "keystone_db_sync": own, "ks_user": theirs}
    assert keystone.values["endpoints"]["oci_image_registry"] == {
        "auth": {"enabled": True, "keystone": {"username": "stackyard", "password": "secret"}},
        "hosts": {"default": "registry.example"}, "port": {"registry": {"default": 5000}}}
    assert keystone.left == {"dep_check": "quay.io/airshipit/kubernetes-entrypoint:latest-ubuntu_noble",
                             "rabbit_init": "docker.io/rabbitmq:4.3.5-management",
                             "test": "docker.io/xrally/xrally-openstack:2.0.0"}
    text = dump(keystone, release)
    assert yaml.safe_load(text) == keystone.values
    assert "#   dep_check: quay.io/airshipit/kubernetes-entrypoint:latest-ubuntu_noble\n" in text
    assert "@sha256:" not in text
    record(config, "glance", digest="")  # built, not pushed
    with pytest.raises(InputError, match="glance image of 2025.1 has not been pushed"):
        chart_values(config, release, rs, "secret")


def test_values_by_digest(tmp_path: Path, workspace: Config) -> None:
    config, release = workspace, workspace.release("2025.1")
    ks, client, glance = (record(config, image, "sha256:" + c * 64) for image, c in
                          (("keystone", "a"), ("openstack-client", "b"), ("glance", "c")))
    charts = chart_values(config, release, recipes(tmp_path), "secret", by_digest=True)
    assert charts["keystone"].values["images"]["tags"] == {
        "bootstrap": f"{client.repository}@sha256:{'b' * 64}", "db_init": f"{client.repository}@sha256:{'b' * 64}",
        "keystone_api": f"{ks.repository}@sha256:{'a' * 64}", "keystone_db_sync": f"{ks.repository}@sha256:{'a' * 64}",
        "ks_user": f"{client.repository}@sha256:{'b' * 64}"}
    assert charts["glance"].values["images"]["tags"] == {"glance_api": f"{glance.repository}@sha256:{'c' * 64}"}
    assert charts["glance"].left == {"image_repo_sync": "docker.io/docker:17.07.0"}
    text = dump(charts["glance"], release)
    assert glance.dated_tag not in text and f"glance_api: {glance.repository}@sha256:{'c' * 64}\n" in text


def test_a_key_the_chart_lacks_is_an_error(tmp_path: Path, workspace: Config) -> None:
    config, release = workspace, workspace.release("2025.1")
    record(config, "glance")
    bad = RECIPES["glance"].replace("[glance_api]", "[glance_api, glance_registry]")
    with pytest.raises(InputError, match="the glance chart has no images.tags key glance_registry"):
        chart_values(config, release, recipes(tmp_path, glance=bad), "secret")
    unknown = RECIPES["glance"].replace("chart: glance", "chart: glancy")
    with pytest.raises(InputError, match="image.chart: glancy is not an openstack-helm chart"):
        chart_values(config, release, recipes(tmp_path, glance=unknown), "secret")
    (config.paths.images / "charts" / "IMAGES.tsv").write_text("chart\timage_key\tdefault_image\nglance\tglance_api\n")
    with pytest.raises(InputError, match=r"IMAGES.tsv:2: expected chart, image_key, default_image"):
        chart_values(config, release, recipes(tmp_path), "secret")


def test_dump_without_keys_left(workspace: Config) -> None:
    chart = ChartValues("placement", {"images": {"tags": {"placement": "r:t"}}}, {})
    text = dump(chart, workspace.release("2025.1"))
    assert "left to the chart" not in text and yaml.safe_load(text) == chart.values
