"""A loopback TCP control channel to a socket-owning child, guarded by a random token.

Pipes do not cross logon sessions reliably (a child started as another account
with CreateProcessWithLogonW gets no inherited handles), so such a child
connects back to 127.0.0.1 and proves it is the one started, with a token it
received in its environment, before it is sent a single request.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import socket
import time
from typing import IO

TOKEN_ENV = "BINDCONFORM_OWNER_TOKEN"
ACCEPT_SECONDS = 30.0  # a fresh interpreter under a new logon takes a few seconds to start


class ControlError(Exception):
    pass


class Listener:
    """Parent side: listen on an ephemeral loopback port for the one child that knows the token."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.conn: socket.socket | None = None

    def accept(self, limit: float = ACCEPT_SECONDS) -> tuple[IO[str], IO[str]]:
        """(rfile, wfile) of the child that sent the right token; others are dropped."""
        deadline = time.monotonic() + limit
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                break
            conn.settimeout(max(0.1, deadline - time.monotonic()))
            rfile = conn.makefile("r", encoding="utf-8", newline="\n")
            try:
                line = rfile.readline().strip()
            except (OSError, UnicodeDecodeError):
                line = ""
            if hmac.compare_digest(line.encode(), self.token.encode()):
                conn.settimeout(None)
                self.conn = conn
                return rfile, conn.makefile("w", encoding="utf-8", newline="\n")
            rfile.close()
            conn.close()
        raise ControlError(
            f"no child process connected to {self.address} with the token within {limit:g} s"
        )

    def close(self) -> None:
        for s in (self.conn, self.sock):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()


def connect(address: str, token: str) -> tuple[IO[str], IO[str]]:
    """Child side: connect back and present the token."""
    host, _, port = address.rpartition(":")
    conn = socket.create_connection((host, int(port)), timeout=ACCEPT_SECONDS)
    conn.settimeout(None)
    wfile = conn.makefile("w", encoding="utf-8", newline="\n")
    wfile.write(token + "\n")
    wfile.flush()
    return conn.makefile("r", encoding="utf-8", newline="\n"), wfile
