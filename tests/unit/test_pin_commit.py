"""pin_commit's decisions with the injected runner (git's answers scripted): retries on a refused push, no commit when
nothing changed, a new branch on HEAD, the errors for a bad remote, and checkout's choice of revision. The same
code against real git: tests/integration/test_pin_commit.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from stackyard.config import Config
from stackyard.errors import ConfigError, ConflictError, FetchError, InputError
from stackyard.pin_commit import ATTEMPTS, _identity, checkout, commit_pin, commit_requirements
from stackyard.recipes import Recipe, load_recipe
from stackyard.runner import Call
from stackyard.wheels.lock import lock_path
from tests.fakes import FakeRunner

BRANCH = "stackyard/pins"
TIP, HEAD, NEW = "a" * 40, "b" * 40, "c" * 40
REFUSED = " ! [rejected]        c -> stackyard/pins (fetch first)\nerror: failed to push some refs\n"


@pytest.fixture
def setup(make_config: Callable[..., Config], make_recipe: Callable[..., Path],
          tmp_path: Path) -> tuple[Config, Recipe, tuple[str, ...]]:
    config = make_config(extra=f'[deb]\nmaintainer = "Ops Team <ops@example.org>"\n[buildbot]\npins_branch = "{BRANCH}"\n')
    recipe = load_recipe(make_recipe("tinyapp", 'name: tinyapp\nsource: {pypi: tinyapp}\nversions: {"2025.1": "1.1"}\n'))
    lock = lock_path(config, config.release("2025.1"), "tinyapp")
    lock.parent.mkdir(parents=True)
    lock.write_text("tinyapp==1.1\n")
    return config, recipe, ("git", "-C", str(tmp_path))


def git_repo(git: tuple[str, ...], tmp_path: Path, *, tree: str = "t-new", parent_tree: str = "t-old",
             tip: str | None = TIP) -> FakeRunner:
    """git answering as a clone whose remote branch is at ``tip`` (None: no such branch)."""
    fake = FakeRunner()
    fake.reply(*git, "rev-parse", "--show-toplevel", stdout=f"{tmp_path}\n")
    fake.reply(*git, "rev-parse", "--verify", stdout=f"{tip}\n")  # the fetched tip (tracking ref)
    fake.reply(*git, "rev-parse", "--verify", "HEAD^{commit}", stdout=f"{HEAD}\n")
    fake.reply(*git, "rev-parse", f"{tip or HEAD}^{{tree}}", stdout=f"{parent_tree}\n")
    fake.reply(*git, "hash-object", stdout="blob\n")
    fake.reply(*git, "write-tree", stdout=f"{tree}\n")
    fake.reply(*git, "commit-tree", stdout=f"{NEW}\n")
    if tip is None:
        fake.reply(*git, "fetch", returncode=128, stderr="fatal: couldn't find remote ref refs/heads/stackyard/pins\n")
    return fake


def subcommands(fake: FakeRunner) -> list[str]:
    return [c.argv[3] for c in fake.calls if c.argv[:1] == ("git",) and len(c.argv) > 3]


def test_the_committer_is_the_maintainer_and_git_never_prompts(setup: tuple[Config, Recipe, tuple[str, ...]],
                                                              make_config: Callable[..., Config]) -> None:
    config, _, _ = setup
    assert _identity(config) == {"GIT_AUTHOR_NAME": "Ops Team", "GIT_AUTHOR_EMAIL": "ops@example.org",
                                 "GIT_COMMITTER_NAME": "Ops Team", "GIT_COMMITTER_EMAIL": "ops@example.org",
                                 "GIT_TERMINAL_PROMPT": "0"}
    odd = make_config(extra='[deb]\nmaintainer = "no address"\n')
    assert _identity(odd)["GIT_AUTHOR_EMAIL"] == "stackyard@localhost"


def test_a_push_refused_by_a_concurrent_build_is_made_again_on_the_new_tip(
        setup: tuple[Config, Recipe, tuple[str, ...]], tmp_path: Path) -> None:
    config, recipe, git = setup
    fake = git_repo(git, tmp_path)

    def then_accept(_: Call) -> None:
        fake.reply(*git, "push", returncode=0)

    fake.reply(*git, "push", returncode=1, stderr=REFUSED, effect=then_accept)
    result = commit_pin(config, config.release("2025.1"), recipe, runner=fake)
    assert (result.commit, result.base, result.attempts) == (NEW, TIP, 2)
    assert result.files == ("recipes/tinyapp.yaml", "requirements/2025.1/locks/tinyapp.txt")
    assert subcommands(fake).count("fetch") == 2 and subcommands(fake).count("push") == 2
    push = [c for c in fake.calls if c.argv[3:4] == ("push",)][-1]
    assert push.argv[-2:] == ("origin", f"{NEW}:refs/heads/{BRANCH}")
    commit = next(c for c in fake.calls if c.argv[3:4] == ("commit-tree",))
    assert commit.argv[-1] == "tinyapp 1.1 for 2025.1: pin and lock" and commit.argv[4:7] == ("t-new", "-p", TIP)
    assert subcommands(fake)[-1] == "update-ref"  # the run's own tracking ref is forgotten


def test_nothing_changed_is_no_commit(setup: tuple[Config, Recipe, tuple[str, ...]], tmp_path: Path) -> None:
    config, recipe, git = setup
    fake = git_repo(git, tmp_path, tree="same", parent_tree="same")
    result = commit_pin(config, config.release("2025.1"), recipe, runner=fake)
    assert (result.commit, result.base, result.attempts) == (None, TIP, 1)
    assert "commit-tree" not in subcommands(fake) and "push" not in subcommands(fake)


def test_a_branch_the_remote_lacks_starts_on_head(setup: tuple[Config, Recipe, tuple[str, ...]], tmp_path: Path) -> None:
    config, recipe, git = setup
    fake = git_repo(git, tmp_path, tip=None, tree="same", parent_tree="same")  # even with HEAD's tree: the branch is new
    result = commit_pin(config, config.release("2025.1"), recipe, runner=fake)
    assert (result.commit, result.base) == (NEW, None)
    commit = next(c for c in fake.calls if c.argv[3:4] == ("commit-tree",))
    assert commit.argv[4:7] == ("same", "-p", HEAD)


@pytest.mark.parametrize(("stderr", "error", "expected"), [
    ("remote: Permission to ops/config denied\nfatal: unable to access\n", FetchError,
     "cannot push to stackyard/pins of origin: remote: Permission"),
    (REFUSED, ConflictError,  # others kept pushing first: a build from a new checkout is the fix
     f"stackyard/pins of origin moved under each of {ATTEMPTS} pushes; .tinyapp 1.1 for 2025.1: pin and lock. was not recorded"),
])
def test_a_push_that_cannot_land_is_an_error_which_says_whether_building_again_helps(
        setup: tuple[Config, Recipe, tuple[str, ...]], tmp_path: Path, stderr: str, error: type[Exception], expected: str) -> None:
    config, recipe, git = setup
    fake = git_repo(git, tmp_path)
    fake.reply(*git, "push", returncode=1, stderr=stderr)
    with pytest.raises(error, match=expected):
        commit_pin(config, config.release("2025.1"), recipe, runner=fake)
    assert subcommands(fake)[-1] == "update-ref"


def test_a_remote_that_cannot_be_fetched_names_the_branch_and_the_settings(
        setup: tuple[Config, Recipe, tuple[str, ...]], tmp_path: Path) -> None:
    config, recipe, git = setup
    fake = git_repo(git, tmp_path)
    fake.reply(*git, "fetch", returncode=128, stderr="fatal: 'origin' does not appear to be a git repository\n")
    with pytest.raises(FetchError, match="cannot fetch stackyard/pins of origin: fatal: 'origin'") as info:
        commit_pin(config, config.release("2025.1"), recipe, runner=fake)
    assert "buildbot.pins_remote and pins_branch" in str(info.value)


def test_bad_settings_and_inputs(make_config: Callable[..., Config], setup: tuple[Config, Recipe, tuple[str, ...]],
                                 tmp_path: Path) -> None:
    config, recipe, git = setup
    with pytest.raises(ConfigError, match="buildbot.pins_branch: not set"):
        commit_pin(make_config(), config.release("2025.1"), recipe, runner=FakeRunner())
    outside = FakeRunner().reply(*git, "rev-parse", "--show-toplevel", returncode=128, stderr="fatal: not a git repository")
    with pytest.raises(InputError, match="is not in a git repository: a pin cannot become a commit"):
        commit_pin(config, config.release("2025.1"), recipe, runner=outside)
    lock_path(config, config.release("2025.1"), "tinyapp").unlink()
    with pytest.raises(InputError, match="tinyapp.txt: missing") as info:
        commit_pin(config, config.release("2025.1"), recipe, runner=git_repo(git, tmp_path))
    assert "stackyard lock --release 2025.1 tinyapp" in str(info.value)


def checked_out(fake: FakeRunner) -> str:
    (call,) = [c for c in fake.calls if c.argv[3:4] == ("checkout",)]
    return call.argv[-1]


def test_checkout_takes_the_tip_an_exact_revision_or_stays_without_a_branch(
        setup: tuple[Config, Recipe, tuple[str, ...]], tmp_path: Path) -> None:
    config, _, git = setup
    fake = git_repo(git, tmp_path)
    result = checkout(config, runner=fake)
    assert (result.commit, result.moved, checked_out(fake)) == (TIP, True, TIP)
    fake = git_repo(git, tmp_path)
    fake.reply(*git, "rev-parse", "--verify", "--quiet", stdout=f"{NEW}\n")
    assert checkout(config, revision="c0ffee", runner=fake).commit == NEW and checked_out(fake) == NEW
    fake = git_repo(git, tmp_path, tip=None)
    result = checkout(config, runner=fake)
    assert (result.commit, result.moved) == (HEAD, False)
    assert subcommands(fake)[-1] == "update-ref"


def test_checkout_refuses_a_revision_it_cannot_find_or_a_tip_without_the_pin_commit(
        setup: tuple[Config, Recipe, tuple[str, ...]], tmp_path: Path) -> None:
    config, _, git = setup
    fake = git_repo(git, tmp_path)
    fake.reply(*git, "rev-parse", "--verify", "--quiet", returncode=1)
    with pytest.raises(InputError, match="c0ffee: no such commit"):
        checkout(config, revision="c0ffee", runner=fake)
    fake = git_repo(git, tmp_path)
    fake.reply(*git, "merge-base", "--is-ancestor", returncode=1)
    with pytest.raises(InputError, match=f"stackyard/pins of origin \\(at {TIP}\\) does not contain {NEW}"):
        checkout(config, contains=NEW, runner=fake)
    with pytest.raises(InputError, match=f"stackyard/pins of origin does not exist, so it does not contain {NEW}"):
        checkout(config, contains=NEW, runner=git_repo(git, tmp_path, tip=None))
    assert "checkout" not in subcommands(fake) and subcommands(fake)[-1] == "update-ref"


LOCK = "requirements/2025.1/locks/tinyapp.txt"


@pytest.mark.parametrize(("tip_blob", "conflict"), [("other", True), ("blob", False)])
def test_a_file_another_build_changed_since_this_checkout_is_a_conflict_unless_it_made_the_same_change(
        setup: tuple[Config, Recipe, tuple[str, ...]], tmp_path: Path, tip_blob: str, conflict: bool) -> None:
    config, recipe, git = setup
    fake = git_repo(git, tmp_path)
    fake.reply(*git, "diff", "--name-only", stdout=f"{LOCK}\n")
    fake.reply(*git, "ls-tree", TIP, stdout=f"100644 blob {tip_blob}\t{LOCK}\n")
    if conflict:
        with pytest.raises(ConflictError, match=f"stackyard/pins of origin changed {LOCK} after {HEAD} .this build's checkout.") as info:
            commit_pin(config, config.release("2025.1"), recipe, since=HEAD, runner=fake)
        assert "run the build again" in str(info.value)
        assert "push" not in subcommands(fake) and subcommands(fake)[-1] == "update-ref"
    else:
        assert commit_pin(config, config.release("2025.1"), recipe, since=HEAD, runner=fake).commit == NEW
    diff = next(c for c in fake.calls if c.argv[3:4] == ("diff",))
    assert diff.argv[-3:] == ("--", "recipes/tinyapp.yaml", LOCK) and (HEAD, TIP) == diff.argv[6:8]
    unchanged = git_repo(git, tmp_path)  # the tip is the checkout: nothing to compare
    commit_pin(config, config.release("2025.1"), recipe, since=TIP, runner=unchanged)
    assert "diff" not in subcommands(unchanged)


def test_the_requirements_commit_takes_the_inputs_their_source_and_every_lock(
        setup: tuple[Config, Recipe, tuple[str, ...]], tmp_path: Path) -> None:
    config, _, git = setup
    release = config.release("2025.1")
    directory = config.requirements_dir(release)
    (directory / "locks" / "tinyapp.txt").unlink()
    with pytest.raises(InputError, match="2025.1: no requirements to commit"):
        commit_requirements(config, release, runner=git_repo(git, tmp_path))
    (directory / "locks" / "tinyapp.txt").write_text("tinyapp==1.1\n")
    (directory / "locks" / "other.txt").write_text("other==2.0\n")
    (directory / "upper-constraints.txt").write_text("tinypure===1.1\n")
    (directory / "SOURCE").write_text(f"origin: file:///req.git\nbranch: stable/2025.1\ncommit: {NEW}\n")
    fake = git_repo(git, tmp_path)
    result = commit_requirements(config, release, runner=fake)
    assert (result.project, result.commit) == ("", NEW)
    assert result.files == ("requirements/2025.1/SOURCE", "requirements/2025.1/locks/other.txt", LOCK,
                            "requirements/2025.1/upper-constraints.txt")
    commit = next(c for c in fake.calls if c.argv[3:4] == ("commit-tree",))
    assert commit.argv[-1] == f"2025.1: upper-constraints ({NEW[:12]}) and the locks made from it"


def test_the_commands_say_the_commit_or_that_there_was_none_and_print_json_for_buildbot(
        setup: tuple[Config, Recipe, tuple[str, ...]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stackyard import cli

    config, _, git = setup
    cfg = ["--config", str(config.file)]
    assert cli.main([*cfg, "requirements", "commit", "--release", "2025.1"], runner=git_repo(git, tmp_path)) == 0
    assert capsys.readouterr().out == f"stackyard/pins of origin: {NEW} the requirements of 2025.1 ({LOCK}; push attempt 1)\n"
    fake = git_repo(git, tmp_path, tree="same", parent_tree="same")
    assert cli.main([*cfg, "pin-commit", "--release", "2025.1", "tinyapp", "--since", TIP], runner=fake) == 0
    assert capsys.readouterr().out == "stackyard/pins of origin: already has tinyapp 1.1 for 2025.1; no commit\n"
    assert cli.main([*cfg, "pin-commit", "--release", "2025.1", "tinyapp", "--json"], runner=git_repo(git, tmp_path)) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["commit"] == NEW and said["files"] == ["recipes/tinyapp.yaml", LOCK] and said["project"] == "tinyapp"
