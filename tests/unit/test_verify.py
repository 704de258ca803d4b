"""stackyard verify's decisions, without a process: the plan and its files, the record, the promotion gate."""

from __future__ import annotations

import configparser
import dataclasses
import json
from pathlib import Path

import pytest

from stackyard import cli
from stackyard.config import Config, Release
from stackyard.errors import InputError, exit_code
from stackyard.recipes import load_recipes
from stackyard.repo.apt import LIST_FORMAT, AptRepository
from stackyard.verify import container as container_mod
from stackyard.verify.plan import DEFAULT_PROJECTS, Override, close_projects, make_plan, set_option
from stackyard.verify.record import (
    PackageRecord,
    StepRecord,
    VerifyRecord,
    read_packages_index,
    read_records,
    refusals,
    write_record,
)
from stackyard.verify.run import Session, StepFailed, VerifyError
from tests.fake_repo import listing
from tests.fakes import FakeRunner

FPR = "0123456789ABCDEF0123456789ABCDEF01234567"
SECRET_KEYS = f"sec:u:3072:1:89ABCDEF01234567:1700000000:::u:::scESC:::+:::23::0:\nfpr:::::::::{FPR}:\n"
PASSWORDS = {n: f"pw-{n}" for n in ("admin", "demo", "glance", "placement", "neutron", "nova", "db-keystone", "db-glance",
                                    "db-placement", "db-neutron", "db-nova", "rabbit-neutron", "rabbit-nova")}


@pytest.fixture(scope="module")
def recipes(request: pytest.FixtureRequest) -> dict:
    return load_recipes(Path(__file__).resolve().parents[2] / "recipes")


def ini(plan_files, path: str) -> configparser.ConfigParser:  # noqa: ANN001
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(next(f.content for f in plan_files if f.path == path))
    return parser


# -- the plan -----------------------------------------------------------------

def test_the_default_set_closes_over_what_nova_needs_in_start_order() -> None:
    assert close_projects([]) == close_projects(DEFAULT_PROJECTS) == (
        "keystone", "glance", "placement", "neutron", "nova", "python-openstackclient")
    assert close_projects(["glance"]) == ("keystone", "glance", "python-openstackclient")
    assert close_projects(["nova", "cinder"])[-2:] == ("cinder", "python-openstackclient")  # cinder only when asked for
    with pytest.raises(InputError, match="verify cannot run heat yet"):
        close_projects(["heat"])


def test_the_files_are_what_puppet_writes_with_the_plan_s_passwords(recipes: dict) -> None:
    plan = make_plan(recipes, [], hostname="sy-verify-2025-1", passwords=PASSWORDS)
    assert plan.packages == ("venv-keystone", "venv-glance", "venv-placement", "venv-neutron", "venv-nova",
                             "venv-python-openstackclient")
    keystone = ini(plan.files, "/etc/keystone/keystone.conf")
    assert keystone["database"]["connection"] == "mysql+pymysql://keystone:pw-db-keystone@127.0.0.1/keystone?charset=utf8"
    assert keystone["cache"]["backend"] == "dogpile.cache.memcached" and keystone["cache"]["memcache_servers"] == "127.0.0.1:11211"
    assert keystone["token"]["provider"] == "fernet"
    nova = ini(plan.files, "/etc/nova/nova.conf")
    assert nova["DEFAULT"]["compute_driver"] == "fake.SmallFakeDriver"
    assert nova["DEFAULT"]["transport_url"] == "rabbit://nova:pw-rabbit-nova@127.0.0.1:5672/"
    assert nova["api_database"]["connection"].endswith("@127.0.0.1/nova_api?charset=utf8")
    assert nova["keystone_authtoken"]["memcached_servers"] == "127.0.0.1:11211"
    assert nova["keystone_authtoken"]["password"] == nova["placement"]["password"] == "pw-nova"
    assert nova["neutron"]["username"] == "nova"
    glance = ini(plan.files, "/etc/glance/glance-api.conf")
    assert glance["DEFAULT"]["enabled_backends"] == "file:file" and glance["glance_store"]["default_backend"] == "file"
    ml2 = ini(plan.files, "/etc/neutron/plugins/ml2/ml2_conf.ini")
    assert ml2["ml2"]["mechanism_drivers"] == "openvswitch"
    by_path = {f.path: f for f in plan.files}
    assert (by_path["/etc/nova/nova.conf"].group, by_path["/etc/nova/nova.conf"].mode) == ("nova", "0640")
    assert "CREATE DATABASE IF NOT EXISTS nova_cell0" in plan.sql and "'nova'@'127.0.0.1' IDENTIFIED BY 'pw-db-nova'" in plan.sql
    assert plan.rabbit_users == ("neutron", "nova")
    assert [u.name for u in plan.units] == ["keystone-api", "glance-api", "placement-api", "neutron-api",
                                            "neutron-rpc-server", "nova-api", "nova-conductor", "nova-scheduler", "nova-compute"]
    assert next(u for u in plan.units if u.name == "glance-api").url == "http://127.0.0.1:9292/versions"
    assert ("nova", "nova-manage cell_v2 map_cell0") in [(p, c.text) for p, c in plan.setup]
    assert all(c.user == p for p, c in plan.setup if "db" in c.text)  # the database commands run as the service user


def test_keystone_alone_needs_no_rabbit_and_no_service_user(recipes: dict) -> None:
    plan = make_plan(recipes, ["keystone"], hostname="h")
    assert plan.projects == ("keystone", "python-openstackclient")
    assert plan.rabbit_users == () and plan.service_users == () and [u.name for u in plan.units] == ["keystone-api"]
    assert len(plan.passwords["admin"]) == 24 and plan.passwords["admin"] != make_plan(recipes, ["keystone"], hostname="h").passwords["admin"]


def test_an_override_sets_one_option_after_rendering(recipes: dict) -> None:
    plan = make_plan(recipes, ["nova"], hostname="h", passwords=PASSWORDS,
                     overrides=(Override.parse("nova.conf:DEFAULT.compute_driver=fake.NoSuchDriver"),
                                Override.parse("/etc/keystone/keystone.conf:cache.backend=no.such.backend")))
    assert ini(plan.files, "/etc/nova/nova.conf")["DEFAULT"]["compute_driver"] == "fake.NoSuchDriver"
    assert ini(plan.files, "/etc/keystone/keystone.conf")["cache"]["backend"] == "no.such.backend"
    with pytest.raises(InputError, match="--set nope.conf:a.b=c: no such file"):
        make_plan(recipes, ["keystone"], hostname="h", overrides=(Override.parse("nope.conf:a.b=c"),))
    with pytest.raises(InputError, match="expected FILE:SECTION.KEY=VALUE"):
        Override.parse("nova.conf:compute_driver")


def test_set_option_replaces_adds_and_makes_sections() -> None:
    text = "[DEFAULT]\na = 1\n\n[x]\nb = 2\n"
    assert set_option(text, "DEFAULT", "a", "9") == "[DEFAULT]\na = 9\n\n[x]\nb = 2\n"
    assert set_option(text, "DEFAULT", "c", "3") == "[DEFAULT]\na = 1\nc = 3\n\n[x]\nb = 2\n"
    assert set_option(text, "x", "c", "3") == "[DEFAULT]\na = 1\n\n[x]\nb = 2\nc = 3\n"
    assert set_option(text, "y", "d", "4") == text + "\n[y]\nd = 4\n"


def test_the_catalog_s_endpoints_are_on_the_port_each_recipe_declares(recipes: dict) -> None:
    plan = make_plan(recipes, ["nova", "cinder"], hostname="h")
    endpoints = {entry.type: (owner, url) for owner, entry, url in plan.catalog}
    assert endpoints["compute"] == ("nova", "http://127.0.0.1:8774/v2.1")
    assert endpoints["image"] == ("glance", "http://127.0.0.1:9292")
    assert endpoints["block-storage"] == ("cinder", "http://127.0.0.1:8776/v3/%(project_id)s")
    apis = tuple(dataclasses.replace(a, port=18774) for a in recipes["nova"].apis)
    moved = make_plan(dict(recipes, nova=dataclasses.replace(recipes["nova"], apis=apis)), ["nova"], hostname="h", passwords=PASSWORDS)
    assert ("nova", "http://127.0.0.1:18774/v2.1") in [(owner, url) for owner, _, url in moved.catalog]
    assert "GRANT ALL PRIVILEGES ON nova_cell0.* TO 'nova'@'localhost';" in moved.sql  # every nova database is the nova user's


def test_a_unit_the_package_does_not_ship_is_an_input_error(recipes: dict) -> None:
    broken = dict(recipes, nova=dataclasses.replace(recipes["nova"], services=()))
    with pytest.raises(InputError, match=r"nova.yaml: venv-nova has no unit nova-conductor, nova-scheduler, nova-compute"):
        make_plan(broken, ["nova"], hostname="h")


# -- records and the gate -------------------------------------------------------

def record(started: str, passed: bool, packages: dict[str, str], failure: dict | None = None) -> VerifyRecord:
    return VerifyRecord(release="2025.1", distribution="bookworm-2025.1-staging", started=started, projects=[],
                        packages=[PackageRecord(n, v, f"sha-{n}-{v}") for n, v in packages.items()],
                        steps=[StepRecord("boot", "phase", seconds=1.5)], passed=passed, failure=failure)


def staged(name: str, version: str) -> PackageRecord:
    return PackageRecord(name, version, f"sha-{name}-{version}")


def test_records_are_kept_and_read_oldest_first(tmp_path: Path) -> None:
    write_record(tmp_path, record("20250101T000000Z", True, {"venv-keystone": "1"}))
    path = write_record(tmp_path, record("20250102T000000Z", False, {"venv-keystone": "1"}, {"unit": "keystone-api"}))
    (tmp_path / "records" / "garbage.json").write_text("{not json")
    assert path == tmp_path / "record.json" and json.loads(path.read_text())["passed"] is False
    found = read_records(tmp_path)
    assert [r.started for _, r in found] == ["20250101T000000Z", "20250102T000000Z"]
    assert found[1][1].failure == {"unit": "keystone-api"} and found[0][1].steps[0].seconds == 1.5


def test_the_gate_wants_the_latest_verify_of_that_very_file_to_have_passed(tmp_path: Path) -> None:
    missing = refusals(tmp_path, {"venv-keystone": staged("venv-keystone", "1")})
    assert missing == {"venv-keystone": f"venv-keystone 1: no verify record has it; {tmp_path}/record.json is missing"}

    write_record(tmp_path, record("20250101T000000Z", True, {"venv-keystone": "1", "venv-nova": "1"}))
    assert refusals(tmp_path, {"venv-keystone": staged("venv-keystone", "1"), "venv-nova": "1"}) == {}
    assert refusals(tmp_path, {"openstack-wheels-2025.1": staged("openstack-wheels-2025.1", "9")}) == {}  # travels along
    newer = refusals(tmp_path, {"venv-keystone": staged("venv-keystone", "2")})
    assert newer["venv-keystone"].startswith("venv-keystone 2: no verify record has it (verified: 1)")
    rebuilt = refusals(tmp_path, {"venv-keystone": PackageRecord("venv-keystone", "1", "another-sha")})
    assert "no verify record has it" in rebuilt["venv-keystone"]  # same version, other file: not what was verified

    write_record(tmp_path, record("20250102T000000Z", False, {"venv-keystone": "1"}, {"step": "start", "unit": "keystone-api"}))
    later = refusals(tmp_path, {"venv-keystone": staged("venv-keystone", "1"), "venv-nova": staged("venv-nova", "1")})
    assert list(later) == ["venv-keystone"]  # nova's latest verify still passed
    assert later["venv-keystone"] == ("venv-keystone 1: its latest verify "
                                      f"{tmp_path}/records/20250102T000000Z.json failed at keystone-api")


@pytest.fixture
def staged_repo(config: Config, release: Release) -> tuple[FakeRunner, AptRepository]:
    """A repository whose staging holds venv-keystone 1 and the wheels deb (reprepro is a fake)."""
    fake = FakeRunner().reply("gpg", "--batch", "--no-tty", "--homedir", str(config.repo.gnupg_home), "--with-colons",
                              stdout=SECRET_KEYS)
    fake.reply("reprepro", "--basedir", str(config.repo.path), "--silent", f"--list-format={LIST_FORMAT}", "list",
               stdout=listing("bookworm-2025.1-staging", [("venv-keystone", "1"), ("openstack-wheels-2025.1", "9")]))
    (config.repo.path / "db").mkdir(parents=True)
    binary = config.repo.path / "dists/bookworm-2025.1-staging/main/binary-amd64"
    binary.mkdir(parents=True)
    (binary / "Packages").write_text("Package: venv-keystone\nVersion: 1\nFilename: pool/main/v/venv-keystone/k.deb\n"
                                     "SHA256: sha-venv-keystone-1\n\n"
                                     "Package: openstack-wheels-2025.1\nVersion: 9\nSHA256: w\n")
    return fake, AptRepository(config, runner=fake)


def test_promote_refuses_without_a_passing_record_and_copies_nothing(staged_repo: tuple, config: Config,
                                                                    release: Release) -> None:
    fake, repo = staged_repo
    assert read_packages_index(config.repo.path / "dists/bookworm-2025.1-staging", "main", "amd64")["venv-keystone"].sha256 \
        == "sha-venv-keystone-1"
    with pytest.raises(InputError) as info:
        repo.promote(release, ["venv-keystone"])
    assert exit_code(info.value) == 2
    assert "venv-keystone 1: no verify record has it" in str(info.value) and "verify/2025.1/record.json is missing" in str(info.value)
    assert "stackyard verify --release 2025.1 keystone" in str(info.value)
    assert not any("copy" in c.argv for c in fake.calls)


def test_promote_goes_with_a_passing_record_or_a_reason_which_the_snapshot_keeps(staged_repo: tuple, config: Config,
                                                                               release: Release) -> None:
    fake, repo = staged_repo
    _, snapshot = repo.promote(release, ["venv-keystone"], force="hotfix, verified by hand")
    copy = next(c.argv for c in fake.calls if "copy" in c.argv)
    assert copy[-4:] == ("bookworm-2025.1", "bookworm-2025.1-staging", "venv-keystone", "openstack-wheels-2025.1")
    note = json.loads((config.repo.path / "dists/bookworm-2025.1/snapshots" / snapshot / "promotion.json").read_text())
    assert note["forced"] == "hotfix, verified by hand" and note["packages"]["venv-keystone"] == "1"

    write_record(config.paths.output / "verify/2025.1", record("20250101T000000Z", True, {"venv-keystone": "1"}))
    _, snapshot = repo.promote(release, [])
    note = json.loads((config.repo.path / "dists/bookworm-2025.1/snapshots" / snapshot / "promotion.json").read_text())
    assert note["forced"] is None and note["verified"] == {"venv-keystone": "verify 20250101T000000Z (bookworm-2025.1-staging)"}


def test_the_cli_wants_a_reason_with_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                           config: Config) -> None:
    assert cli.main(["--config", str(config.file), "promote", "--release", "2025.1", "--force", " "]) == 2
    assert "--force needs a reason" in capsys.readouterr().err


# -- failures name the unit and its journal ---------------------------------------

class FakeContainer:
    running = True
    workdir = Path("/var/verify/2025.1")
    root = workdir / "root"

    def unit_state(self, unit: str) -> dict[str, str]:
        return {"ActiveState": "failed" if unit == "nova-compute" else "active", "SubState": "failed"}

    def journal(self, unit: str, lines: int = 30) -> str:
        return "\n".join(f"{unit} line {i}" for i in range(100))


def test_a_failed_step_names_the_unit_that_is_down_and_the_tail_of_its_journal(recipes: dict, config: Config,
                                                                             release: Release) -> None:
    plan = make_plan(recipes, ["nova"], hostname="h", passwords=PASSWORDS)
    session = Session(config, release, plan, FakeContainer(), lambda e: None)  # type: ignore[arg-type]
    with pytest.raises(VerifyError) as info:
        with session.step("compute service list", units=("nova-conductor", "nova-compute")):
            raise StepFailed("nova-compute is not up")
    text = str(info.value)
    assert exit_code(info.value) == 5
    assert text.startswith("verify 2025.1: compute service list failed (nova-compute.service): nova-compute is not up")
    assert "--- nova-compute.service is failed/failed; journalctl -u nova-compute (last 30 lines) ---" in text
    assert "nova-compute line 99" in text and "nova-compute line 69" not in text and "nova-conductor" not in text.split("---")[1]
    assert session.failure and session.failure["unit"] == "nova-compute" and session.steps[0].result == "failed"


def test_the_first_errors_of_a_journal_come_before_its_tail() -> None:
    from stackyard.verify.run import first_errors

    journal = "\n".join([
        "Nov 29 15:41:04 h uwsgi[581]: 2026-11-29 15:41:04.338 581 ERROR stevedore.extension [-] Could not load 'cinder'",
        "Nov 29 15:41:05 h uwsgi[581]: 2026-11-29 15:41:05.107 581 CRITICAL glance [None req-1 - -] Unhandled error: RuntimeError: x",
        "Nov 29 15:41:05 h uwsgi[581]: 2026-11-29 15:41:05.107 581 ERROR glance Traceback (most recent call last):",
        "Nov 29 15:41:05 h uwsgi[581]: 2026-11-29 15:41:05.107 581 ERROR glance   File \"/opt/x.py\", line 1",
        "Nov 29 15:41:06 h uwsgi[590]: 2026-11-29 15:41:06.107 590 CRITICAL glance [None req-2 - -] Unhandled error: RuntimeError: x",
        "Nov 29 15:41:06 h systemd[1]: glance-api.service: Failed with result 'exit-code'.",
    ])
    assert [line.split(" 581 ")[1] for line in first_errors(journal)] == [
        "CRITICAL glance [None req-1 - -] Unhandled error: RuntimeError: x",
        "ERROR stevedore.extension [-] Could not load 'cinder'"]


# -- leftovers --------------------------------------------------------------------

def test_a_leftover_root_is_removed_and_dead_pids_are_not_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "root/etc").mkdir(parents=True)
    (tmp_path / "container.json").write_text(json.dumps({"leader": 999999999, "leader_starttime": 5,
                                                         "nspawn": 999999998, "nspawn_starttime": 5}))
    killed: list[int] = []
    monkeypatch.setattr(container_mod, "_kill", killed.append)
    monkeypatch.setattr(container_mod, "mounts_under", lambda d: [])
    fake = FakeRunner()
    done = container_mod.clean_leftovers(tmp_path, tmp_path / "log", runner=fake)
    assert killed == [] and done == [f"removed {tmp_path / 'root'}"]
    assert fake.calls[0].argv == ("rm", "-rf", "--one-file-system", str(tmp_path / "root"))
    assert not (tmp_path / "container.json").exists()


def test_the_cli_renders_the_record_as_a_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str], config: Config) -> None:
    from stackyard.verify import run

    rec = record("20250101T000000Z", True, {"venv-keystone": "1"})
    rec.steps = [StepRecord("start keystone-api", "unit", seconds=2.5, service="keystone-api", state="active",
                            api="200 http://127.0.0.1:5000/v3 after 2.5s"),
                 StepRecord("tenant: token issue", "scenario", seconds=0.8, service="keystone", detail="token of 183 characters")]
    rec.seconds, rec.phases, rec.peak_memory_bytes = 100.0, {"boot+install": 50.0}, 3 * 2**30
    seen = {}

    def fake_verify(config, release, projects, **kw):  # noqa: ANN001, ANN003, ANN202
        seen.update(projects=projects, **kw)
        return run.VerifyResult(rec, tmp_path / "record.json", tmp_path, [])

    monkeypatch.setattr(run, "verify", fake_verify)
    assert cli.main(["--config", str(config.file), "verify", "--release", "2025.1", "keystone",
                     "--set", "keystone.conf:DEFAULT.debug=true"]) == 0
    out = capsys.readouterr().out
    assert seen["projects"] == ["keystone"] and str(seen["overrides"][0]) == "keystone.conf:DEFAULT.debug=true"
    lines = out.splitlines()
    assert lines[0].split() == ["service", "unit", "state", "API", "answered", "scenario", "step", "seconds"]
    assert lines[2].split()[:3] == ["keystone-api", "active", "200"] and lines[2].endswith("2.5")
    assert "tenant: token issue: token of 183 characters" in lines[3]
    assert "verify 2025.1: passed in 100s (boot+install 50s); peak memory 3.0 GiB" in out


def test_a_package_missing_from_staging_names_it_and_the_commands_that_build_and_publish_it(config: Config,
                                                                                          release: Release) -> None:
    from stackyard.debs.venv_deb import debs_dir
    from stackyard.verify.run import missing_error

    built = debs_dir(config, release)
    built.mkdir(parents=True)
    (built / "venv-glance_30.2.0-2025.1.1_amd64.deb").write_bytes(b"")
    error = missing_error(config, release, "bookworm-2025.1-staging", False, ["venv-nova", "venv-glance"])
    assert exit_code(error) == 2 and str(error).startswith("venv-nova, venv-glance not in bookworm-2025.1-staging")
    assert error.hint == "stackyard deb --release 2025.1 nova, then stackyard publish --release 2025.1 nova glance"
    promoted = missing_error(config, release, "bookworm-2025.1", True, ["venv-nova"])
    assert promoted.hint.startswith("stackyard promote --release 2025.1 nova (after a passing stackyard verify")


# -- --upgrade ------------------------------------------------------------------

def _staged(config: Config, distribution: str, packages: dict[str, str]) -> None:
    binary = config.repo.path / "dists" / distribution / "main/binary-amd64"
    binary.mkdir(parents=True, exist_ok=True)
    (binary / "Packages").write_text("".join(f"Package: {n}\nVersion: {v}\nFilename: pool/main/v/{n}/{n}_{v}.deb\n"
                                             f"SHA256: sha-{n}-{v}\n\n" for n, v in packages.items()))


RELEASE_2025_2 = """
[releases."2025.2"]
series = "flamingo"
codename = "bookworm"
upstream = "https://example.invalid/2025.2"
"""


def test_an_upgrade_is_planned_only_to_a_newer_package_the_repository_has(recipes: dict, make_config) -> None:  # noqa: ANN001
    from stackyard.verify.upgrade import plan_upgrades

    config = make_config(extra=RELEASE_2025_2)
    release = config.release("2025.1")

    plan = make_plan(recipes, ["keystone"], hostname="h", passwords=PASSWORDS)
    installed = {"venv-keystone": PackageRecord("venv-keystone", "27.0.2-2025.1.1", "a"),
                 "venv-python-openstackclient": PackageRecord("venv-python-openstackclient", "7.5.0-2025.1.1", "b")}
    target = config.release("2025.2")
    with pytest.raises(InputError) as info:
        plan_upgrades(config, release, plan, {"keystone": target}, promoted=False, installed=installed)
    assert str(info.value).startswith("venv-keystone not in bookworm-2025.2-staging\n")
    assert info.value.hint == "stackyard deb --release 2025.2 keystone, then stackyard publish --release 2025.2 keystone"

    _staged(config, "bookworm-2025.2-staging", {"venv-keystone": "28.0.2-2025.2.1"})
    (upgrade,) = plan_upgrades(config, release, plan, {"keystone": target}, promoted=False, installed=installed)
    assert (upgrade.project, upgrade.distribution, upgrade.package.version) == (
        "keystone", "bookworm-2025.2-staging", "28.0.2-2025.2.1")

    with pytest.raises(InputError, match="--upgrade nova=2025.2: nova is not part of this verify"):
        plan_upgrades(config, release, plan, {"nova": target}, promoted=False, installed=installed)
    with pytest.raises(InputError, match="--upgrade keystone=2025.1: the control plane already runs 2025.1"):
        plan_upgrades(config, release, plan, {"keystone": release}, promoted=False, installed=installed)
    _staged(config, "bookworm-2025.2-staging", {"venv-keystone": "27.0.2-2025.1.1~bpo"})
    with pytest.raises(InputError, match=r"venv-keystone 27\.0\.2-2025\.1\.1~bpo in bookworm-2025\.2-staging is not newer "
                                         r"than 27\.0\.2-2025\.1\.1"):
        plan_upgrades(config, release, plan, {"keystone": target}, promoted=False, installed=installed)


def test_the_upgrade_s_apt_configuration_is_apt_config_s_with_the_project_pinned(make_config) -> None:  # noqa: ANN001
    from stackyard.verify.upgrade import apt_config, download_script

    config = make_config(extra=RELEASE_2025_2)
    files = apt_config(config, config.release("2025.1"), False, b"KEY", {"keystone": config.release("2025.2")},
                       runner=FakeRunner())
    assert "URIs: file:/srv/repo\nSuites: bookworm-2025.2-staging\n" in files[
        "etc/apt/sources.list.d/stackyard-2025.2.sources"].decode()
    pref = files["etc/apt/preferences.d/stackyard.pref"].decode()
    assert pref.index("Package: venv-keystone\nPin: release o=stackyard,n=bookworm-2025.2-staging\nPin-Priority: 995") \
        < pref.index("Pin-Priority: 990")
    script = download_script(["venv-keystone"])  # the upgrade's packages fetched, then the install's apt files back
    assert script.index("cp -a /var/lib/stackyard-verify/apt/upgrade/. /") < script.index("--download-only venv-keystone") \
        < script.index("cp -a /var/lib/stackyard-verify/apt/install/. /")


def test_a_verify_of_the_very_same_packages_need_not_run_again(tmp_path: Path) -> None:
    from stackyard.verify.record import PackageRecord, VerifyRecord, passed_with, write_record

    keystone = PackageRecord("venv-keystone", "1-2025.1.1", "a" * 64, "pool/k.deb")
    record = VerifyRecord("2025.1", "bookworm-2025.1-staging", "20250101T000000Z", ["keystone"], [keystone], passed=True)
    args = ("bookworm-2025.1-staging", ["keystone"], [keystone], [], [])
    assert passed_with(tmp_path, *args) is None  # no record yet
    write_record(tmp_path, record)
    assert passed_with(tmp_path, *args) == (tmp_path / "records" / "20250101T000000Z.json", record)
    rebuilt = PackageRecord("venv-keystone", "1-2025.1.1", "b" * 64, "pool/k.deb")  # same version, other bytes
    assert passed_with(tmp_path, "bookworm-2025.1-staging", ["keystone"], [rebuilt], [], []) is None
    assert passed_with(tmp_path, "bookworm-2025.1", ["keystone"], [keystone], [], []) is None
    assert passed_with(tmp_path, "bookworm-2025.1-staging", ["keystone"], [keystone], ["a.conf:s.k=v"], []) is None
    write_record(tmp_path, VerifyRecord("2025.1", "bookworm-2025.1-staging", "20250102T000000Z", ["keystone"], [keystone]))
    assert passed_with(tmp_path, *args) is None  # the latest failed: it runs again
