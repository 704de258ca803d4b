"""The stackyard command, driven through main(argv) on small workspaces in tmp_path, its tools answered by a FakeRunner:
what each command prints or writes, how its arguments are handled, and which exit code an error becomes."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
import textwrap
from pathlib import Path
from typing import Callable

import pytest
import yaml

from stackyard import cli
from stackyard.config import Config, load_config
from stackyard.debs.venv_deb import debs_dir
from stackyard.debs.wheels_deb import WheelsDeb
from stackyard.images import services as local_services
from stackyard.recipes import load_recipe
from stackyard.runner import Call
from stackyard.stage import write_record
from stackyard.target import target_for
from stackyard.wheels.constraints import load_constraints
from stackyard.wheels.lock import lock_inputs, lock_path
from tests.deb_workspace import deb_runner, sha, smoke_runner, workspace
from tests.fake_repo import published, with_key
from tests.fakes import FakeRunner

Run = Callable[..., "tuple[int, str, str]"]

RELEASES = """
[releases."2025.2"]
series = "flamingo"
codename = "bookworm"
upstream = "https://example.invalid/2025.2"
"""


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config(extra=RELEASES)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.delenv("STACKYARD_DEBUG", raising=False)

    def run(config: Config, *argv: str, runner: FakeRunner | None = None) -> tuple[int, str, str]:
        code = cli.main(["--config", str(config.file), *argv], runner=runner or FakeRunner())
        out, err = capsys.readouterr()
        return code, out, err

    return run


def table_rows(out: str, header: str) -> list[list[str]]:
    """The rows of the table whose header line starts with ``header`` (columns split on 2+ spaces)."""
    import re

    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.strip() or not re.search(r"\S  +\S", line):
            break
        rows.append(re.split(r"  +", line.strip()))
    return rows


# -- check ----------------------------------------------------------------------------

def test_check_counts_releases_and_recipes(config: Config, run: Run, release) -> None:  # type: ignore[no-untyped-def]
    workspace(config, release)
    code, out, err = run(config, "check")
    assert (code, err) == (0, "")
    assert out == f"{config.file}: 2 releases; 1 recipes OK\n"


def test_check_fails_on_a_recipe_pinned_for_an_unknown_release(config: Config, run: Run, make_recipe) -> None:  # type: ignore[no-untyped-def]
    make_recipe("tiny", 'name: tiny\nsource: {pypi: tiny}\nversions: {"2024.2": "1.0"}\n', config.paths.recipes)
    code, out, err = run(config, "check")
    assert code == 2 and out == ""
    assert err.startswith("stackyard: error: unknown release '2024.2'\n  fix: use one of 2025.1 (epoxy), 2025.2 (flamingo)")


def test_check_names_the_recipe_file_and_key_of_a_bad_recipe(config: Config, run: Run, make_recipe) -> None:  # type: ignore[no-untyped-def]
    file = make_recipe("tiny", "name: tiny\nsource: {pypi: tiny}\nversions: {2025.1: 1.0}\n", config.paths.recipes)
    code, _, err = run(config, "check")
    assert code == 2 and err.startswith(f"stackyard: error: {file}") and "quote" in err


# -- lock --------------------------------------------------------------------------------

@pytest.fixture
def locked(tmp_path: Path) -> Config:
    """A workspace whose lock of ``tiny`` is up to date (its recorded inputs digest matches): lock runs no resolver."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    (tmp_path / "stackyard.toml").write_text(textwrap.dedent(f"""\
        architecture = "amd64"
        [codenames.bookworm]
        python = "{python}"
        glibc = "2.36"
        [releases."2025.1"]
        series = "epoxy"
        codename = "bookworm"
        upstream = "https://example.invalid/2025.1"
        """))
    config = load_config(tmp_path / "stackyard.toml")
    release = config.release("2025.1")
    uc = config.requirements_dir(release) / "upper-constraints.txt"
    uc.parent.mkdir(parents=True)
    uc.write_text("tiny===1.2.0\nsix===1.17.0\n")
    recipe = load_recipe(workspace(config, release))
    inputs = lock_inputs(recipe, release, load_constraints(uc, target_for(config, release)))
    lock = lock_path(config, release, "tiny")
    lock.write_text(f"# stackyard lock: tiny 1.2.0\n# inputs sha256: {inputs.digest}\n#\n"
                    f"six==1.17.0 \\\n    --hash=sha256:{sha(b'six')}\ntiny==1.2.0 \\\n    --hash=sha256:{sha(b'tiny')}\n")
    return config


def test_lock_json_reports_each_project_without_resolving_unchanged_inputs(locked: Config, run: Run) -> None:
    before = lock_path(locked, locked.release("2025.1"), "tiny").read_text()
    code, out, err = run(locked, "lock", "--release", "epoxy", "tiny", "--json")
    assert code == 0
    from stackyard.wheels.lock import pins_digest

    assert json.loads(out) == [{"project": "tiny", "packages": 2, "changed": False, "pins_changed": False,
                                "pins_sha256": pins_digest(before), "file": "requirements/2025.1/locks/tiny.txt"}]
    assert "  [1/1] cached   tiny 1.2.0: up to date (inputs unchanged), 2 packages  (" in err
    assert lock_path(locked, locked.release("2025.1"), "tiny").read_text() == before


def test_lock_prints_a_table_by_default(locked: Config, run: Run) -> None:
    code, out, _ = run(locked, "lock", "--release", "2025.1")
    assert code == 0
    (row,) = table_rows(out, "project")
    assert row[0] == "tiny" and row[1] == "2" and row[2] == "unchanged" and row[4] == "requirements/2025.1/locks/tiny.txt"


def test_lock_of_an_unknown_project_is_an_input_error(locked: Config, run: Run) -> None:
    code, out, err = run(locked, "lock", "--release", "2025.1", "nope")
    assert code == 2 and out == "" and "nope" in err


# -- pin ---------------------------------------------------------------------------------

def test_pin_moves_a_version_forward_only(config: Config, run: Run, release) -> None:  # type: ignore[no-untyped-def]
    file = workspace(config, release)
    code, out, _ = run(config, "pin", "--release", "2025.1", "tiny", "1.3.0")
    assert code == 0 and out == f"{file}: versions.2025.1: 1.2.0 -> 1.3.0\n"
    assert load_recipe(file).version("2025.1") == "1.3.0"
    code, out, _ = run(config, "pin", "--release", "2025.1", "tiny", "1.2.5")
    assert code == 0 and out == f"{file}: versions.2025.1: 1.3.0 kept (1.2.5 is not newer)\n"
    assert load_recipe(file).version("2025.1") == "1.3.0"


# -- requirements update --------------------------------------------------------------

def test_requirements_update_from_a_checkout_replaces_the_inputs_and_names_the_commit(config: Config, run: Run,
                                                                                     tmp_path: Path) -> None:
    checkout = tmp_path / "requirements-checkout"
    checkout.mkdir()
    (checkout / "upper-constraints.txt").write_text("six===1.17.0\n")
    (checkout / "global-requirements.txt").write_text("six>=1.10.0\n")
    (checkout / "bindep.txt").write_text("libffi-dev [platform:dpkg]\n")
    (checkout / ".git").mkdir()
    fake = FakeRunner().reply("git", stdout="0123abcd 2025-06-01\n")
    code, out, _ = run(config, "requirements", "update", "--release", "2025.1", "--from", str(checkout), runner=fake)
    directory = config.requirements_dir(config.release("2025.1"))
    assert code == 0 and out == (f"{directory}: updated from {checkout} (commit 0123abcd); "
                                 "changed: upper-constraints.txt global-requirements.txt bindep.txt\n")
    assert (directory / "upper-constraints.txt").read_text() == "six===1.17.0\n"
    assert "commit: 0123abcd\ndate: 2025-06-01\n" in (directory / "SOURCE").read_text()
    assert fake.calls[0].argv == ("git", "-C", str(checkout), "log", "-1", "--format=%H %cs")


def git_requirements(config: Config, tmp_path: Path) -> tuple[Config, FakeRunner, Path]:
    """A config whose 2025.1 names requirements_git, and a fake git answering for its branch at commit c0ffee."""
    text = config.file.read_text().replace('upstream = "https://example.invalid/2025.1"',
                                           'upstream = "https://example.invalid/2025.1"\n'
                                           'requirements_git = "file:///srv/requirements.git"')
    assert text != config.file.read_text()
    config.file.write_text(text)
    config = load_config(config.file)
    from stackyard.wheels.upstream_requirements import git_cache

    bare = git_cache(config, "file:///srv/requirements.git")
    fake = FakeRunner()
    fake.reply("git", "init", effect=lambda call: (bare / "objects").mkdir(parents=True))
    files = {"upper-constraints.txt": "six===1.17.0\n", "global-requirements.txt": "six\n", "bindep.txt": "gcc\n"}
    for name, content in files.items():
        for at in (f"{'c0ffee' * 6}cafe", "refs/stackyard/stable/2025.1"):
            fake.reply("git", "-C", str(bare), "show", f"{at}:{name}", stdout=content)
    fake.reply("git", "-C", str(bare), "rev-parse", stdout=f"{'c0ffee' * 6}cafe\n")
    fake.reply("git", "-C", str(bare), "log", stdout=f"{'c0ffee' * 6}cafe 2026-11-20\n")
    return config, fake, bare


def test_requirements_update_from_requirements_git_reads_its_branch_at_a_revision(config: Config, run: Run,
                                                                                  tmp_path: Path) -> None:
    config, fake, bare = git_requirements(config, tmp_path)
    commit = "c0ffee" * 6 + "cafe"
    code, out, err = run(config, "requirements", "update", "--release", "2025.1", "--revision", commit, runner=fake)
    assert code == 0, err
    directory = config.requirements_dir(config.release("2025.1"))
    assert out.startswith(f"{directory}: updated from file:///srv/requirements.git stable/2025.1 (commit {commit}); changed: ")
    assert (directory / "upper-constraints.txt").read_text() == "six===1.17.0\n"
    assert f"commit: {commit}\ndate: 2026-11-20\n" in (directory / "SOURCE").read_text()
    git = ("git", "-C", str(bare))
    assert fake.argvs()[:4] == [
        ("git", "init", "-q", "--bare", str(bare)),
        (*git, "fetch", "-q", "--no-tags", "file:///srv/requirements.git", "+refs/heads/stable/2025.1:refs/stackyard/stable/2025.1"),
        (*git, "rev-parse", "-q", "--verify", f"{commit}^{{commit}}"),
        (*git, "merge-base", "--is-ancestor", commit, "refs/stackyard/stable/2025.1")]
    # again, nothing moved: the bare repository is kept, the files are the same
    fake.calls.clear()
    code, out, _ = run(config, "requirements", "update", "--release", "2025.1", runner=fake)
    assert code == 0 and out.endswith("; no file changed\n") and fake.argvs()[0][3] == "fetch"
    assert (*git, "show", "refs/stackyard/stable/2025.1:bindep.txt") in fake.argvs()  # no --revision: the branch's head


def test_a_revision_off_the_branch_or_an_unreachable_repository_is_one_clear_error(config: Config, run: Run,
                                                                                   tmp_path: Path) -> None:
    config, fake, bare = git_requirements(config, tmp_path)
    fake.reply("git", "-C", str(bare), "merge-base", returncode=1)
    code, out, err = run(config, "requirements", "update", "--release", "2025.1", "--revision", "abc123", runner=fake)
    assert code == 2 and out == "" and "file:///srv/requirements.git: abc123 is not a commit of stable/2025.1" in err
    fake.reply("git", "-C", str(bare), "fetch", returncode=128, stderr="fatal: repository not found\n")
    code, out, err = run(config, "requirements", "update", "--release", "2025.1", runner=fake)
    assert code != 0 and "fetching stable/2025.1 of file:///srv/requirements.git" in err and "Traceback" not in err
    code, _, err = run(config, "requirements", "update", "--release", "2025.2", "--revision", "abc123", runner=fake)
    assert code == 2 and "--revision abc123: only a git source has revisions" in err


# -- bindep ----------------------------------------------------------------------------

def bindep_file(config: Config, release_id: str, text: str) -> None:
    file = config.paths.requirements / release_id / "bindep.txt"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text)


def test_bindep_lists_each_releases_debian_packages(config: Config, run: Run) -> None:
    bindep_file(config, "2025.1", "libffi-dev [platform:dpkg]\nlibffi-devel [platform:rpm]\ngcc\n")
    bindep_file(config, "2025.2", "libssl-dev [platform:dpkg]\n")
    code, out, _ = run(config, "bindep", "--release", "2025.1")
    assert code == 0 and out == "libffi-dev gcc\n"
    code, out, _ = run(config, "bindep", "--release", "all")
    assert out == "libffi-dev gcc\nlibssl-dev\n"


def test_bindep_install_says_what_was_present_and_what_it_installed(config: Config, run: Run,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    bindep_file(config, "2025.1", "libffi-dev [platform:dpkg]\ngcc\n")
    fake = FakeRunner().reply("dpkg-query", stdout="libffi-dev install ok installed\ngcc install ok installed\n")
    code, out, _ = run(config, "bindep", "--release", "2025.1", "--install", runner=fake)
    assert code == 0 and out == "2025.1: 2 build dependencies present\n"
    assert [c.argv[0] for c in fake.calls] == ["dpkg-query"]
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    fake = FakeRunner().reply("dpkg-query", returncode=1, stdout="gcc install ok installed\n")
    code, out, _ = run(config, "bindep", "--release", "2025.1", "--install", runner=fake)
    assert code == 0 and out == "2025.1: 2 build dependencies present, installed libffi-dev\n"
    assert fake.calls[-1].argv == ("apt-get", "install", "-y", "-q", "--no-install-recommends", "libffi-dev")


# -- wheels / wheels-deb --------------------------------------------------------------

def test_wheels_takes_projects_or_all_not_both(config: Config, run: Run) -> None:
    code, out, err = run(config, "wheels", "--release", "2025.1", "tiny", "--all")
    assert (code, out, err) == (2, "", "stackyard: error: give PROJECT... or --all, not both\n")


def test_wheels_deb_prints_what_it_packaged(config: Config, run: Run, release) -> None:  # type: ignore[no-untyped-def]
    workspace(config, release)
    fake = deb_runner()
    fake.reply("dpkg-buildpackage", effect=lambda call: (Path(call.cwd or ".").parent /  # type: ignore[func-returns-value]
                                                         "openstack-wheels-2025.1_20250601.1_all.deb").write_bytes(b"d"))
    code, out, _ = run(config, "wheels-deb", "--release", "2025.1", runner=fake)
    assert code == 0
    file = str(debs_dir(config, release) / "openstack-wheels-2025.1_20250601.1_all.deb")
    assert table_rows(out, "package") == [["openstack-wheels-2025.1", "20250601.1", "all", "2", "built, lintian: 1 warnings", file]]
    calls = len(fake.calls)
    code, out, _ = run(config, "wheels-deb", "--release", "2025.1", runner=fake)
    assert table_rows(out, "package") == [["openstack-wheels-2025.1", "20250601.1", "all", "2", "unchanged", file]]
    assert len(fake.calls) == calls  # nothing built or linted again


def test_wheels_deb_without_a_wheelhouse_exits_2(config: Config, run: Run) -> None:
    code, out, err = run(config, "wheels-deb", "--release", "2025.1")
    assert code == 2 and out == "" and "no wheelhouse" in err


# -- deb ---------------------------------------------------------------------------------

def deb_and_smoke(config: Config) -> FakeRunner:
    fake = smoke_runner(config, deb_runner(lintian="W: venv-tiny: tag-a x\nW: venv-tiny: tag-a y\nW: venv-tiny: tag-b\n"))
    fake.reply("chroot", stdout="tiny-manage 1.2.0\n")  # every check in the test root passes
    return fake


def test_deb_builds_lints_and_smoke_tests_then_reports_a_table(config: Config, run: Run, release) -> None:  # type: ignore[no-untyped-def]
    workspace(config, release)
    code, out, err = run(config, "deb", "--release", "2025.1", "tiny", runner=deb_and_smoke(config))
    assert code == 0
    file = debs_dir(config, release) / "venv-tiny_1.2.0-2025.1.1_amd64.deb"
    ((package, version, changelog, warnings, smoke, _, path),) = table_rows(out, "package")
    assert (package, version, changelog, warnings, path) == ("venv-tiny", "1.2.0-2025.1.1", "new", "3", str(file))
    assert smoke == "passed (7 checks)"
    assert "==> deb venv-tiny: build, 1.2.0-2025.1.1: New upstream release 1.2.0 for OpenStack 2025.1." in err
    assert "    deb: built venv-tiny_1.2.0-2025.1.1_amd64.deb in " in err and "    lintian: 3 warnings in " in err
    assert "    lintian: W: tag-a (2x)\n    lintian: W: tag-b (1x)\n" in err  # warnings counted by tag
    assert "    smoke: venv-tiny_1.2.0-2025.1.1_amd64.deb: in a clean bookworm root" in err
    assert "    smoke: ok: purge leaves nothing behind" in err


def test_an_unchanged_deb_that_passed_before_is_neither_built_nor_tested_again(config: Config, run: Run,
                                                                               release) -> None:  # type: ignore[no-untyped-def]
    workspace(config, release)
    assert run(config, "deb", "--release", "2025.1", "tiny", runner=deb_and_smoke(config))[0] == 0
    fake = deb_and_smoke(config)
    code, out, err = run(config, "deb", "--release", "2025.1", "tiny", runner=fake)
    assert code == 0 and fake.calls == []
    row = table_rows(out, "package")[0]
    assert row[2:5] == ["unchanged", "3", "passed before"]
    assert "==> deb venv-tiny: unchanged, venv-tiny_1.2.0-2025.1.1_amd64.deb stands (inputs unchanged)\n" in err


def test_no_smoke_builds_only_and_rebuild_builds_the_same_version_again(config: Config, run: Run,
                                                                        release) -> None:  # type: ignore[no-untyped-def]
    workspace(config, release)
    code, out, err = run(config, "deb", "--release", "2025.1", "tiny", "--no-smoke", runner=deb_runner(lintian=""))
    assert code == 0 and table_rows(out, "package")[0][2:5] == ["new", "0", "skipped"]
    assert "    lintian: clean in " in err and "smoke:" not in err
    code, out, _ = run(config, "deb", "--release", "2025.1", "tiny", "--no-smoke", runner=deb_runner(lintian=""))
    assert table_rows(out, "package")[0][2:5] == ["unchanged", "0", "skipped"]  # never tested: nothing passed before
    fake = deb_runner(lintian="")
    code, out, _ = run(config, "deb", "--release", "2025.1", "tiny", "--no-smoke", "--rebuild", runner=fake)
    assert table_rows(out, "package")[0][1:3] == ["1.2.0-2025.1.1", "same"] and fake.calls


def test_a_failing_smoke_test_exits_5_and_a_failing_tool_exits_6(config: Config, run: Run, release) -> None:  # type: ignore[no-untyped-def]
    workspace(config, release)
    fake = deb_and_smoke(config)
    fake.reply("chroot", stdout="tiny-manage 0.9\n")
    code, out, err = run(config, "deb", "--release", "2025.1", "tiny", runner=fake)
    assert code == 5 and out == ""
    assert "stackyard: error: smoke: 'tiny-manage --version' printed 'tiny-manage 0.9', not the upstream version 1.2.0" in err
    fake = deb_runner()
    fake.reply("dpkg-buildpackage", returncode=2, stdout="dh_virtualenv: error\n")
    code, _, err = run(config, "deb", "--release", "2025.1", "tiny", "--rebuild", runner=fake)
    assert code == 6 and "building venv-tiny 1.2.0-2025.1.1: dpkg-buildpackage exited 2" in err


def check(config: Config, run: Run, runner: FakeRunner | None = None) -> dict:  # type: ignore[type-arg]
    code, out, err = run(config, "deb", "--release", "2025.1", "tiny", "--check", "--json", runner=runner or FakeRunner())
    assert code == 0, err
    (status,) = json.loads(out)
    return status  # type: ignore[no-any-return]


def test_the_deb_stages_one_by_one_and_the_check_says_what_is_left(config: Config, run: Run,
                                                                   release) -> None:  # type: ignore[no-untyped-def]
    """What the Buildbot project builder runs: deb --check, deb --no-lint --no-smoke, lintian, smoke."""
    workspace(config, release)
    first = check(config, run, with_key(config))  # no changelog kept: the repository is asked for a published version
    assert first["todo"] == ["build", "lintian", "smoke"] and first["version"] == "1.2.0-2025.1.1" and first["file"] is None
    assert first["reason"] == "New upstream release 1.2.0 for OpenStack 2025.1."
    logs = config.paths.output / "logs" / "2025.1"
    assert first["logs"] == {"build": str(logs / "deb" / "venv-tiny_1.2.0-2025.1.1.log"),
                             "lintian": str(logs / "lintian" / "venv-tiny_1.2.0-2025.1.1.log"),
                             "smoke": str(logs / "smoke" / "venv-tiny_1.2.0-2025.1.1_amd64.log")}

    fake = deb_and_smoke(config)
    code, out, err = run(config, "deb", "--release", "2025.1", "tiny", "--no-lint", "--no-smoke", runner=fake)
    assert code == 0 and [c.argv[0] for c in fake.calls] == ["dpkg-buildpackage", "dpkg-deb"]  # no lintian
    assert "not linted (stackyard lintian)" in err and table_rows(out, "package")[0][4] == "skipped"
    built = check(config, run)
    assert built["todo"] == ["lintian", "smoke"] and built["reason"] == "venv-tiny_1.2.0-2025.1.1_amd64.deb is built but not linted"
    code, _, err = run(config, "smoke", "--release", "2025.1", "tiny", runner=FakeRunner())
    assert code == 2 and "venv-tiny_1.2.0-2025.1.1_amd64.deb was not linted" in err and "stackyard lintian --release 2025.1 tiny" in err
    code, out, _ = run(config, "publish", "--release", "2025.1", "tiny", runner=FakeRunner())
    assert code == 2  # not smoke-tested: not published

    code, out, err = run(config, "lintian", "--release", "2025.1", "tiny", runner=deb_and_smoke(config))
    assert code == 0
    assert out.splitlines()[:3] == ["W: venv-tiny: tag-a x", "W: venv-tiny: tag-a y", "W: venv-tiny: tag-b"]  # W: lines on stdout
    assert "    lintian: venv-tiny_1.2.0-2025.1.1_amd64.deb: 3 warnings in " in err
    assert (logs / "lintian" / "venv-tiny_1.2.0-2025.1.1.log").exists()
    linted = check(config, run)
    assert linted["todo"] == ["smoke"] and linted["lintian_warnings"] == 3

    fake = deb_and_smoke(config)
    code, out, err = run(config, "smoke", "--release", "2025.1", "tiny", runner=fake)
    assert code == 0 and "    ok: purge leaves nothing behind" in out, err
    done = check(config, run)
    assert done["todo"] == [] and done["reason"].startswith("inputs unchanged: venv-tiny_1.2.0-2025.1.1_amd64.deb stands")
    code, out, _ = run(config, "deb", "--release", "2025.1", "tiny", "--check", runner=FakeRunner())
    assert table_rows(out, "package")[0][:3] == ["venv-tiny", "1.2.0-2025.1.1", "nothing"]
    # a changed lock: everything again, with the reason the changelog will give
    lock = config.paths.requirements / "2025.1" / "locks" / "tiny.txt"
    lock.write_text(lock.read_text() + "# touched\n")
    again = check(config, run)
    assert again["todo"] == ["build", "lintian", "smoke"] and again["version"] == "1.2.0-2025.1.2"
    assert again["reason"] == "Rebuild of 1.2.0 with a changed lock."


def test_lintian_errors_exit_6_naming_each_and_leave_the_file_unlinted(config: Config, run: Run,
                                                                         release) -> None:  # type: ignore[no-untyped-def]
    workspace(config, release)
    assert run(config, "deb", "--release", "2025.1", "tiny", "--no-lint", "--no-smoke", runner=deb_runner())[0] == 0
    code, out, err = run(config, "lintian", "--release", "2025.1", "tiny",
                         runner=deb_runner(lintian="E: venv-tiny: bad-perm etc/x\nW: venv-tiny: meh\n"))
    assert code == 6 and out == ""
    assert "lintian found errors in venv-tiny_1.2.0-2025.1.1_amd64.deb:\nE: venv-tiny: bad-perm etc/x" in err
    assert check(config, run)["todo"] == ["lintian", "smoke"]
    code, _, err = run(config, "lintian", "--release", "2025.1", "tiny", runner=FakeRunner())
    assert code == 0  # FakeRunner's lintian: no output, clean
    # 'stackyard deb' (lint included) on an unlinted file with unchanged inputs lints it, and builds nothing
    code, _, err = run(config, "deb", "--release", "2025.1", "tiny", "--no-smoke", runner=FakeRunner())
    assert code == 0 and "unchanged" in err


# -- publish -------------------------------------------------------------------------------

def test_publish_without_anything_built_exits_2(config: Config, run: Run, release) -> None:  # type: ignore[no-untyped-def]
    workspace(config, release)
    code, out, err = run(config, "publish", "--release", "2025.1")
    assert code == 2 and out == ""
    assert err == ("stackyard: error: nothing to publish for 2025.1\n"
                   "  fix: stackyard deb --release 2025.1 PROJECT\n")
    code, _, err = run(config, "publish", "--release", "2025.1", "tiny")
    assert code == 2 and "venv-tiny was never built for 2025.1\n  fix: stackyard deb --release 2025.1 tiny" in err


def test_publish_refuses_a_package_that_was_not_smoke_tested(config: Config, run: Run, release) -> None:  # type: ignore[no-untyped-def]
    workspace(config, release)
    run(config, "deb", "--release", "2025.1", "tiny", "--no-smoke", runner=deb_runner())
    fake = with_key(config)
    code, _, err = run(config, "publish", "--release", "2025.1", runner=fake)
    assert code == 2 and "venv-tiny 1.2.0-2025.1.1 has not passed its smoke test; it is not published" in err
    assert fake.calls == []


def test_publish_takes_the_tested_debs_and_the_newest_wheels_deb_once(config: Config, run: Run, release) -> None:  # type: ignore[no-untyped-def]
    workspace(config, release)
    assert run(config, "deb", "--release", "2025.1", "tiny", runner=deb_and_smoke(config))[0] == 0
    out_dir = debs_dir(config, release)
    for version in ("20250601.2", "20250601.10", "20250530.11"):
        (out_dir / f"openstack-wheels-2025.1_{version}_all.deb").write_bytes(b"wheels")
    write_record(out_dir / "openstack-wheels-2025.1.json", WheelsDeb(  # the last wheels deb built, as its stage records it
        "openstack-wheels-2025.1", "20250601.10", "all", 1, "openstack-wheels-2025.1_20250601.10_all.deb", "s" * 64,
        "i" * 64, "20250601", 10))
    fake = published(config, {"bookworm-2025.1-staging": [("venv-tiny", "1.2.0-2025.1.1"),
                                                           ("openstack-wheels-2025.1", "20250601.2")]})
    code, out, _ = run(config, "publish", "--release", "2025.1", runner=fake)
    assert code == 0
    included = [c.argv[-1] for c in fake.calls if "includedeb" in c.argv]
    assert included == [str(out_dir / "venv-tiny_1.2.0-2025.1.1_amd64.deb"),
                        str(out_dir / "openstack-wheels-2025.1_20250601.10_all.deb")]  # the recorded one, not a stale file
    assert all(c.argv[c.argv.index("includedeb") + 1] == "bookworm-2025.1-staging" for c in fake.calls if "includedeb" in c.argv)
    assert table_rows(out, "distribution") == [["bookworm-2025.1-staging", "venv-tiny", "1.2.0-2025.1.1", "amd64"],
                                               ["bookworm-2025.1-staging", "openstack-wheels-2025.1", "20250601.2", "amd64"]]
    assert out.endswith(f"published 2 packages to bookworm-2025.1-staging in {config.repo.path}\n")
    # that version of the wheels deb in staging: a project's next publish does not add it again
    fake = published(config, {"bookworm-2025.1-staging": [("openstack-wheels-2025.1", "20250601.10")]})
    code, out, _ = run(config, "publish", "--release", "2025.1", "tiny", runner=fake)
    assert code == 0 and [c.argv[-1] for c in fake.calls if "includedeb" in c.argv] == [
        str(out_dir / "venv-tiny_1.2.0-2025.1.1_amd64.deb")]
    assert out.endswith("published 1 packages to bookworm-2025.1-staging in " + str(config.repo.path) + "\n")


def test_a_failing_reprepro_exits_6_naming_the_repository_log(config: Config, run: Run, release) -> None:  # type: ignore[no-untyped-def]
    workspace(config, release)
    run(config, "deb", "--release", "2025.1", "tiny", runner=deb_and_smoke(config))
    fake = with_key(config).reply("reprepro", returncode=254, stderr="Error opening database\n")
    code, out, err = run(config, "publish", "--release", "2025.1", "tiny", runner=fake)
    assert code == 6 and out == ""
    assert err.startswith(f"stackyard: error: reprepro export failed: reprepro exited 254 (log: {config.paths.output}/logs/repo.log)")


# -- apt-config / puppet-data ---------------------------------------------------------------

@pytest.fixture
def repo(config: Config) -> FakeRunner:
    """A published repository: keystone and nova in 2025.1, keystone in 2025.2, and its exported keys."""
    config.repo.path.mkdir(parents=True, exist_ok=True)
    (config.repo.path / "stackyard-archive-keyring.gpg").write_bytes(b"\x99binary")
    (config.repo.path / "stackyard-archive-keyring.asc").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\nabc\n")
    return published(config, {
        "bookworm-2025.1": [("venv-keystone", "27.0.2-2025.1.1"), ("venv-nova", "31.3.1-2025.1.1"),
                            ("openstack-wheels-2025.1", "20250601.1")],
        "bookworm-2025.2": [("venv-keystone", "28.0.2-2025.2.1")],
    })


def test_apt_config_prints_each_file_with_its_path(config: Config, run: Run, repo: FakeRunner) -> None:
    code, out, err = run(config, "apt-config", "--release", "2025.1", "--project", "keystone=2025.2", runner=repo)
    assert code == 0 and err == ""
    assert out.startswith("# /etc/apt/sources.list.d/stackyard-2025.1.sources\nTypes: deb\n"
                          f"URIs: {config.repo.url}\nSuites: bookworm-2025.1\n")
    assert "# /etc/apt/sources.list.d/stackyard-2025.2.sources\n" in out
    assert "# /etc/apt/preferences.d/stackyard.pref\nExplanation: stackyard: venv-keystone from OpenStack 2025.2\n" in out
    assert out.endswith("# /usr/share/keyrings/stackyard-archive-keyring.gpg: the repository's key, "
                        f"{config.repo.url}/stackyard-archive-keyring.gpg (or: stackyard apt-config --release 2025.1 --output /)\n\n")
    assert "\x99" not in out  # the binary key is never printed


def test_apt_config_output_writes_the_files_under_a_root(config: Config, run: Run, repo: FakeRunner, tmp_path: Path) -> None:
    root = tmp_path / "host"
    code, out, _ = run(config, "apt-config", "--release", "2025.1", "--staging", "--url", "http://apt.local/sy",
                       "--output", str(root), runner=repo)
    assert code == 0
    written = out.splitlines()
    assert written == [str(root / "etc/apt/sources.list.d/stackyard-2025.1.sources"),
                       str(root / "etc/apt/preferences.d/stackyard.pref"),
                       str(root / "usr/share/keyrings/stackyard-archive-keyring.gpg")]
    sources = (root / "etc/apt/sources.list.d/stackyard-2025.1.sources").read_text()
    assert "URIs: http://apt.local/sy\nSuites: bookworm-2025.1-staging\n" in sources
    assert (root / "usr/share/keyrings/stackyard-archive-keyring.gpg").read_bytes() == b"\x99binary"
    assert all(stat.S_IMODE(Path(f).stat().st_mode) == 0o644 for f in written)


def test_apt_config_warns_and_writes_no_empty_keyring(config: Config, run: Run, tmp_path: Path) -> None:
    code, out, err = run(config, "apt-config", "--release", "2025.1", "--output", str(tmp_path / "host"),
                         runner=with_key(config))
    assert code == 0
    assert err == ("stackyard: warning: bookworm-2025.1 has no package yet: publish and promote first "
                   "(stackyard publish --release 2025.1; stackyard promote --release 2025.1)\n")
    assert not (tmp_path / "host" / "usr").exists() and len(out.splitlines()) == 2


@pytest.mark.parametrize("value", ["keystone", "keystone=2099.1"])
def test_a_bad_project_release_exits_2(config: Config, run: Run, value: str) -> None:
    code, out, err = run(config, "apt-config", "--release", "2025.1", "--project", value)
    assert code == 2 and out == "" and err.startswith("stackyard: error: ")


def test_puppet_data_writes_the_release_file_and_says_what_it_holds(config: Config, run: Run, repo: FakeRunner) -> None:
    code, out, _ = run(config, "puppet-data", "--release", "2025.1", "--project", "keystone=flamingo", runner=repo)
    file = config.paths.output / "puppet" / "2025.1.yaml"
    assert code == 0 and out == f"{file}: 3 packages of 2025.1, keystone from 2025.2\n"
    data = yaml.safe_load(file.read_text())
    assert data["stackyard::packages"] == {"venv-keystone": "28.0.2-2025.2.1", "venv-nova": "31.3.1-2025.1.1"}
    assert data["stackyard::keyrings"]["/usr/share/keyrings/stackyard-archive-keyring.asc"]["content"].startswith("-----BEGIN")


def test_puppet_data_staging_and_output_choose_the_file(config: Config, run: Run, repo: FakeRunner, tmp_path: Path) -> None:
    published(config, {"bookworm-2025.1-staging": [("venv-nova", "31.3.1-2025.1.2")]}, repo)
    code, out, _ = run(config, "puppet-data", "--release", "2025.1", "--staging", runner=repo)
    assert code == 0 and out == f"{config.paths.output / 'puppet' / '2025.1-staging.yaml'}: 1 packages of 2025.1\n"
    target = tmp_path / "hiera" / "common.yaml"
    code, out, _ = run(config, "puppet-data", "--release", "2025.1", "--output", str(target), runner=repo)
    assert code == 0 and out.startswith(f"{target}: 3 packages") and target.exists()


def test_puppet_data_of_an_unpublished_project_exits_2(config: Config, run: Run, repo: FakeRunner) -> None:
    code, out, err = run(config, "puppet-data", "--release", "2025.1", "--project", "nova=2025.2", runner=repo)
    assert code == 2 and "venv-nova is not published in bookworm-2025.2" in err
    assert not (config.paths.output / "puppet" / "2025.1.yaml").exists()


# -- services, helm-values -------------------------------------------------------------------

def test_services_leave_an_external_engine_and_registry_alone(make_config: Callable[..., Config], run: Run) -> None:
    config = make_config(extra='[images]\nregistry = "registry.example:5000"\nengine = "tcp://docker.example:2375"\n')
    for action in ("up", "down"):
        code, out, _ = run(config, "services", action)
        assert code == 0
        assert [row[:2] for row in table_rows(out, "service")] == [["dockerd" if action == "up" else "registry", "external"],
                                                                   ["registry" if action == "up" else "dockerd", "external"]]


def test_services_down_with_nothing_running_removes_the_trusted_ca(config: Config, run: Run, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    certs = tmp_path / "certs.d"
    monkeypatch.setattr(local_services, "CERTS_D", certs)
    (certs / "127.0.0.1:5443").mkdir(parents=True)
    (certs / "127.0.0.1:5443" / "ca.crt").write_text("ca")
    code, out, _ = run(config, "services", "down")
    assert code == 0 and table_rows(out, "service") == [["registry", "not running"], ["dockerd", "not running"]]
    assert not (certs / "127.0.0.1:5443").exists()


def test_helm_values_writes_a_secret_values_file_per_chart(make_config: Callable[..., Config], run: Run,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(extra='[images]\nregistry = "registry.example:5000"\n')
    monkeypatch.setenv("STACKYARD_REGISTRY_PASSWORD", "s3cret")
    charts = config.paths.images / "charts"
    charts.mkdir(parents=True)
    (charts / "IMAGES.tsv").write_text(
        "chart\timage_key\tdefault_image\n"
        "tiny\ttiny_api\tquay.io/airshipit/tiny:2026.1-ubuntu_noble\n"
        "tiny\tdep_check\tquay.io/airshipit/kubernetes-entrypoint:latest-ubuntu_noble\n")
    recipes = config.paths.recipes
    recipes.mkdir(parents=True)
    (recipes / "tiny.yaml").write_text('name: tiny\nsource: {pypi: tiny}\nversions: {"2025.1": "1.2.0"}\n'
                                       "image: {chart: tiny, chart_keys: [tiny_api]}\n")
    records = config.paths.output / "images" / "2025.1"
    records.mkdir(parents=True)
    (records / "tiny.json").write_text(json.dumps({
        "schema": 1, "kind": "image", "image": "tiny", "repository": "registry.example:5000/stackyard/tiny", "release_tag": "2025.1-debian_bookworm",
        "dated_tag": "2025.1-debian_bookworm-20250601T000000Z", "image_id": "sha256:" + "1" * 64, "inputs": "2" * 64,
        "version": "1.2.0-2025.1.1", "size": 1, "digest": "sha256:" + "3" * 64}))
    code, out, _ = run(config, "helm-values", "--release", "2025.1")
    file = config.paths.output / "helm" / "2025.1" / "tiny.yaml"
    assert code == 0 and table_rows(out, "chart") == [["tiny", "1", "dep_check", str(file)]]
    assert stat.S_IMODE(file.stat().st_mode) == 0o600  # it holds the registry password
    values = yaml.safe_load(file.read_text())
    assert values["images"]["tags"] == {"tiny_api": "registry.example:5000/stackyard/tiny:2025.1-debian_bookworm-20250601T000000Z"}
    assert values["endpoints"]["oci_image_registry"]["auth"]["tiny"]["password"] == "s3cret"
    out_dir = config.paths.output / "by-digest"
    code, _, _ = run(config, "helm-values", "--release", "2025.1", "--by-digest", "--output", str(out_dir))
    assert yaml.safe_load((out_dir / "tiny.yaml").read_text())["images"]["tags"]["tiny_api"] == \
        "registry.example:5000/stackyard/tiny@sha256:" + "3" * 64


# -- errors and exit codes ---------------------------------------------------------------------

def test_an_unknown_release_exits_2_with_the_known_ones(config: Config, run: Run) -> None:
    code, out, err = run(config, "bindep", "--release", "dalmatian")
    assert code == 2 and out == ""
    assert err == ("stackyard: error: unknown release 'dalmatian'\n"
                   f"  fix: use one of 2025.1 (epoxy), 2025.2 (flamingo), or add [releases.\"dalmatian\"] to {config.file}\n")


def test_an_interrupt_exits_130(config: Config, run: Run, release) -> None:  # type: ignore[no-untyped-def]
    workspace(config, release)

    def interrupt(call: Call) -> None:
        raise KeyboardInterrupt

    code, _, err = run(config, "deb", "--release", "2025.1", "tiny", runner=FakeRunner().reply("dpkg-buildpackage",
                                                                                                 effect=interrupt))
    assert code == 130 and err.endswith("stackyard: interrupted\n")


def test_a_closed_stdout_exits_141_quietly(config: Config, release, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                          capsys: pytest.CaptureFixture[str]) -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    bindep_file(config, "2025.1", "gcc\n")
    monkeypatch.setattr(sys, "stdout", Closed())
    assert cli.main(["--config", str(config.file), "bindep", "--release", "2025.1"]) == 141
    assert capsys.readouterr().err == ""

