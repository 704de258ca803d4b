"""stackyard.charts.run: how a chart's job ends (exit 0, a failure, a hang) decided from what the injected runner
answers for its ``docker exec``; no engine, no process."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from stackyard.charts import render as R
from stackyard.charts.run import ChartRun, ChartStepFailed, Row
from stackyard.config import Config
from tests.fakes import FakeRunner
from tests.unit.test_charts import CHARTS, endpoints


def chart_run(config: Config, fake: FakeRunner, *, timeout: float = 600.0) -> ChartRun:
    run = ChartRun(config, config.release("2025.1"), None, CHARTS, ("keystone", "cinder"), runner=fake,
                   run_id="20260101T000000-abcdef", job_timeout=timeout)
    run.ep = endpoints()
    run.dir.mkdir(parents=True, exist_ok=True)
    run.log.parent.mkdir(parents=True, exist_ok=True)
    run.pods = {"cinder-jobs": SimpleNamespace(name="sy-20260101T000000-abcdef-cinder-jobs"),
                "openstack-client": SimpleNamespace(name="sy-20260101T000000-abcdef-openstack-client")}
    return run


def step(name: str) -> R.Step:
    return next(s for s in R.chart_steps(CHARTS, "cinder", endpoints()) if s.name == name)


def test_a_job_that_hangs_fails_naming_chart_script_and_its_last_output(config: Config) -> None:
    fake = FakeRunner().reply("docker", timed_out=True, returncode=-9,
                              stdout="+ cinder-manage db sync\nwaiting for the database at mariadb:3306\n")
    run = chart_run(config, fake, timeout=42)
    with pytest.raises(ChartStepFailed) as info:
        run.job(step("db-sync"))
    message = info.value.message
    assert message.startswith("cinder: bin/_db-sync.sh.tpl (db-sync) did not finish within 42 s (hung; killed")
    assert "waiting for the database at mariadb:3306" in message.splitlines()[-1]
    assert fake.calls[0].timeout == 42
    row = run.outcome.rows[-1]
    assert (row.chart, row.step, row.state) == ("cinder", "db-sync", "timed out")
    assert "timed out" in run.log.read_text()


def test_a_job_that_exits_non_zero_fails_with_its_status_and_one_that_exits_0_passes(config: Config) -> None:
    fake = FakeRunner().reply("docker", returncode=3, stdout="+ cinder-manage db sync\nthe database is on fire\n")
    with pytest.raises(ChartStepFailed, match=r"cinder: bin/_db-sync.sh.tpl \(db-sync\) exited 3 in sy-") as info:
        chart_run(config, fake).job(step("db-sync"))
    assert info.value.message.endswith("the database is on fire")
    ok = FakeRunner().reply("docker", stdout="+ cinder-manage db sync\nupgraded to 20250101\n")
    row = chart_run(config, ok).job(step("db-sync"))
    assert (row.state, row.detail) == ("exited 0", "upgraded to 20250101")


def test_a_job_runs_as_its_user_with_its_environment_by_name_only(config: Config) -> None:
    fake = FakeRunner()
    run = chart_run(config, fake)
    run.job(step("create-internal-tenant"))
    call = fake.calls[0]
    assert call.argv[:5] == ("docker", "--host", config.images.engine, "exec", "--user")
    assert call.argv[-3:] == ("sy-20260101T000000-abcdef-openstack-client", "bash",
                              "/tmp/cinder-create-internal-tenant-id.sh")
    assert ("--env", "OS_PASSWORD") == call.argv[call.argv.index("OS_PASSWORD") - 1:call.argv.index("OS_PASSWORD") + 1]
    assert call.env["OS_PASSWORD"] == "adminpw" and call.env["INTERNAL_PROJECT_NAME"] == "internal_cinder"
    assert not any("adminpw" in a for a in call.argv)  # the secret is in the environment, never the command line
    logged = "".join(p.read_text() for p in (run.dir / "exec").iterdir())
    assert "adminpw" not in logged and "OS_PASSWORD=********" in logged


def test_a_scenario_command_that_hangs_fails_the_step(config: Config) -> None:
    fake = FakeRunner().reply("docker", timed_out=True, stdout="Starting new HTTP connection\n")
    run = chart_run(config, fake)
    row = Row("cinder", "volume service list", "scenario")
    with pytest.raises(ChartStepFailed, match="did not finish within 180 s") as info:
        run.osc(run.pods["openstack-client"], "openstack volume service list", row)
    assert "Starting new HTTP connection" in info.value.message


def test_cinder_runs_its_api_and_scheduler_after_db_sync_and_identity() -> None:
    steps = R.chart_steps(CHARTS, "cinder", endpoints())
    names = [s.name for s in steps]
    assert names == ["db-init", "db-sync", "ks-user/ks-service/ks-endpoints", "create-internal-tenant", "cinder-api",
                     "cinder-scheduler", "bootstrap"]
    api = steps[names.index("cinder-api")]
    assert api.command == ("uwsgi", "--ini", "/etc/cinder/cinder-api-uwsgi.ini") and api.port == 8776
    files = {f.path: f.content for f in api.files}
    assert "http-socket = 0.0.0.0:8776" in files["/etc/cinder/cinder-api-uwsgi.ini"]
    assert "volume_backend_name = rbd1" in files["/etc/cinder/conf/backends.conf"]
    conf = files["/etc/cinder/cinder.conf"]
    assert "connection = mysql+pymysql://cinder:db-cinder-pw@mariadb:3306/cinder" in conf
    assert "transport_url = rabbit://cinder:mq-cinder-pw@rabbitmq:5672/cinder" in conf
    boot = next(f.content for f in steps[-1].files)
    assert "openstack volume type create" in boot and "volume_backend_name=rbd1" in boot


def test_novas_services_wait_for_the_endpoints_of_the_charts_it_needs(config: Config) -> None:
    """nova-compute exits when placement's endpoint is not in the catalog yet (seen in a five-chart run)."""
    run = ChartRun(config, config.release("2025.1"), None, CHARTS, ("keystone", "placement", "nova"),
                   runner=FakeRunner(), run_id="20260101T000000-abcdef")
    compute = next(s for s in R.chart_steps(CHARTS, "nova", endpoints()) if s.name == "nova-compute")
    run.abort.set()
    with pytest.raises(ChartStepFailed, match="nova: nova-compute not run: placement's endpoints were not made"):
        run._await_identity(compute)
    run.abort.clear()
    run.identity["placement"].set()
    run._await_identity(compute)  # returns: placement's endpoints are there
