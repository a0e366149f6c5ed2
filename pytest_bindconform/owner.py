"""Sockets held by another process, optionally running as another user: the helper side.

Some rules depend on who owns a socket (Windows table D; Linux SO_REUSEPORT
never shares across effective uids). A helper process serves ops.Executor
requests as JSON lines for many cells in a row; between cells the pool
(ownerpool.py) sends `reset`, which closes every socket the helper holds and
answers how many it still holds (0, or the pool replaces it). How a helper is
started differs per OS and lives in platforms/: on POSIX a small interpreter
started once per owner kind switches user once and forks helpers; on Windows each
helper is a fresh interpreter, as a second local account (CreateProcessWithLogonW,
credentials in BINDCONFORM_OTHER_USER / BINDCONFORM_OTHER_PASSWORD) reached over a
loopback TCP control channel with a random token.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import IO, Any

from . import jsonline, platforms
from .ops import Executor
from .platforms import _control

OTHER_USER = "nobody"  # POSIX: the account of 'other-user' sockets
_platform: ModuleType = platforms.current  # simulate.py swaps in the simulated OS's module
_problems: dict[tuple[Any, ...], str | None] = {}  # decided once per process (and namespace)


class OwnerUnavailable(Exception):
    """This run cannot hold a socket as that owner; the message says how to enable it."""


def use_platform(module: ModuleType) -> None:
    """Judge 'other-user' availability by another OS's rules (simulated runs only)."""
    global _platform
    _platform = module


def other_user_ids() -> None:
    """Raise OwnerUnavailable, saying how to enable it, when 'other-user' cannot run here.
    Asked for every cell, decided once: the account database and uid_map are read once
    per process (and user namespace: entering one changes the answer)."""
    key = (_platform, getattr(os, "geteuid", lambda: 0)(), _user_namespace())
    if key not in _problems:
        _problems[key] = _platform.other_user_problem()
    problem = _problems[key]
    if problem:
        raise OwnerUnavailable(problem)


def _user_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/user").st_ino
    except OSError:
        return 0  # not Linux


def serve(rfile: IO[str], wfile: IO[str], channel: int = -1) -> None:
    """Helper side: answer requests until EOF, then close every socket. `reset` closes
    them between cells and counts what is still open besides the channel; a request
    marked `"reset": true` (a new cell's first) does that first, and is served only if
    nothing is left open: the last cell's sockets are closed without a round trip."""
    executor = Executor()
    encode, decode = jsonline.codec()
    try:
        for line in rfile:
            req = decode(line)
            held = None
            if req.get("reset") or req.get("op") == "reset":
                executor.close_all()
                held = platforms.current.open_sockets(channel)
            if req.get("op") == "reset":
                answer = {"outcome": "ok", "held": held}
            elif held:
                answer = {"outcome": "unclean", "held": held}
            else:
                answer = executor.do(req)
            wfile.write(encode(answer) + "\n")
            wfile.flush()
    finally:
        executor.close_all()


def _prepare() -> None:
    """Import what requests import lazily, before the switch to another user, and load the
    library profiles once: every helper forked after a kill has them already (orjson
    too, found on the parent's sys.path, which the zygote has been given by now)."""
    from . import candidates, delivery  # noqa: F401

    jsonline.codec()

    with contextlib.suppress(Exception):  # only a head start: a real error shows when used
        candidates.profiles()


def _main(argv: Sequence[str] | None = None) -> None:
    """A spawned helper (Windows: stdin/stdout, or --control HOST:PORT as another account),
    or the POSIX zygote (--zygote FD) that forks helpers."""
    parser = argparse.ArgumentParser(prog="python -m pytest_bindconform.owner")
    parser.add_argument("--control", metavar="HOST:PORT", help="connect back here (token in env)")
    parser.add_argument("--zygote", metavar="FD", type=int, help="fork helpers (POSIX)")
    parser.add_argument("--ids", metavar="UID:GID", help="the zygote's user, switched to once")
    args = parser.parse_args(argv)
    if args.zygote is not None:
        from .platforms import _posix

        ids = tuple(int(x) for x in args.ids.split(":")) if args.ids else None
        # a run that ends while the zygote still starts (every cell deselected) hangs up
        # with the zygote's "ok" unread: the reset only says the parent is gone
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            _posix.run_zygote(args.zygote, ids, serve, _prepare)  # type: ignore[arg-type]
        # its helpers are reaped and it has nothing to flush: finalizing every module it
        # preloaded would only make the end of the run wait for it
        os._exit(0)
    if args.control:
        rfile, wfile = _control.connect(args.control, os.environ.get(_control.TOKEN_ENV, ""))
    else:
        rfile, wfile = sys.stdin, sys.stdout
    hello = json.loads(rfile.readline() or "{}")  # the parent's hello: its sys.path
    sys.path[:0] = [p for p in hello.get("path", []) if p not in sys.path]
    _prepare()
    wfile.write(json.dumps({"outcome": "ok"}) + "\n")
    wfile.flush()
    serve(rfile, wfile)


if __name__ == "__main__":
    _main()
