"""Sockets held by another process, optionally running as another user.

Some rules depend on who owns a socket (Windows table D; Linux SO_REUSEPORT
never shares across effective uids). The child serves ops.Executor requests as
JSON lines over pipes and is always reaped. On POSIX the child is forked, so a
different user needs no permission to execute this interpreter; on Windows it
is a fresh interpreter of the same user (a second account is not available).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import warnings
from typing import IO, Any

from .ops import Executor

OTHER_USER = "nobody"


class OwnerUnavailable(Exception):
    """This run cannot hold a socket as that owner; the message says how to enable it."""


def other_user_ids() -> tuple[int, int]:
    """uid/gid of the unprivileged account used for 'other-user' sockets."""
    if sys.platform == "win32":
        raise OwnerUnavailable(
            "owner 'other-user' needs a second account; Windows runs cannot switch users "
            "(run such cells on POSIX as root)"
        )
    if os.geteuid() != 0:
        raise OwnerUnavailable(
            "owner 'other-user' needs root to run a child process as another user; rerun as root"
        )
    import pwd

    try:
        entry = pwd.getpwnam(OTHER_USER)
    except KeyError:
        raise OwnerUnavailable(f"owner 'other-user' needs the account {OTHER_USER!r}") from None
    if not _uid_mapped(entry.pw_uid):
        raise OwnerUnavailable(
            f"owner 'other-user' needs real root: uid {entry.pw_uid} ({OTHER_USER}) is not mapped "
            "in this user namespace (e.g. under 'unshare -r'); run as root on the host, where "
            "--bindconform-isolate=netns keeps the real uids"
        )
    return entry.pw_uid, entry.pw_gid


def _uid_mapped(uid: int) -> bool:
    """Inside a user namespace only the uids in /proc/self/uid_map exist."""
    try:
        with open("/proc/self/uid_map") as fh:
            text = fh.read()
    except OSError:
        return True  # not Linux: no user namespaces
    for line in text.splitlines():
        inside, _, count = (int(x) for x in line.split())
        if inside <= uid < inside + count:
            return True
    return False


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
        self.pid = 0
        self.proc: subprocess.Popen[str] | None = None
        if sys.platform != "win32":
            self._fork(other_user_ids() if owner == "other-user" else None)
        else:
            if owner == "other-user":
                other_user_ids()  # raises with the reason
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pytest_bindconform.owner"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.proc.stdin and self.proc.stdout
            self.wfile, self.rfile = self.proc.stdin, self.proc.stdout
        answer = self.do({"op": "hello", "socket": "-"})
        if answer.get("outcome") == "refused":
            self.close()
            raise OwnerUnavailable(f"could not start a child as {owner}: {answer.get('error')}")

    def _fork(self, ids: tuple[int, int] | None) -> None:
        if sys.platform != "win32":  # Windows has no fork(); __init__ uses a subprocess
            to_child_r, to_child_w = os.pipe()
            to_parent_r, to_parent_w = os.pipe()
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore", DeprecationWarning
                )  # fork with threads: child only serves
                pid = os.fork()
            if pid == 0:  # child
                code = 0
                try:
                    os.close(to_child_w)
                    os.close(to_parent_r)
                    rfile = os.fdopen(to_child_r, "r")
                    wfile = os.fdopen(to_parent_w, "w")
                    hello = rfile.readline()
                    del hello
                    try:
                        if ids is not None:
                            os.setgroups([])
                            os.setgid(ids[1])
                            os.setuid(ids[0])
                        wfile.write(json.dumps({"outcome": "ok", "uid": os.geteuid()}) + "\n")
                    except OSError as exc:
                        wfile.write(json.dumps({"outcome": "refused", "error": str(exc)}) + "\n")
                        raise
                    wfile.flush()
                    serve(rfile, wfile)
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)
            os.close(to_child_r)
            os.close(to_parent_w)
            self.pid = pid
            self.wfile = os.fdopen(to_child_w, "w")
            self.rfile = os.fdopen(to_parent_r, "r")

    def do(self, req: dict[str, Any]) -> dict[str, Any]:
        self.wfile.write(json.dumps(req) + "\n")
        self.wfile.flush()
        line = self.rfile.readline()
        if not line:
            raise OwnerUnavailable(f"the {self.owner} child process died")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def kill(self) -> None:
        """Crash the child (SIGKILL): its sockets die with it, as in a real crash."""
        if self.pid and sys.platform != "win32":  # POSIX: a forked child
            import signal

            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
        elif self.proc is not None:
            self.proc.kill()
        self.close()

    def close(self) -> None:
        """Close the pipes (the child closes its sockets on EOF) and reap it."""
        with contextlib.suppress(OSError):
            self.wfile.close()
        with contextlib.suppress(OSError):
            self.rfile.close()
        if self.pid:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = 0
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _main() -> None:  # Windows child (and a manual debugging aid)
    first = sys.stdin.readline()
    del first
    sys.stdout.write(json.dumps({"outcome": "ok"}) + "\n")
    sys.stdout.flush()
    serve(sys.stdin, sys.stdout)


if __name__ == "__main__":
    _main()
