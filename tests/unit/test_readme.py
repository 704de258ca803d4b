"""Every shell block of the README is run by a test as written (or says why not)."""

from __future__ import annotations

from tests.readme import sh_blocks

RUN_BY_TESTS = {"operator", "host", "wheelhouse"}


def test_every_readme_shell_block_names_what_runs_it() -> None:
    blocks = sh_blocks()
    assert len(blocks) >= 5
    for tag, body in blocks:
        assert tag is not None, f"README sh block without a <!-- readme-test: ... --> marker:\n{body}"
        assert tag in RUN_BY_TESTS or tag == "ci" or tag.startswith("not run: "), (tag, body)


def test_the_marker_parser_finds_unmarked_blocks() -> None:
    text = "<!-- readme-test: ci -->\n```sh\nmake test\n```\n\n```sh\nrm -rf /\n```\n"
    assert sh_blocks(text) == [("ci", "make test\n"), (None, "rm -rf /\n")]
