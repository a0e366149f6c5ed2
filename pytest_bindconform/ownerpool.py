"""Socket owners of another process, kept for the whole run: the parent side.

Starting a process per cell cost milliseconds (forking pytest grows with its
size); a pooled helper costs one round trip per request. Per pytest process (an
xdist worker is one) and owner kind there is one starter (platforms/: a zygote on
POSIX) and its helpers: two take turns where a start is cheap (a POSIX fork; one on
Windows, where each is a fresh interpreter). A cell takes a helper (`Child`) and gives it
back: the helper is reset, and proves it holds no socket, or it is killed and
replaced. The reset's answer is read when a later cell takes the helper, or when a
port proof needs the helper's sockets closed (settle()): while one helper closes the
last cell's sockets, the next cell runs on the other. A killed helper (a cell's `kill`
step) is forgotten; the next cell gets a fresh one. Everything is reaped at session end
(plugin.py) or at exit.
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


class Helper:
    """One helper process: requests as JSON lines over the platform's channel."""

    def __init__(self, kind: str, process: Any):
        self.kind, self.process = kind, process
        self.follow = getattr(process, "follow", _stay)  # keep it near this process's CPU
        self.resetting = False  # a reset was sent and its answer not read yet
        self.encode, self.decode = jsonline.codec()

    def do(self, req: dict[str, Any]) -> dict[str, Any]:
        if not self._write(req):
            raise OwnerUnavailable(f"the {self.kind} child process died")
        return self._answer()

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

    def start_reset(self) -> bool:
        """Ask it to close every socket it holds; the answer is read by finish_reset(), when
        a later cell takes it or a proof needs its ports free (ownerpool.settle): the
        cell does not wait for the helper to wake up twice."""
        self.resetting = self._write({"op": "reset"})
        return self.resetting

    def finish_reset(self) -> bool:
        """True when the reset it was sent proved it holds no socket."""
        self.resetting = False
        try:
            answer = self._answer()
        except OwnerUnavailable:
            return False
        return answer.get("outcome") == "ok" and answer.get("held") in (0, None)

    def reset(self) -> bool:
        """Close every socket it holds; True when it proves it holds none."""
        return self.start_reset() and self.finish_reset()


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
        if self.pid != os.getpid():  # a forked copy of this process: the helpers are not ours
            self.__init__()  # type: ignore[misc]
        idle = self.idle.setdefault(kind, [])
        helper = None
        starter = self.starters.get(kind)
        if idle and idle[0].resetting and starter and self._count(kind) < starter.helpers:
            # the helper idle longest still closes the last cell's sockets: another one
            # serves this cell, and from now on the two take turns
            with contextlib.suppress(OwnerUnavailable):
                helper = self._start(kind)
        while idle and helper is None:
            helper = idle.pop(0)  # the longest idle: its reset's answer is the likeliest read
            if helper.resetting and not helper.finish_reset():
                self._replace(helper)
                helper = None
        if helper is None:
            helper = self._start(kind)
        self.busy.append(helper)
        return helper

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
        """Reset between cells; a helper that cannot prove it holds nothing is killed
        (when its answer is read: at the next take, or at settle())."""
        if helper not in self.busy:
            return
        self.busy.remove(helper)
        if helper.start_reset():
            self.idle.setdefault(helper.kind, []).append(helper)
        else:
            self._replace(helper)

    def settle(self) -> None:
        """Every reset sent has been answered: the helpers hold no socket of an earlier
        cell (or are killed), so their ports are free for a proof."""
        for idle in self.idle.values():
            for helper in [h for h in idle if h.resetting and not h.finish_reset()]:
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
