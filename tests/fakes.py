"""A runner for unit tests: the real SubprocessRunner with ``spawn`` replaced, so no process starts.

Everything else is the real thing (clean environment, log file, secret
masking, ToolError on failure, timeout and missing-tool errors), so a test of
a caller sees the errors a user would::

    fake = FakeRunner()
    fake.reply("reprepro", "export", returncode=255, stderr="bad conf")
    AptRepository(config, runner=fake).publish(...)   # raises ToolError naming reprepro
    assert fake.calls[0].argv[:2] == ("reprepro", "--basedir")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable

from stackyard.runner import Call, Completed, SubprocessRunner


@dataclass
class Reply:
    prefix: tuple[str, ...]  # matched against argv; argv[0] by its file name
    completed: Completed
    raises: OSError | None = None
    effect: Callable[[Call], None] | None = None  # e.g. write the file the tool would make


class FakeRunner(SubprocessRunner):
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.replies: list[Reply] = []

    def reply(self, *prefix: str, returncode: int = 0, stdout: str = "", stderr: str = "", timed_out: bool = False,
              raises: OSError | None = None, effect: Callable[[Call], None] | None = None) -> FakeRunner:
        """Answer calls whose argv starts with ``prefix`` (the latest matching reply wins; unmatched: exit 0)."""
        self.replies.append(Reply(prefix, Completed(returncode, stdout, stderr, timed_out), raises, effect))
        return self

    def _match(self, argv: tuple[str, ...]) -> Reply | None:
        named = (Path(argv[0]).name, *argv[1:])
        for reply in reversed(self.replies):
            n = len(reply.prefix)
            if argv[:n] == reply.prefix or named[:n] == reply.prefix:
                return reply
        return None

    def spawn(self, call: Call, sink: IO[str] | None) -> Completed:
        self.calls.append(call)
        reply = self._match(call.argv)
        if reply is None:
            return Completed(0)
        if reply.raises is not None:
            raise reply.raises
        if reply.effect is not None:
            reply.effect(call)
        done = reply.completed
        if sink is not None:  # streamed: the output is in the log only, as with the real runner
            sink.write(done.stdout + done.stderr)
            sink.flush()
            return Completed(done.returncode, timed_out=done.timed_out)
        return done

    def argvs(self) -> list[tuple[str, ...]]:
        return [c.argv for c in self.calls]
