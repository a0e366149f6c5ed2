"""What Linux, macOS and FreeBSD share: fork, setuid, root, the POSIX linger struct.

Socket owners of another process: a small interpreter (the "zygote", one per owner
kind and pytest process) is started once, switches user once, and forks a helper
process whenever the pool (ownerpool.py) needs one. Forking that small process costs a
fraction of forking pytest, and a helper it forks holds real sockets and dies for real
when killed. The zygote is the helpers' parent: it kills and reaps them, and the pool
reaps the zygote.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ._common import Starter

OTHER_USER = "nobody"
Serve = Callable[[IO[str], IO[str], int], None]  # rfile, wfile, the channel's fd
# (helper pid, the CPU it was moved to or None) -> the CPU it is on now (platforms/linux.py)
Colocate = Callable[[int, "int | None"], "int | None"]
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
REAP_SECONDS = 5.0  # a helper exits at once on EOF; a stuck one is killed after this


def rst_linger() -> bytes:
    """SO_LINGER on, 0 s (struct linger: two ints): close() sends an RST, no TIME_WAIT."""
    return struct.pack("ii", 1, 0)


def is_admin() -> bool:
    return _geteuid() == 0


def _geteuid() -> int:
    geteuid: Callable[[], int] = getattr(os, "geteuid")  # noqa: B009 (absent on Windows)
    return geteuid()


def other_user_ids() -> tuple[int, int] | str:
    """uid/gid of the account for 'other-user' sockets, or why there is none."""
    if _geteuid() != 0:
        return "owner 'other-user' needs root to run a child process as another user; rerun as root"
    import importlib

    pwd: Any = importlib.import_module("pwd")
    try:
        entry = pwd.getpwnam(OTHER_USER)
    except KeyError:
        return f"owner 'other-user' needs the account {OTHER_USER!r}"
    if not uid_mapped(entry.pw_uid):
        return (
            f"owner 'other-user' needs real root: uid {entry.pw_uid} ({OTHER_USER}) is not mapped "
            "in this user namespace (e.g. under 'unshare -r'); run as root on the host, where "
            "--bindconform-isolate=netns keeps the real uids"
        )
    return int(entry.pw_uid), int(entry.pw_gid)


def other_user_problem() -> str | None:
    ids = other_user_ids()
    return ids if isinstance(ids, str) else None


def uid_mapped(uid: int, uid_map: str = "/proc/self/uid_map") -> bool:
    """Inside a user namespace only the uids in /proc/self/uid_map exist."""
    try:
        with open(uid_map) as fh:
            text = fh.read()
    except OSError:
        return True  # not Linux: no user namespaces
    for line in text.splitlines():
        inside, _, count = (int(x) for x in line.split())
        if inside <= uid < inside + count:
            return True
    return False


def open_sockets(keep: int) -> int | None:
    """How many sockets this process holds besides its channel `keep`: the reset between
    cells proves it holds none, whatever a server factory opened without telling."""
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            fds = [int(n) for n in os.listdir(listing)]
        except (OSError, ValueError):
            continue
        if keep in fds:  # a complete listing (FreeBSD's /dev/fd without fdescfs is not)
            return sum(1 for fd in fds if fd != keep and _is_socket(fd))
    return None


def _is_socket(fd: int) -> bool:
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return False  # the listing's own fd, closed by now


class Zygote:
    """Parent side: the small interpreter that forks helpers of one owner kind."""

    def __init__(self, owner: str, colocate: Colocate | None = None):
        ids = other_user_ids() if owner == "other-user" else None
        if isinstance(ids, str):
            raise PermissionError(ids)
        self.owner = owner
        self.colocate = colocate  # where the OS can: helpers follow the caller's CPU
        mine, theirs = socket.socketpair()
        command = [sys.executable, "-S", "-m", "pytest_bindconform.owner"]
        command += ["--zygote", str(theirs.fileno())]
        if ids is not None:
            command += ["--ids", f"{ids[0]}:{ids[1]}"]
        path = os.pathsep.join(p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)
        try:
            self.proc = subprocess.Popen(
                command,
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": path},
            )
        finally:
            theirs.close()
        self.sock = mine
        self.ready = False
        # sent now, answered when first needed: the interpreter starts meanwhile
        self.path = list(sys.path)
        self.sock.sendall(json.dumps({"op": "hello", "path": self.path}).encode() + b"\n")

    def _answer(self) -> tuple[dict[str, Any], list[int]]:
        data, fds = b"", list[int]()
        recv_fds: Any = getattr(socket, "recv_fds")  # noqa: B009 (POSIX only)
        while not data.endswith(b"\n"):
            chunk, got, _, _ = recv_fds(self.sock, 4096, 1)
            if not chunk:
                raise PermissionError(f"the {self.owner} zygote process exited")
            data, fds = data + chunk, fds + got
        return json.loads(data), fds

    def _ask(self, req: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        if not self.ready:
            hello, _ = self._answer()
            if hello.get("outcome") != "ok":
                raise PermissionError(f"{hello.get('error')}")
            self.ready = True
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        return self._answer()

    def start(self) -> ForkedHelper:
        """A fresh helper (the zygote keeps one forked ahead, so this is one round trip)."""
        req: dict[str, Any] = {"op": "fork"}
        if sys.path != self.path:  # a conftest added a path since: a factory may live there
            self.path = req["path"] = list(sys.path)
        answer, fds = self._ask(req)
        if answer.get("outcome") != "ok" or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise PermissionError(f"the {self.owner} zygote could not fork: {answer}")
        return ForkedHelper(self, int(answer["pid"]), socket.socket(fileno=fds[0]))

    def kill(self, pid: int) -> None:
        """SIGKILL a helper and wait until it is gone: its sockets are closed by then."""
        try:
            self._ask({"op": "kill", "pid": pid})
        except (OSError, ValueError):  # the zygote itself is gone: kill the helper directly
            with contextlib.suppress(OSError):
                os.kill(pid, getattr(signal, "SIGKILL"))  # noqa: B009 (POSIX only)

    def close(self) -> None:
        """EOF: the zygote reaps its helpers (which exit on their own EOF) and exits."""
        with contextlib.suppress(OSError):
            self.sock.close()
        try:
            self.proc.wait(timeout=2 * REAP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ForkedHelper:
    """Parent side of one helper: a JSON-lines channel, killed through its zygote."""

    def __init__(self, zygote: Zygote, pid: int, sock: socket.socket):
        self.zygote, self.pid, self.sock = zygote, pid, sock
        self.rfile: IO[str] = sock.makefile("r", encoding="utf-8", newline="\n")
        self.wfile: IO[str] = sock.makefile("w", encoding="utf-8", newline="\n")
        self.cpu: int | None = None  # the CPU it was moved to (follow())

    def follow(self) -> None:
        """Before a request: move the helper to the CPU the caller runs on (where the OS
        can). The caller blocks until the answer, so the two take turns on one CPU; on
        two CPUs each request and each answer wakes a CPU that went idle, which on a
        virtual machine costs a few hundred µs (docs/speed.md)."""
        if self.zygote.colocate is not None and self.pid:
            self.cpu = self.zygote.colocate(self.pid, self.cpu)

    def kill(self) -> None:
        """A crash: SIGKILL; the kernel closes the helper's sockets as for any dead process."""
        if self.pid:
            self.zygote.kill(self.pid)
        self.close()

    def close(self) -> None:
        """The helper closes its sockets on EOF and exits; its zygote reaps it."""
        for f in (self.wfile, self.rfile, self.sock):
            with contextlib.suppress(OSError):
                f.close()
        self.pid = 0


def owner_starter(owner: str) -> Starter:
    return Zygote(owner)


# -- the zygote's side ---------------------------------------------------------------
def run_zygote(
    fd: int, ids: tuple[int, int] | None, serve: Serve, prepare: Callable[[], None]
) -> None:
    """Take the parent's sys.path, `prepare` (imports), switch user once, then fork
    helpers until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; EOF ends us
    chan = socket.socket(fileno=fd)
    requests = chan.makefile("rb")
    hello = json.loads(requests.readline() or b"{}")
    sys.path[:0] = [p for p in hello.get("path", []) if p not in sys.path]
    prepare()
    try:
        if ids is not None:
            getattr(os, "setgroups")([])  # noqa: B009
            getattr(os, "setgid")(ids[1])  # noqa: B009
            getattr(os, "setuid")(ids[0])  # noqa: B009
    except OSError as exc:
        _reply(chan, {"outcome": "refused", "error": f"could not switch to uid {ids}: {exc}"})
        return
    _reply(chan, {"outcome": "ok", "uid": _geteuid()})
    children: set[int] = set()
    spare: tuple[int, socket.socket] | None = None
    try:
        for line in requests:
            req = json.loads(line)
            _reap(children, block=False)
            if req["op"] == "fork":
                if "path" in req:  # the spare was forked with the old one
                    sys.path[:] = req["path"]
                    if spare is not None:
                        _kill(spare[0])
                        spare[1].close()
                        children.discard(spare[0])
                        spare = None
                pid, theirs = spare or _fork(chan, serve)
                children.add(pid)
                _reply(chan, {"outcome": "ok", "pid": pid}, theirs.fileno())
                theirs.close()
                spare = _fork(chan, serve)  # forked while the parent runs its cell
                children.add(spare[0])
            elif req["op"] == "kill" and int(req["pid"]) in children:
                _kill(int(req["pid"]))
                children.discard(int(req["pid"]))
                _reply(chan, {"outcome": "ok"})
            else:
                _reply(chan, {"outcome": "refused", "error": f"unknown request {req}"})
    finally:
        if spare is not None:
            spare[1].close()
        _reap(children, block=True)


def _kill(pid: int) -> None:
    """SIGKILL and reap: when this returns, the kernel has closed the helper's sockets."""
    with contextlib.suppress(OSError):
        os.kill(pid, getattr(signal, "SIGKILL"))  # noqa: B009 (POSIX only)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _reply(chan: socket.socket, answer: dict[str, Any], fd: int | None = None) -> None:
    data = json.dumps(answer).encode() + b"\n"
    if fd is None:
        chan.sendall(data)
    else:
        getattr(socket, "send_fds")(chan, [data], [fd])  # noqa: B009 (POSIX only)


def _fork(chan: socket.socket, serve: Serve) -> tuple[int, socket.socket]:
    """A helper serving on one end of a new socketpair; the zygote keeps the other."""
    ours, theirs = socket.socketpair()
    fork: Callable[[], int] = getattr(os, "fork")  # noqa: B009 (absent on Windows)
    pid = fork()
    if pid == 0:  # the helper
        code = 0
        try:
            os.close(chan.fileno())
            theirs.close()
            rfile = ours.makefile("r", encoding="utf-8", newline="\n")
            wfile = ours.makefile("w", encoding="utf-8", newline="\n")
            serve(rfile, wfile, ours.fileno())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    ours.close()
    return pid, theirs


def _reap(children: set[int], block: bool) -> None:
    """Collect helpers that exited; with `block`, wait for all (killing the stuck ones)."""
    deadline = time.monotonic() + REAP_SECONDS
    while children:
        for pid in list(children):
            try:
                done, _ = os.waitpid(pid, getattr(os, "WNOHANG"))  # noqa: B009 (POSIX only)
            except ChildProcessError:
                done = pid
            if done:
                children.discard(pid)
        if not block:
            return
        if children and time.monotonic() > deadline:
            for pid in children:
                with contextlib.suppress(OSError):
                    os.kill(pid, getattr(signal, "SIGKILL"))  # noqa: B009
            deadline = float("inf")
        select.select([], [], [], 0.01)
