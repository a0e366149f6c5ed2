"""Sockets held by another process, optionally running as another user.

Some rules depend on who owns a socket (Windows table D; Linux SO_REUSEPORT
never shares across effective uids). The child serves ops.Executor requests as
JSON lines and is always reaped. How it is started differs per OS and lives in
platforms/: on POSIX it is forked (then setuid for another user, so that user
needs no permission to execute this interpreter); on Windows it is a fresh
interpreter, as a second local account (CreateProcessWithLogonW, credentials in
BINDCONFORM_OTHER_USER / BINDCONFORM_OTHER_PASSWORD) reached over a loopback
TCP control channel with a random token.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import IO, Any

from . import platforms
from .ops import Executor
from .platforms import _control

OTHER_USER = "nobody"  # POSIX: the account of 'other-user' sockets
_platform: ModuleType = platforms.current  # simulate.py swaps in the simulated OS's module


class OwnerUnavailable(Exception):
    """This run cannot hold a socket as that owner; the message says how to enable it."""


def use_platform(module: ModuleType) -> None:
    """Judge 'other-user' availability by another OS's rules (simulated runs only)."""
    global _platform
    _platform = module


def other_user_ids() -> None:
    """Raise OwnerUnavailable, saying how to enable it, when 'other-user' cannot run here."""
    problem = _platform.other_user_problem()
    if problem:
        raise OwnerUnavailable(problem)


def serve(rfile: IO[str], wfile: IO[str]) -> None:
    """Child side: answer requests until EOF, then close every socket."""
    executor = Executor()
    try:
        for line in rfile:
            answer = executor.do(json.loads(line))
            wfile.write(json.dumps(answer) + "\n")
            wfile.flush()
    finally:
        executor.close_all()


class Child:
    """Parent side of a socket-owning child process."""

    def __init__(self, owner: str):
        self.owner = owner
        try:
            self.process: Any = platforms.current.spawn_owner(owner, serve)
        except (PermissionError, _control.ControlError) as exc:
            raise OwnerUnavailable(f"could not start a child as {owner}: {exc}") from None
        self.wfile, self.rfile = self.process.wfile, self.process.rfile
        answer = self.do({"op": "hello", "socket": "-"})
        if answer.get("outcome") == "refused":
            self.close()
            raise OwnerUnavailable(f"could not start a child as {owner}: {answer.get('error')}")

    def do(self, req: dict[str, Any]) -> dict[str, Any]:
        self.wfile.write(json.dumps(req) + "\n")
        self.wfile.flush()
        line = self.rfile.readline()
        if not line:
            raise OwnerUnavailable(f"the {self.owner} child process died")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def kill(self) -> None:
        """Crash the child (SIGKILL / TerminateProcess, per OS in platforms/): its sockets
        die with it, as in a real crash."""
        self.process.kill()

    def close(self) -> None:
        """Close the channel (the child closes its sockets on EOF) and reap it."""
        self.process.close()


def _main(argv: Sequence[str] | None = None) -> None:
    """A spawned child (Windows): stdin/stdout, or --control HOST:PORT as another account."""
    parser = argparse.ArgumentParser(prog="python -m pytest_bindconform.owner")
    parser.add_argument("--control", metavar="HOST:PORT", help="connect back here (token in env)")
    args = parser.parse_args(argv)
    if args.control:
        rfile, wfile = _control.connect(args.control, os.environ.get(_control.TOKEN_ENV, ""))
    else:
        rfile, wfile = sys.stdin, sys.stdout
    rfile.readline()  # the parent's hello
    wfile.write(json.dumps({"outcome": "ok"}) + "\n")
    wfile.flush()
    serve(rfile, wfile)


if __name__ == "__main__":
    _main()
