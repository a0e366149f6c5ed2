"""Socket owners of another process, kept for the whole run: the parent side.

Starting a process per cell cost milliseconds (forking pytest grows with its
size); a pooled helper costs one round trip per request. Per pytest process (an
xdist worker is one) and owner kind there is one starter (platforms/: a zygote on
POSIX, a fresh interpreter per helper on Windows) and, usually, one helper serving
cell after cell. A cell takes the helper (`Child`) and gives it back; the helper then
closes that cell's sockets, and proves it holds none, with its next request: the next
cell's first (in the same round trip, before serving it), or settle()'s reset where a
port proof needs the helper's sockets closed. A helper that kept a socket, or died
between cells, is killed and a fresh one serves that first request. A killed helper (a
cell's `kill` step) is forgotten; the next cell gets a fresh one. Everything is reaped
at session end (plugin.py) or at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterable
from typing import Any

from . import jsonline, owner, platforms
from .owner import OwnerUnavailable
from .platforms import _control


def _stay() -> None:
    """A helper process that cannot be moved (not Linux) stays where the OS runs it."""


class Unclean(Exception):
    """A new cell's first request found sockets of the last cell still open after the
    reset (a server factory's leak): the request was not served."""


class Helper:
    """One helper process: requests as JSON lines over the platform's channel."""

    def __init__(self, kind: str, process: Any):
        self.kind, self.process = kind, process
        self.follow = getattr(process, "follow", _stay)  # keep it near this process's CPU
        self.dirty = False  # the last cell's sockets may be open: the next request resets
        self.encode, self.decode = jsonline.codec()

    def do(self, req: dict[str, Any]) -> dict[str, Any]:
        """Serve one request; the first after a cell ended closes that cell's sockets
        first, in the same round trip (Unclean: some were left, nothing was served)."""
        if self.dirty:
            req = {**req, "reset": True}
        if not self._write(req):
            raise OwnerUnavailable(f"the {self.kind} child process died")
        answer = self._answer()
        self.dirty = False
        if answer.get("outcome") == "unclean":
            raise Unclean(f"the {self.kind} helper still held {answer.get('held')} socket(s)")
        return answer

    def _write(self, req: dict[str, Any]) -> bool:
        self.follow()
        try:
            self.process.wfile.write(self.encode(req) + "\n")
            self.process.wfile.flush()
        except (OSError, ValueError):
            return False
        return True

    def _answer(self) -> dict[str, Any]:
        try:
            line = self.process.rfile.readline()
        except (OSError, ValueError):
            line = ""
        if not line:
            raise OwnerUnavailable(f"the {self.kind} child process died")
        answer: dict[str, Any] = self.decode(line)
        return answer

    def reset(self) -> bool:
        """Close every socket it holds now; True when it proves it holds none."""
        try:
            answer = self.do({"op": "reset"})  # a reset is answered with what it found held
        except OwnerUnavailable:
            return False
        return answer.get("outcome") == "ok" and answer.get("held") in (0, None)


class Pool:
    """Starters and idle helpers per owner kind, for this process only."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.starters: dict[str, Any] = {}
        self.idle: dict[str, list[Helper]] = {}
        self.busy: list[Helper] = []
        self.unavailable: dict[str, str] = {}  # decided once: how to enable it
        self.started = 0  # helpers started (a test and the benchmark read it)
        self.working: set[str] = set()  # kinds that started a helper at least once
        self.replaced = 0  # helpers killed because a reset found sockets left

    def _starter(self, kind: str) -> Any:
        if kind in self.unavailable:
            raise OwnerUnavailable(self.unavailable[kind])
        if kind not in self.starters:
            try:
                self.starters[kind] = platforms.current.owner_starter(kind)
            except (PermissionError, _control.ControlError, OSError) as exc:
                self.unavailable[kind] = f"could not start a child as {kind}: {exc}"
                raise OwnerUnavailable(self.unavailable[kind]) from None
        return self.starters[kind]

    def prestart(self, kinds: Iterable[str]) -> None:
        """Begin starting the starters these cells need, so the first cell does not wait."""
        for kind in kinds:
            with contextlib.suppress(OwnerUnavailable):
                if kind == "other-user":
                    owner.other_user_ids()
                self._starter(kind)

    def take(self, kind: str) -> Helper:
        """An idle helper (its last cell's sockets are closed by its next request), or a
        fresh one."""
        if self.pid != os.getpid():  # a forked copy of this process: the helpers are not ours
            self.__init__()  # type: ignore[misc]
        idle = self.idle.setdefault(kind, [])
        helper = idle.pop() if idle else self._start(kind)
        self.busy.append(helper)
        return helper

    def renew(self, helper: Helper) -> Helper:
        """A fresh helper in place of one that died between cells or kept a socket of
        its last cell: the cell's first request is served again there."""
        self.busy.remove(helper)
        self._replace(helper)
        fresh = self._start(helper.kind)
        self.busy.append(fresh)
        return fresh

    def _count(self, kind: str) -> int:
        return len(self.idle.get(kind, ())) + sum(1 for h in self.busy if h.kind == kind)

    def _start(self, kind: str) -> Helper:
        starter = self._starter(kind)
        try:
            helper = Helper(kind, starter.start())
        except (PermissionError, _control.ControlError, OSError) as exc:
            if kind not in self.working:  # never started one: this owner cannot run here
                self.unavailable[kind] = f"could not start a child as {kind}: {exc}"
            if not self._count(kind):  # closing it would take its helpers along
                self.starters.pop(kind, None)
                with contextlib.suppress(OSError):
                    starter.close()
            raise OwnerUnavailable(f"could not start a child as {kind}: {exc}") from None
        self.started += 1
        self.working.add(kind)
        return helper

    def give_back(self, helper: Helper) -> None:
        """The cell is over: its sockets are closed by the helper's next request (the next
        cell's first, or settle()'s reset), and a helper that cannot prove it holds
        nothing then is killed."""
        if helper not in self.busy:
            return
        self.busy.remove(helper)
        helper.dirty = True
        self.idle.setdefault(helper.kind, []).append(helper)

    def settle(self) -> None:
        """Every helper has closed its last cell's sockets (or is killed): their ports
        are free for a proof."""
        for idle in self.idle.values():
            for helper in [h for h in idle if h.dirty and not h.reset()]:
                idle.remove(helper)
                self._replace(helper)

    def _replace(self, helper: Helper) -> None:
        self.replaced += 1
        helper.process.kill()

    def kill(self, helper: Helper) -> None:
        """A crash: the helper and its sockets die; it is never handed out again."""
        if helper in self.busy:
            self.busy.remove(helper)
        helper.process.kill()

    def shutdown(self) -> None:
        """Close every helper and starter and reap them: no process outlives the session."""
        if self.pid != os.getpid():
            return
        for helper in [*self.busy, *(h for hs in self.idle.values() for h in hs)]:
            with contextlib.suppress(OSError):
                helper.process.close()
        for starter in self.starters.values():
            with contextlib.suppress(OSError):
                starter.close()
        self.__init__()  # type: ignore[misc]


POOL = Pool()
atexit.register(POOL.shutdown)


class Child:
    """One cell's socket owner of another process (probe.py): a pooled helper, reset and
    returned when the cell closes, or killed by the cell's `kill` step."""

    def __init__(self, kind: str):
        self.owner = kind
        self.helper: Helper | None = POOL.take(kind)

    def do(self, req: dict[str, Any]) -> dict[str, Any]:
        if self.helper is None:
            raise OwnerUnavailable(f"the {self.owner} child process was killed")
        first = self.helper.dirty  # this request also closes the last cell's sockets
        try:
            return self.helper.do(req)
        except (OwnerUnavailable, Unclean):
            if not first:  # it died during this cell: the cell's own failure
                raise
            self.helper = POOL.renew(self.helper)  # dead since, or it kept one: a fresh one
            return self.helper.do(req)

    def kill(self) -> None:
        """Crash the helper (SIGKILL / TerminateProcess, per OS in platforms/): its sockets
        die with it, as in a real crash."""
        if self.helper is not None:
            POOL.kill(self.helper)
            self.helper = None

    def close(self) -> None:
        """The cell is done with it: its sockets are closed before the helper serves
        another cell, and before a proof that needs their ports (ownerpool.settle())."""
        if self.helper is not None:
            POOL.give_back(self.helper)
            self.helper = None


def prestart(kinds: Iterable[str]) -> None:
    POOL.prestart(kinds)


def settle() -> None:
    POOL.settle()


def shutdown() -> None:
    POOL.shutdown()
