"""stackyard verify against the real 2025.1 packages: a control plane from staging answers the scenario,
promote takes what passed; a broken option fails naming the unit and its journal, and promote refuses."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.conftest import Workspace

pytestmark = pytest.mark.e2e

PROJECTS = ("keystone", "glance", "placement", "neutron", "nova", "python-openstackclient")


@pytest.fixture(scope="module")
def published(ws: Workspace) -> Workspace:
    """The packages verify installs, built (those an earlier test did not build) and published to staging."""
    ws.run("wheels", "--release", "2025.1", *PROJECTS)
    debs = ws.root / "var/debs/2025.1"
    missing = [p for p in PROJECTS if not list(debs.glob(f"venv-{p}_*.deb"))]
    if missing:
        ws.run("deb", "--release", "2025.1", *missing)
    ws.run("publish", "--release", "2025.1", *PROJECTS)
    return ws


def staged_sha256(ws: Workspace) -> dict[str, str]:
    text = (ws.root / "var/repo/dists/bookworm-2025.1-staging/main/binary-amd64/Packages").read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r"(?ms)^Package: (\S+)$.*?^SHA256: (\S+)$", text)}


def test_a_control_plane_from_staging_answers_the_scenario_and_promote_takes_it(published: Workspace) -> None:
    ws = published
    r = ws.run("verify", "--release", "2025.1")
    out = r.stdout
    for unit, port in (("keystone-api", 5000), ("glance-api", 9292), ("placement-api", 8778), ("neutron-api", 9696),
                       ("nova-api", 8774)):
        assert re.search(rf"(?m)^{unit}\s+active\s+\d{{3}} http://127\.0\.0\.1:{port}/", out), out
    for unit in ("nova-conductor", "nova-scheduler", "nova-compute", "neutron-rpc-server"):
        assert re.search(rf"(?m)^{unit}\s+active\s", out), out
    for step in ("tenant: token issue", "same sha256", "network, subnet and port create",
                 "compute service list: conductor, scheduler and compute up: up: nova-compute nova-conductor nova-scheduler",
                 "resource provider and its inventory: provider ", "server create --nic none, ACTIVE (fake driver): server ",
                 "server delete, gone from server list", "read 16 bytes of /etc/shadow", "privsep-helper: lo is link 1"):
        assert step in out, (step, out)
    assert "verify 2025.1: passed in" in out

    record = json.loads((ws.root / "var/verify/2025.1/record.json").read_text())
    assert record["passed"] is True and record["distribution"] == "bookworm-2025.1-staging"
    assert {p["name"]: p["sha256"] for p in record["packages"]} == {
        n: s for n, s in staged_sha256(ws).items() if n in {f"venv-{p}" for p in PROJECTS}}
    assert all(s["result"] == "ok" and s["seconds"] >= 0 for s in record["steps"])
    assert set(record["phases"]) == {"boot+install", "start services", "scenario"}
    assert record["seconds"] < 6 * 60 and 0 < record["peak_memory_bytes"] < 6 * 2**30
    # a passing verify leaves nothing: no machine, no mount, no root
    assert not (ws.root / "var/verify/2025.1/root").exists()
    assert str(ws.root / "var/verify") not in open("/proc/self/mounts").read()
    assert "systemd-nspawn" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.replace(
        "[systemd-nspawn] <defunct>", "")

    promoted = ws.run("promote", "--release", "2025.1", *PROJECTS).stdout
    assert re.search(r"bookworm-2025\.1\s+venv-nova\s+31\.3\.1-2025\.1\.\d", promoted), promoted
    snapshot = re.search(r"snapshot (\d{8}T\d{6}Z)", promoted).group(1)  # type: ignore[union-attr]
    note = json.loads((ws.root / f"var/repo/dists/bookworm-2025.1/snapshots/{snapshot}/promotion.json").read_text())
    assert note["forced"] is None and set(note["verified"]) >= {f"venv-{p}" for p in PROJECTS}


def test_a_broken_option_fails_naming_the_unit_and_its_journal_and_promote_then_refuses(published: Workspace) -> None:
    ws = published
    r = ws.run("verify", "--release", "2025.1", "glance", "--set", "glance-api.conf:paste_deploy.flavor=nosuchflavor",
               check=False)
    assert r.returncode == 5, r.stdout + r.stderr
    error = r.stderr[r.stderr.index("stackyard: error: "):]  # after the progress lines
    assert error.startswith("stackyard: error: verify 2025.1: start glance-api failed (glance-api.service): "), r.stderr
    first, last = error.index("--- glance-api.service: its first errors ---"), error.index("--- glance-api.service is ")
    assert "Unable to load glance-api-nosuchflavor" in error[first:last]  # the cause, before the journal's tail
    assert "journalctl -u glance-api (last 30 lines) ---" in error[last:]
    record = json.loads((ws.root / "var/verify/2025.1/record.json").read_text())
    assert record["passed"] is False and record["failure"]["unit"] == "glance-api"
    # left for inspection: the root with its configuration and journal, the unit's log
    root = ws.root / "var/verify/2025.1/root"
    assert "flavor = nosuchflavor" in (root / "etc/glance/glance-api.conf").read_text()
    assert "nosuchflavor" in (ws.root / "var/verify/2025.1/logs/glance-api.log").read_text()

    refused = ws.run("promote", "--release", "2025.1", "glance", check=False)
    assert refused.returncode == 2
    assert re.search(r"venv-glance 30\.2\.0-2025\.1\.\d: its latest verify \S+/records/\d{8}T\d{6}Z\.json failed at glance-api",
                     refused.stderr), refused.stderr
    forced = ws.run("promote", "--release", "2025.1", "glance", "--force", "e2e: the failure was injected").stdout
    assert "forced without a passing verify: e2e: the failure was injected" in forced

    cleaned = ws.run("verify", "--clean").stdout
    assert f"unmounted {root}" in cleaned and not root.exists()
