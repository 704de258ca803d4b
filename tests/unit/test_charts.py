"""stackyard.charts: the charts' scripts and configuration rendered from the vendored images/charts/openstack-helm (pure)."""

from __future__ import annotations

import base64
import configparser
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from stackyard.charts import render as R
from stackyard.charts.gotemplate import TemplateUnsupported, render
from stackyard.charts.plan import charts_for
from stackyard.errors import InputError
from tests.conftest import ROOT

CHARTS = ROOT / "images" / "charts" / "openstack-helm"  # vendored; tests/integration/test_chart_snapshot.py keeps it upstream's


def endpoints() -> R.Endpoints:
    users = ("glance", "placement", "nova", "neutron", "cinder")
    return R.Endpoints({"db-root": "rootpw", "admin": "adminpw", "memcache": "mc",
                        **{f"db-{c}": f"db-{c}-pw" for c in R.CHARTS}, **{f"rabbit-{c}": f"mq-{c}-pw" for c in R.CHARTS},
                        **{f"ks-{u}": f"ks-{u}-pw" for u in users}})


# -- the Go template subset ----------------------------------------------------------------------------------

def test_trim_markers_comments_and_fields() -> None:
    text = "a\n{{/* licence */}}\nb {{- .Values.x }} c\n{{- if .Values.on }}\non{{ end }}\n"
    assert render(text, {"x": 1, "on": True}) == "a\n\nb1 c\non\n"


def test_if_else_if_else_and_go_truth() -> None:
    t = "{{ if .Values.a }}A{{ else if .Values.b }}B{{ else }}C{{ end }}"
    assert [render(t, v) for v in ({"a": "x"}, {"a": "", "b": [1]}, {"a": 0, "b": {}})] == ["A", "B", "C"]


def test_range_over_maps_in_key_order_and_lists_with_variables() -> None:
    t = "{{ range $k, $v := .Values.m }}{{ $k }}={{ $v.n }};{{ end }}|{{ range .Values.l }}<{{ . }}>{{ end }}"
    assert render(t, {"m": {"b": {"n": 2}, "a": {"n": 1}}, "l": ["x", "y"]}) == "a=1;b=2;|<x><y>"


def test_functions_pipes_and_parentheses() -> None:
    t = ('{{ .Values.s | default "none" }} {{ .Values.name | quote }} {{ and (empty .Values.h) (.Values.f) }} '
         '{{ if eq .Values.k "x" }}eq{{ end }} {{ has "ovn" .Values.b }} {{ kindIs "slice" .Values.b }} '
         '{{ printf "%s-%d" "a" 3 }} {{ replace "_" "-" "a_b" }}')
    assert render(t, {"s": None, "name": 'my "n"', "h": "", "f": True, "k": "x", "b": ["ovs"]}) == \
        'none "my \\"n\\"" true eq false true a-3 a-b'


def test_booleans_print_in_lower_case_and_nil_as_nothing() -> None:
    assert render("{{ .Values.t }} {{ .Values.f }} [{{ .Values.n }}]", {"t": True, "f": False, "n": None}) == \
        "true false []"


def test_helm_toolkit_helpers_are_refused_by_name() -> None:
    with pytest.raises(TemplateUnsupported, match="include"):
        render('{{ tuple "identity" . | include "helm-toolkit.endpoints.x" }}', {})
    with pytest.raises(TemplateUnsupported, match="no {{ end }}"):
        render("{{ if .Values.a }}x", {"a": 1})


# -- the charts' scripts -----------------------------------------------------------------------------------

@pytest.mark.parametrize("chart", R.CHARTS)
def test_every_script_the_run_uses_renders_without_template_actions(chart: str) -> None:
    for step in R.chart_steps(CHARTS, chart, endpoints()):
        for f in step.files:
            if f.path.endswith(".sh"):
                assert "{{" not in f.content, (chart, f.path)
                assert f.content.startswith("#!/bin/bash"), (chart, f.path)


def test_nova_compute_script_follows_the_values() -> None:
    values = R.chart_values(CHARTS, "nova", endpoints())
    text = R.render_script(CHARTS, "nova", "nova-compute.sh", values)
    assert "exec nova-compute" in text and "--config-file /etc/nova/nova.conf" in text
    assert "/tmp/pod-shared/nova-hypervisor.conf" in text and "/tmp/pod-shared/nova-libvirt.conf" in text
    # the run sets [DEFAULT] host and console.address_search_enabled: false, so these two are left out
    assert "nova-compute-fqdn.conf" not in text and "nova-console.conf" not in text
    chart_default = R.render_script(CHARTS, "nova", "nova-compute.sh", R.load_values(CHARTS, "nova"))
    assert "nova-compute-fqdn.conf" in chart_default


def test_nova_bootstrap_creates_the_run_flavor_only() -> None:
    text = R.render_script(CHARTS, "nova", "bootstrap.sh", R.chart_values(CHARTS, "nova", endpoints()))
    assert "openstack flavor show m1.tiny ||" in text and "m1.large" not in text
    assert "--ram 512" in text and "--disk 1" in text


def test_keystone_db_sync_runs_bootstrap_from_the_environment() -> None:
    steps = {s.name: s for s in R.chart_steps(CHARTS, "keystone", endpoints())}
    sync = steps["db-sync"]
    script = next(f.content for f in sync.files if f.path == "/tmp/db-sync.sh")
    assert "db_sync" in script and "bootstrap" in script
    assert sync.env["OS_BOOTSTRAP_PASSWORD"] == "adminpw"
    assert all("adminpw" not in part for part in sync.command)


def test_a_missing_script_names_the_chart() -> None:
    with pytest.raises(InputError, match=r"nova: the chart has no bin/_nope.sh.tpl"):
        R.render_script(CHARTS, "nova", "nope.sh", {})


# -- the configuration the chart mounts -----------------------------------------------------------------------

def test_oslo_conf_is_helm_toolkits_to_oslo_conf() -> None:
    text = R.oslo_conf({"b": {"z": True, "list": ["a", "b"], "multi": {"type": "multistring", "values": ["x", "y"]},
                              "csv": {"type": "csv", "values": [1, 2]}, "none": None, "ratio": 3.0},
                        "DEFAULT": {"debug": False}, "notasection": "x"})
    assert text == ("[DEFAULT]\ndebug = false\n[b]\ncsv = 1,2\nlist = a,b\nmulti = x\nmulti = y\nnone = \n"
                    "ratio = 3\nz = true\n")


@pytest.mark.parametrize("chart", R.CHARTS)
def test_configuration_parses_and_points_at_the_run(chart: str) -> None:
    steps = R.chart_steps(CHARTS, chart, endpoints())
    files = {f.path: f for s in steps for f in s.files}
    main = {"glance": "/etc/glance/glance-api.conf"}.get(chart, f"/etc/{chart}/{chart}.conf")
    assert f"/etc/{chart}/{chart}.conf.d/chart-verify.conf" in files  # the --config-dir the scripts name
    conf = configparser.RawConfigParser(strict=False)
    conf.read_string(files[main].content)
    section = "placement_database" if chart == "placement" else "database"
    assert conf.get(section, "connection") == f"mysql+pymysql://{chart}:db-{chart}-pw@mariadb:3306/{chart}"
    if chart != "placement":
        assert conf.get("DEFAULT", "transport_url") == f"rabbit://{chart}:mq-{chart}-pw@rabbitmq:5672/{chart}"
    if chart != "keystone":
        assert conf.get("keystone_authtoken", "auth_url") == "http://keystone-api:5000"
        assert conf.get("keystone_authtoken", "password") == f"ks-{chart}-pw"
        uwsgi = configparser.RawConfigParser(strict=False)
        uwsgi.read_string(files[f"/etc/{chart}/{chart}-api-uwsgi.ini"].content)
        assert uwsgi.get("uwsgi", "http-socket") == f"0.0.0.0:{R.APIS[chart][1]}"
        assert uwsgi.get("uwsgi", "module") == yaml.safe_load((CHARTS / chart / "values.yaml").read_text())[
            "conf"][f"{chart}_api_uwsgi"]["uwsgi"]["module"]
    logging = configparser.RawConfigParser()
    logging.read_string(files[f"/etc/{chart}/logging.conf"].content)
    assert logging.get("loggers", "keys").startswith("root")


def test_neutron_server_runs_the_charts_script_with_ml2_for_openvswitch() -> None:
    steps = {s.name: s for s in R.chart_steps(CHARTS, "neutron", endpoints())}
    server = steps["neutron-server"]
    assert server.kind == "service" and server.port == 9696 and server.script == "bin/_neutron-server.sh.tpl"
    files = {f.path: f.content for f in server.files}
    assert "exec uwsgi --ini /etc/neutron/neutron-api-uwsgi.ini" in files["/tmp/neutron-server.sh"]
    assert "ovn.ini" not in files["/tmp/neutron-server.sh"]  # network.backend: openvswitch
    ml2 = configparser.RawConfigParser()
    ml2.read_string(files["/etc/neutron/plugins/ml2/ml2_conf.ini"])
    assert ml2.get("ml2", "mechanism_drivers") == "openvswitch,l2population"
    assert "neutron-db-manage" in next(f.content for f in steps["db-sync"].files if f.path == "/tmp/db-sync.sh")


def test_nova_runs_the_fake_driver_and_keeps_the_charts_other_values() -> None:
    files = {f.path: f for s in R.chart_steps(CHARTS, "nova", endpoints()) for f in s.files}
    conf = configparser.RawConfigParser(strict=False)
    conf.read_string(files["/etc/nova/nova.conf"].content)
    assert conf.get("DEFAULT", "compute_driver") == "fake.FakeDriver"
    assert conf.get("api_database", "connection").endswith("/nova_api")
    assert conf.get("DEFAULT", "state_path") == "/var/lib/nova"  # the chart's own value
    sudoers = files["/etc/sudoers.d/kolla_nova_sudoers"]
    assert "/var/lib/openstack/bin/nova-rootwrap /etc/nova/rootwrap.conf" in sudoers.content and sudoers.mode == 0o440
    assert "/etc/nova/rootwrap.d/compute.filters" in files


def test_keystone_vhost_listens_on_the_identity_port() -> None:
    files = {f.path: f for s in R.chart_steps(CHARTS, "keystone", endpoints()) for f in s.files}
    vhost = files["/etc/apache2/sites-enabled/wsgi-keystone.conf"].content
    assert "Listen 0.0.0.0:5000" in vhost and "<VirtualHost *:5000>" in vhost and "{{" not in vhost


def test_db_init_and_ks_jobs_take_passwords_from_the_environment() -> None:
    ep = endpoints()
    for chart in R.CHARTS:
        for step in R.chart_steps(CHARTS, chart, ep):
            for secret in ep.passwords.values():
                assert all(secret not in part for part in step.command), (chart, step.name)
                if step.image == "openstack-client":
                    assert all(secret not in f.content for f in step.files), (chart, step.name)
    ks = next(s for s in R.chart_steps(CHARTS, "glance", ep) if s.name.startswith("ks-"))
    script = ks.files[0].content
    assert '--password "$SERVICE_PASSWORD_GLANCE" glance' in script
    assert "openstack endpoint create --region RegionOne image internal 'http://glance-api:9292'" in script
    assert ks.env["SERVICE_PASSWORD_GLANCE"] == "ks-glance-pw" and ks.env["OS_PASSWORD"] == "adminpw"


# -- the servers --------------------------------------------------------------------------------------------

def test_rabbit_password_hash_is_rabbitmqs_sha256() -> None:
    salt = bytes([0x90, 0x8d, 0xc6, 0x0a])
    expected = base64.b64encode(salt + hashlib.sha256(salt + b"test12").digest()).decode()
    assert R.rabbit_password_hash("test12", salt) == expected
    definitions = json.loads(R.rabbit_definitions(("keystone", "nova"), endpoints(), {"keystone": salt, "nova": salt}))
    assert [u["name"] for u in definitions["users"]] == ["keystone", "nova"]
    assert definitions["permissions"][1] == {"user": "nova", "vhost": "nova", "configure": ".*", "write": ".*",
                                             "read": ".*"}
    assert "mq-nova-pw" not in json.dumps(definitions)


def test_hosts_are_fixed_addresses_outside_the_dynamic_range() -> None:
    hosts = R.hosts(R.CHARTS, "10.201.3")
    assert hosts["mariadb"] == "10.201.3.10"
    assert {"keystone-api", "glance-api", "placement-api", "nova-api", "nova-compute"} <= set(hosts)
    assert all(10 <= int(ip.rsplit(".", 1)[1]) < 128 for ip in hosts.values())
    assert len(set(hosts.values())) == len(hosts)


def test_charts_for_adds_what_a_chart_needs() -> None:
    assert charts_for(["nova"]) == ("keystone", "glance", "placement", "neutron", "nova")
    assert charts_for(["glance"]) == ("keystone", "glance")
    assert charts_for([]) == R.CHARTS
    with pytest.raises(InputError, match="not heat"):
        charts_for(["heat"])


def test_the_charts_are_where_the_tests_expect(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such chart"):
        R.load_values(tmp_path, "keystone")


def test_jobs_share_a_container_per_chart_and_image_without_clashing_files() -> None:
    steps = [s for chart in R.CHARTS for s in R.chart_steps(CHARTS, chart, endpoints())]
    pods = R.pod_files(steps)
    assert set(pods) == {"openstack-client", "keystone-jobs", "glance-jobs", "placement-jobs", "neutron-jobs",
                         "nova-jobs", "cinder-jobs"}
    client = {f.path for f in pods["openstack-client"]}
    assert {"/tmp/keystone-db-init.py", "/tmp/nova-db-init.py", "/tmp/glance-ks.sh", "/tmp/nova-bootstrap.sh",
            "/tmp/keystone-bootstrap.sh", "/tmp/nova-cell-setup-init.sh"} <= client
    assert not any(p.startswith("/etc/") for p in client)  # the client jobs get no service configuration
    clash = R.Step("nova", "other", "nova", "x", ("true",), files=(R.File("/etc/nova/nova.conf", "other"),))
    with pytest.raises(InputError, match="nova: other: /etc/nova/nova.conf differs"):
        R.pod_files([*steps, clash])


def test_clean_on_an_engine_that_is_not_running_removes_nothing_and_succeeds(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from stackyard import cli

    toml = tmp_path / "stackyard.toml"
    toml.write_text((ROOT / "stackyard.toml").read_text().replace(
        'engine = "unix://var/run/docker.sock"', f'engine = "unix://{tmp_path}/no-engine.sock"'))
    assert cli.main(["--config", str(toml), "chart-verify", "--clean"]) == 0
    assert "chart-verify: nothing removed: the Docker engine at" in capsys.readouterr().out


def test_chart_verify_needs_a_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stackyard import cli

    assert cli.main(["--config", str(ROOT / "stackyard.toml"), "chart-verify"]) == 2
    assert "chart-verify needs --release (or --clean)" in capsys.readouterr().err


def test_client_jobs_run_as_root_and_service_jobs_as_the_charts_user() -> None:
    for chart in R.CHARTS:
        for step in R.chart_steps(CHARTS, chart, endpoints()):
            if step.image == "openstack-client":
                assert step.user == "root", (chart, step.name)
            elif step.name == "db-sync":
                assert step.user == chart, (chart, step.name)


def test_assignment_reaches_the_variable_declared_outside_the_range() -> None:
    """cinder's bootstrap: ``$l = append $l ...`` in a range, ``has`` after it (Go's ``=`` vs ``:=``)."""
    text = ('{{- $l := list }}{{- range $k, $v := .Values.b }}{{- if $v }}{{- $l = append $l $v }}{{- end }}'
            '{{- end }}{{ has "x" $l }} {{ has "z" $l }}{{ range $i, $v := .Values.c }}{{ $w := $v }}{{ end }}')
    assert render(text, {"b": {"a": "x", "c": None, "d": "y"}, "c": [1]}) == "true false"
    with pytest.raises(TemplateUnsupported, match=r"\$u is assigned but never declared"):
        render("{{ $u = 1 }}", {})
