"""stackyard.runner with a fake spawn (no process starts): environment, log, errors, secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stackyard.errors import BuildError, ToolError, exit_code
from stackyard.runner import MASK, clean_env, command_line, tail
from tests.fakes import FakeRunner


def test_clean_env_drops_pip_variables_and_sets_the_fixed_ones() -> None:
    base = {"PATH": "/usr/bin", "PIP_INDEX_URL": "https://evil.example/simple", "PIP_CONFIG_FILE": "/root/pip.conf",
            "LANGUAGE": "de", "LANG": "de_DE.UTF-8", "TZ": "Europe/Berlin", "HOME": "/root"}
    env = clean_env({"GNUPGHOME": "/g", "HOME": None}, base=base)
    assert env == {"PATH": "/usr/bin", "LANG": "de_DE.UTF-8", "PIP_CONFIG_FILE": os.devnull, "LC_ALL": "C.UTF-8",
                   "TZ": "UTC", "GNUPGHOME": "/g"}


def test_clean_env_without_inheriting_is_the_fixed_settings_and_the_callers() -> None:
    assert clean_env({"PATH": "/bin"}, inherit=False, base={"SECRET": "x"}) == {
        "PIP_CONFIG_FILE": os.devnull, "LC_ALL": "C.UTF-8", "TZ": "UTC", "PATH": "/bin"}


def test_the_process_gets_the_clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "https://evil.example/simple")
    monkeypatch.setenv("PIP_REQUIRE_VIRTUALENV", "1")
    fake = FakeRunner()
    fake.run(["gpg", "--list-keys"], env={"GNUPGHOME": "/g", "PIP_NO_INPUT": "1"})
    (call,) = fake.calls
    assert call.argv == ("gpg", "--list-keys")
    assert "PIP_INDEX_URL" not in call.env and "PIP_REQUIRE_VIRTUALENV" not in call.env
    assert call.env["PIP_CONFIG_FILE"] == os.devnull and call.env["LC_ALL"] == "C.UTF-8" and call.env["TZ"] == "UTC"
    assert call.env["GNUPGHOME"] == "/g" and call.env["PIP_NO_INPUT"] == "1"  # what the caller adds stays
    assert call.stdin is None and call.timeout == 600


def test_the_log_gets_the_command_line_its_output_and_status_appended(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "repo.log"
    fake = FakeRunner().reply("reprepro", stdout="bookworm|main|amd64: venv-x 1.0\n", stderr="warning: old db\n")
    r = fake.run(["reprepro", "--basedir", "/srv/repo dir", "list", "bookworm"], env={"GNUPGHOME": "/g"}, log=log)
    fake.run(["gpg", "--armor", "--export"], log=log, cwd=tmp_path)
    assert r.stdout == "bookworm|main|amd64: venv-x 1.0\n" and r.returncode == 0
    lines = log.read_text().splitlines()
    assert lines[0] == "$ GNUPGHOME=/g reprepro --basedir '/srv/repo dir' list bookworm"
    assert lines[1:3] == ["bookworm|main|amd64: venv-x 1.0", "warning: old db"]
    assert lines[3].startswith("[exit 0; ")
    assert lines[4] == f"$ cd {tmp_path} && gpg --armor --export"
    assert lines[5].startswith("[exit 0; ")


def test_a_failure_is_a_tool_error_naming_the_tool_status_log_and_output_tail(tmp_path: Path) -> None:
    log = tmp_path / "repo.log"
    fake = FakeRunner().reply("reprepro", "export", returncode=255,
                              stderr="".join(f"line {i}\n" for i in range(100)) + "Error parsing conf/distributions\n")
    with pytest.raises(ToolError) as info:
        fake.run(["reprepro", "export"], log=log, what="reprepro export failed")
    exc = info.value
    assert exit_code(exc) == 6
    first, *rest = str(exc).splitlines()
    assert first == f"reprepro export failed: reprepro exited 255 (log: {log})"
    assert rest[-1] == "Error parsing conf/distributions" and "line 99" in rest and "line 50" not in rest
    assert "[exit 255; " in log.read_text()


def test_the_caller_picks_the_error_class_and_the_statuses_that_are_fine() -> None:
    fake = FakeRunner().reply("dpkg-buildpackage", returncode=2, stdout="boom\n").reply("buildbot", returncode=1)
    with pytest.raises(BuildError) as info:
        fake.run(["dpkg-buildpackage", "-b"], error=BuildError, hint="see the log")
    assert exit_code(info.value) == 5 and "dpkg-buildpackage exited 2\nboom" in str(info.value)
    assert info.value.hint == "see the log"
    assert fake.run(["buildbot", "stop"], ok=(0, 1)).returncode == 1
    assert fake.run(["dpkg-buildpackage"], check=False).returncode == 2


def test_a_timeout_is_an_error_naming_the_tool_and_the_log_even_unchecked(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    fake = FakeRunner().reply("mmdebstrap", timed_out=True, returncode=-9, stdout="I: retrieving Packages\n")
    with pytest.raises(ToolError) as info:
        fake.run(["mmdebstrap", "bookworm"], log=log, timeout=5, check=False, what="making the root")
    assert str(info.value).splitlines() == [
        f"making the root: mmdebstrap timed out after 5 s and was killed (log: {log})", "I: retrieving Packages"]
    assert "[timed out after 5 s, killed; " in log.read_text()
    assert fake.calls[0].timeout == 5


def test_a_missing_tool_names_its_debian_package(tmp_path: Path) -> None:
    fake = FakeRunner().reply("htpasswd", raises=FileNotFoundError(2, "No such file or directory"))
    fake.reply("frobnicate", raises=FileNotFoundError(2, "No such file or directory"))
    with pytest.raises(ToolError) as info:
        fake.run(["htpasswd", "-niB", "u"], what="hash the registry password", log=tmp_path / "x.log")
    assert exit_code(info.value) == 6
    assert info.value.message == "htpasswd is not installed (needed to hash the registry password)"
    assert info.value.hint == "apt-get install apache2-utils (make deps does)"
    assert "[could not start: No such file or directory]" in (tmp_path / "x.log").read_text()
    with pytest.raises(ToolError) as info:
        fake.run(["/usr/bin/frobnicate"], package="frobnicator")
    assert info.value.message == "frobnicate is not installed" and "apt-get install frobnicator" in str(info.value.hint)


def test_a_missing_working_directory_is_not_called_a_missing_tool(tmp_path: Path) -> None:
    fake = FakeRunner().reply("git", raises=FileNotFoundError(2, "No such file or directory"))
    with pytest.raises(ToolError, match="the working directory .* does not exist"):
        fake.run(["git", "log"], cwd=tmp_path / "gone")


def test_a_secret_is_never_logged_nor_shown(tmp_path: Path) -> None:
    secret = "hunter2-very-secret"
    log = tmp_path / "ctl.log"
    fake = FakeRunner().reply("tool", returncode=1, stderr=f"bad password {secret}\n")
    with pytest.raises(ToolError) as info:
        fake.run(["tool", f"--password={secret}"], env={"TOKEN": secret}, stdin=secret + "\n", log=log, secrets=[secret])
    assert secret not in str(info.value) and MASK in str(info.value)
    text = log.read_text()
    assert secret not in text
    assert text.startswith(f"$ TOKEN={MASK} tool --password={MASK}\n")
    assert fake.calls[0].stdin == secret + "\n"  # the tool itself gets it


def test_streamed_output_goes_to_the_log_and_its_tail_into_the_error(tmp_path: Path) -> None:
    log = tmp_path / "wheel.log"
    log.write_text("an earlier command's output\n")
    fake = FakeRunner().reply("python", returncode=1, stdout="compiling\nerror: gcc failed\n")
    with pytest.raises(ToolError) as info:
        fake.run(["/venv/bin/python", "-m", "pip", "wheel"], log=log, stream=True)
    assert str(info.value).splitlines()[1:] == ["compiling", "error: gcc failed"]
    assert log.read_text().splitlines()[-3:-1] == ["compiling", "error: gcc failed"]


def test_bad_calls_are_programming_errors() -> None:
    with pytest.raises(ValueError):
        FakeRunner().run([])
    with pytest.raises(ValueError):
        FakeRunner().run(["true"], stream=True)


def test_command_line_and_tail() -> None:
    assert command_line(["a b", "c"], {"X": "1", "Y": None}) == "env -u Y X=1 'a b' c"
    assert tail("x\n" * 5 + "last\n", lines=2) == "x\nlast"
    assert tail("y" * 50, chars=10) == "y" * 10
