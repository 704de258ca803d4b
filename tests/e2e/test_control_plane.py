"""stackyard verify against the real 2025.1 packages: a control plane from staging answers the scenario and
survives keystone's upgrade to 2025.2, promote takes what passed; a broken option fails naming the unit and its
journal, and promote refuses; a verify killed mid-way leaves nothing behind once cleaned."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackyard.verify.container import mounts_under, nspawn_processes
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
    # the release keystone is upgraded to on the running control plane (requirements/2025.2/locks/keystone.txt)
    ws.run("wheels", "--release", "2025.2", "keystone")
    ws.run("deb", "--release", "2025.2", "keystone")
    ws.run("publish", "--release", "2025.2", "keystone")
    return ws


def staged_sha256(ws: Workspace, release: str = "2025.1") -> dict[str, str]:
    text = (ws.root / f"var/repo/dists/bookworm-{release}-staging/main/binary-amd64/Packages").read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r"(?ms)^Package: (\S+)$.*?^SHA256: (\S+)$", text)}


def _verify_killed_once_booted(ws: Workspace, sig: int) -> Path:
    """``stackyard verify --release 2025.1 keystone`` killed with ``sig`` as soon as its container runs systemd."""
    workdir = ws.root / "var/verify/2025.1"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    proc = subprocess.Popen([sys.executable, "-m", "stackyard", "--config", str(ws.config), "verify", "--release", "2025.1",
                             "keystone", "--again"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 600
    while not nspawn_processes(workdir / "root") or not (workdir / "console.log").exists():
        assert proc.poll() is None and time.monotonic() < deadline, f"verify ended before booting: {proc.communicate()[0]}"
        time.sleep(0.2)
    time.sleep(2)  # systemd is starting units: the worst moment to die
    proc.send_signal(sig)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode != 0, out
    return workdir


def _leftovers(workdir: Path) -> list[object]:
    return [*nspawn_processes(workdir / "root"), *mounts_under(workdir)]


def test_verify_terminated_mid_way_leaves_no_container_mount_or_process(published: Workspace) -> None:
    workdir = _verify_killed_once_booted(published, signal.SIGTERM)
    assert _leftovers(workdir) == [] and not (workdir / "root").exists()


def test_verify_killed_mid_way_is_cleaned_by_make_down(published: Workspace) -> None:
    """SIGKILL leaves the container running (nothing can catch it): ``verify --clean``, which ``make down``
    runs, kills it, unmounts and removes the root; a verify after a kill would do the same first."""
    workdir = _verify_killed_once_booted(published, signal.SIGKILL)
    assert _leftovers(workdir), "SIGKILL left nothing behind: the test did not kill mid-way"
    cleaned = published.run("verify", "--clean").stdout
    # the container may have died with its parent's pipe; its tmpfs root is always left mounted
    assert f"unmounted {workdir / 'root'}" in cleaned, cleaned
    assert _leftovers(workdir) == [] and not (workdir / "root").exists()
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "$(STACKYARD) verify --clean" in makefile.split("\ndown:")[1].split("\n\n")[0]


def test_a_control_plane_from_staging_answers_the_scenario_survives_keystone_s_upgrade_and_promote_takes_it(
        published: Workspace) -> None:
    """The default set, then keystone alone upgraded to 2025.2's package on the running control plane (apt,
    pinned as 'apt-config --project keystone=2025.2' pins it): nova, still 2025.1, keeps working against it."""
    ws = published
    r = ws.run("verify", "--release", "2025.1", "--upgrade", "keystone=2025.2")
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
    assert re.search(r"apt-get upgrade: venv-keystone 27\.0\.2-2025\.1\.\d+ -> 28\.0\.2-2025\.2\.\d+: 1 upgraded; users, ids "
                     r"and 1 configuration files kept", out), out
    for step in ("upgrade: keystone-manage db_sync (as keystone)",
                 "after the upgrade to keystone 2025.2: tenant: token issue",
                 "after the upgrade to keystone 2025.2: tenant: server create --nic none, ACTIVE (fake driver): server "):
        assert step in out, (step, out)
    assert re.search(r"(?m)^keystone-api\s+active\s+200 http://127\.0\.0\.1:5000/v3 after", out.split("upgrade: keystone-manage db_sync")[1]), out
    assert re.search(r"upgraded on the running control plane: venv-keystone to 28\.0\.2-2025\.2\.\d+", out), out

    record = json.loads((ws.root / "var/verify/2025.1/record.json").read_text())
    assert record["passed"] is True and record["distribution"] == "bookworm-2025.1-staging"
    assert {p["name"]: p["sha256"] for p in record["packages"]} == {
        n: s for n, s in staged_sha256(ws).items() if n in {f"venv-{p}" for p in PROJECTS}}
    assert all(s["result"] == "ok" and s["seconds"] >= 0 for s in record["steps"])
    assert set(record["phases"]) == {"boot+install", "start services", "scenario", "upgrade"}
    assert [u["name"] for u in record["upgrades"]] == ["venv-keystone"]
    assert record["upgrades"][0]["sha256"] == staged_sha256(ws, "2025.2")["venv-keystone"]
    assert record["seconds"] - record["phases"]["upgrade"] < 6 * 60 and 0 < record["peak_memory_bytes"] < 6 * 2**30
    # a passing verify leaves nothing: no machine, no mount, no root
    assert not (ws.root / "var/verify/2025.1/root").exists()
    assert str(ws.root / "var/verify") not in open("/proc/self/mounts").read()
    assert "systemd-nspawn" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.replace(
        "[systemd-nspawn] <defunct>", "")
    # the very same packages, settings and upgrade again: nothing runs, the passing record stands
    again = ws.run("verify", "--release", "2025.1", "--upgrade", "keystone=2025.2")
    assert "==> verify 2025.1: unchanged, " in again.stderr and "verify 2025.1: unchanged, passed in" in again.stdout, again
    assert json.loads((ws.root / "var/verify/2025.1/record.json").read_text()) == record

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
