"""What the charts hard-code, vendored in images/charts/PATHS.tsv, and the provenance lines of /etc/image_info."""

from __future__ import annotations

from pathlib import Path

from stackyard.charts.paths import chart_paths, paths_tsv, read_paths_tsv
from stackyard.images.build import PublishedDeb, image_info_lines
from stackyard.images.build import chart_paths as image_chart_paths
from stackyard.recipes import load_recipes
from tests.conftest import ROOT

CHARTS = ROOT / "images" / "charts" / "openstack-helm"  # vendored; tests/integration/test_chart_snapshot.py keeps it upstream's
VENDORED = ROOT / "images" / "charts" / "PATHS.tsv"


def test_the_vendored_paths_are_the_charts() -> None:
    expected = paths_tsv(chart_paths(CHARTS))
    assert VENDORED.read_text() == expected, (
        "images/charts/PATHS.tsv differs from what the charts under images/charts/openstack-helm name; fix: "
        ".venv/bin/python -c \"from pathlib import Path; from stackyard.charts.paths import chart_paths, paths_tsv; "
        "Path('images/charts/PATHS.tsv').write_text(paths_tsv(chart_paths(Path('images/charts/openstack-helm'))))\"")


def test_what_the_charts_name_is_in_the_table() -> None:
    table = read_paths_tsv(VENDORED.read_text())
    nova = dict(table["nova"])
    assert "nova/values.yaml" == nova["/var/lib/openstack/bin/nova-rootwrap"]  # conf.nova_sudoers
    assert "/usr/bin/sudo" in nova and "/etc/sudoers.d" in nova and "/usr/bin/uwsgi" in nova
    glance = dict(table["glance"])
    assert glance["/var/lib/openstack/etc/glance/metadefs"] == "glance/bin/_metadefs-load.sh.tpl"
    assert "/var/lib/openstack/bin/neutron-rootwrap" in dict(table["neutron"])
    assert dict(table["keystone"])["/usr/sbin/apache2"].endswith("conf.software.apache2.binary")
    assert "openstack-client" not in table


def test_the_push_check_reads_the_table_of_the_images_directory(tmp_path: Path) -> None:
    images = tmp_path / "images"
    (images / "charts").mkdir(parents=True)
    (images / "charts" / "PATHS.tsv").write_text("image\tpath\tnamed by\nglance\t/a\tx/values.yaml\n")
    toml = tmp_path / "stackyard.toml"
    toml.write_text((ROOT / "stackyard.toml").read_text().replace('images = "images"', f'images = "{images}"'))
    from stackyard.config import load_config

    config = load_config(toml)
    assert image_chart_paths(config, "glance") == [("/a", "x/values.yaml")]
    assert image_chart_paths(config, "openstack-client") == []


def test_image_info_names_the_lock_the_deb_and_the_upstream_version() -> None:
    recipes = load_recipes(ROOT / "recipes")
    from stackyard.config import load_config

    config = load_config(ROOT / "stackyard.toml")
    release = config.release("2025.1")
    deb = PublishedDeb("venv-nova", "31.3.1-2025.1.2", "bookworm-2025.1-staging", Path("/x.deb"), "ef" * 32, (),
                       "0123abcd")
    lines = image_info_lines("nova", release, deb, recipes["nova"], "cd" * 32)
    assert lines == ["image: nova", "openstack-release: 2025.1", "debian: bookworm", "upstream: nova 31.3.1",
                     "upstream-revision: 0123abcd", "upstream-source: nova",
                     "package: venv-nova=31.3.1-2025.1.2", f"package-sha256: {'ef' * 32}",
                     "package-distribution: bookworm-2025.1-staging", f"lock-sha256: {'cd' * 32}"]
