"""What Linux, macOS and FreeBSD share: fork, setuid, root, the POSIX linger struct."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import warnings
from collections.abc import Callable
from typing import IO, Any

OTHER_USER = "nobody"
Serve = Callable[[IO[str], IO[str]], None]


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


class ForkedOwner:
    """A forked child serving requests over two pipes; a different user needs no
    permission to execute this interpreter, since nothing is executed."""

    def __init__(self, owner: str, serve: Serve):
        ids = other_user_ids() if owner == "other-user" else None
        if isinstance(ids, str):
            raise PermissionError(ids)
        fork: Callable[[], int] = getattr(os, "fork")  # noqa: B009 (absent on Windows)
        to_child_r, to_child_w = os.pipe()
        to_parent_r, to_parent_w = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: child serves
            pid = fork()
        if pid == 0:  # child
            code = 0
            try:
                os.close(to_child_w)
                os.close(to_parent_r)
                _child(os.fdopen(to_child_r, "r"), os.fdopen(to_parent_w, "w"), ids, serve)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(to_child_r)
        os.close(to_parent_w)
        self.pid = pid
        self.wfile: IO[str] = os.fdopen(to_child_w, "w")
        self.rfile: IO[str] = os.fdopen(to_parent_r, "r")

    def kill(self) -> None:
        """A crash: SIGKILL; the kernel closes the child's sockets as for any dead process."""
        if self.pid:
            with contextlib.suppress(OSError):
                os.kill(self.pid, getattr(signal, "SIGKILL"))  # noqa: B009 (POSIX only)
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.wfile.close()
        with contextlib.suppress(OSError):
            self.rfile.close()
        if self.pid:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = 0


def _child(rfile: IO[str], wfile: IO[str], ids: tuple[int, int] | None, serve: Serve) -> None:
    rfile.readline()  # the parent's hello
    try:
        if ids is not None:
            getattr(os, "setgroups")([])  # noqa: B009
            getattr(os, "setgid")(ids[1])  # noqa: B009
            getattr(os, "setuid")(ids[0])  # noqa: B009
        wfile.write(json.dumps({"outcome": "ok", "uid": _geteuid()}) + "\n")
    except OSError as exc:
        wfile.write(json.dumps({"outcome": "refused", "error": str(exc)}) + "\n")
        raise
    wfile.flush()
    serve(rfile, wfile)


def spawn_owner(owner: str, serve: Serve) -> ForkedOwner:
    return ForkedOwner(owner, serve)
