"""An upgrade on a running control plane, the way an operator makes one.

``stackyard verify --release 2025.1 ... --upgrade keystone=2025.2``: once the
scenario passed on the release's packages, the apt configuration becomes what
``stackyard apt-config --release 2025.1 --project keystone=2025.2`` writes (the
other release's distribution, pinned for that one package), and then:

- ``apt-get upgrade`` moves exactly the pinned packages (no file conflict,
  the admin's configuration files kept, ``--force-confold`` as puppet runs it),
  the service user and its ids unchanged;
- the project's database migrations run as its service user, its units are
  restarted (the packages never restart a unit: puppet's db sync comes first);
- the API answers again, and the rest of the cloud, still on the old release,
  keeps working against it: a tenant token, and where nova is verified a
  server created (fake driver) and deleted.

The other release's packages come from the same repository snapshot
(``/srv/repo``); what they need from Debian is downloaded with everything else
before the container boots (it has no network then).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from debian.debian_support import version_compare

from stackyard.config import Config, Release
from stackyard.errors import InputError
from stackyard.repo.apt import final, staging
from stackyard.runner import RUNNER, Runner
from stackyard.verify.plan import VerifyPlan
from stackyard.verify.record import PackageRecord, read_packages_index

if TYPE_CHECKING:
    from stackyard.verify.run import Session

REPO_URL = "file:/srv/repo"
STASH = "/var/lib/stackyard-verify/apt"  # the apt files of each configuration, swapped in by cp
MIGRATION = re.compile(r"\bdb[_ ]sync\b|\bupgrade heads\b")  # of a project's setup commands, those that migrate


@dataclass(frozen=True)
class Upgrade:
    project: str
    release: Release  # where the new package comes from
    distribution: str
    package: PackageRecord  # the version it moves to


def plan_upgrades(config: Config, release: Release, plan: VerifyPlan, wanted: Mapping[str, Release], *,
                  promoted: bool, installed: Mapping[str, PackageRecord]) -> tuple[Upgrade, ...]:
    """Check each ``--upgrade PROJECT=RELEASE`` against what is verified and what the repository has."""
    from stackyard.verify.run import missing_error

    upgrades = []
    for project, target in sorted(wanted.items()):
        flag = f"--upgrade {project}={target.id}"
        if project not in plan.projects:
            raise InputError(f"{flag}: {project} is not part of this verify",
                             hint=f"add {project} to the projects ({', '.join(plan.projects)})")
        if target.id == release.id:
            raise InputError(f"{flag}: the control plane already runs {release.id}",
                             hint="name another release to upgrade to")
        distribution = final(target) if promoted else staging(target)
        index = read_packages_index(config.repo.path / "dists" / distribution, config.repo.component,
                                    config.architecture)
        name = f"venv-{project}"
        if name not in index:
            raise missing_error(config, target, distribution, promoted, [name])
        old, new = installed[name].version, index[name].version
        if version_compare(new, old) <= 0:
            raise InputError(f"{flag}: {name} {new} in {distribution} is not newer than {old}",
                             hint="apt upgrades only to a newer version; build and publish the newer release first")
        upgrades.append(Upgrade(project, target, distribution, index[name]))
    return tuple(upgrades)


def apt_config(config: Config, release: Release, promoted: bool, keyring: bytes,
               projects: Mapping[str, Release] | None = None, *, runner: Runner = RUNNER) -> dict[str, bytes]:
    """What ``stackyard apt-config`` writes for the container (paths relative to /)."""
    from stackyard.repo.operator_data import apt_files, apt_plan

    plan = apt_plan(config, release, staging=not promoted, projects=projects, url=REPO_URL, runner=runner)
    return apt_files(plan, keyring)


def swap_script(name: str) -> str:
    """Shell: make the stashed configuration ``name`` apt's (every stackyard source and pin replaced)."""
    return ("rm -f /etc/apt/sources.list.d/stackyard-*.sources /etc/apt/preferences.d/stackyard.pref && "
            f"cp -a {STASH}/{name}/. /")


def download_script(packages: list[str]) -> str:
    """Shell, before boot (host network): what the upgraded packages need from Debian, into apt's cache."""
    return (f"{swap_script('upgrade')} && apt-get update -q && apt-get install -y -q --no-install-recommends "
            f"--download-only {' '.join(packages)} && {swap_script('install')} && apt-get update -q")


def _state(s: "Session", user: str, files: list[str]) -> dict[str, str]:
    """The service user's ids and the checksum of each configuration file."""
    ids = s.c.run(f"id -u {user}; id -g {user}", timeout=60).stdout.split()
    sums = s.c.run("md5sum " + " ".join(shlex.quote(f) for f in files), timeout=60).stdout if files else ""
    return {"uid": ids[0], "gid": ids[1], **{line.split()[1]: line.split()[0] for line in sums.splitlines()}}


def run(s: "Session", upgrades: tuple[Upgrade, ...], installed: Mapping[str, PackageRecord]) -> None:
    """The upgrade, the migrations, the restarts, and the cloud answering again."""
    from stackyard.verify import scenario

    c, plan = s.c, s.plan
    moved = {f"venv-{u.project}": u for u in upgrades}
    projects = [u.project for u in upgrades]
    shown = ", ".join(f"{n} {installed[n].version} -> {u.package.version}" for n, u in moved.items())
    configs = {u.project: [f.path for f in plan.files if f.group == u.project] for u in upgrades}  # root:<project>
    with s.step(f"upgrade: apt-config --project {' --project '.join(f'{u.project}={u.release.id}' for u in upgrades)}, "
                f"apt-get upgrade: {shown}", kind="upgrade", service=",".join(projects)) as st:
        before = {p: _state(s, p, configs[p]) for p in projects}
        c.run(swap_script("upgrade"), timeout=60, what="the upgrade's apt configuration")
        c.run("apt-get update -q -o Dir::Etc::SourceList=/dev/null -o APT::Get::List-Cleanup=false", timeout=300,
              what="apt-get update (the repository only: the container has no network)")
        out = c.run("apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold upgrade",
                    timeout=1800, what="apt-get upgrade").stdout
        names = " ".join(p.name for p in installed.values())
        now = dict(line.split(" ", 1) for line in c.run(f"dpkg-query -W -f '${{Package}} ${{Version}}\\n' {names}",
                                                         timeout=60).stdout.splitlines() if " " in line)
        wrong = [f"{n} {now.get(n)} (wanted {moved[n].package.version if n in moved else p.version})"
                 for n, p in installed.items() if now.get(n) != (moved[n].package.version if n in moved else p.version)]
        if wrong:
            raise scenario._failed("apt-get upgrade left: " + ", ".join(wrong) + "\n" + scenario.tail_of(out))
        changed = []
        for p in projects:
            after = _state(s, p, configs[p])
            changed += [f"{p}: {k} {before[p][k]} -> {after.get(k)}" for k in before[p] if after.get(k) != before[p][k]]
        if changed:
            raise scenario._failed("the upgrade changed what the admin owns: " + "; ".join(changed))
        upgraded = re.search(r"(\d+) upgraded", out)
        st.detail = (f"{upgraded.group(1) if upgraded else '?'} upgraded; users, ids and "
                     f"{sum(len(v) for v in configs.values())} configuration files kept")
    for p in projects:
        for project, command in plan.setup:
            if project == p and MIGRATION.search(command.text):
                with s.step(f"upgrade: {command.text} (as {command.user or 'root'})", kind="upgrade", service=p):
                    r = c.run(command.text, user=command.user, check=False, timeout=900)
                    if r.returncode != 0:
                        raise scenario._failed(f"{command.text} exited {r.returncode}:\n{scenario.tail_of(r.stdout + r.stderr)}")
        units = [u for u in plan.units if u.project == p]
        c.run("systemctl restart " + " ".join(u.name for u in units), timeout=300,
              what="systemctl restart " + " ".join(u.name for u in units))
        scenario.wait_units(s, units, verb="restart")
    scenario.after_upgrade(s, "/".join(f"{u.project} {u.release.id}" for u in upgrades))
