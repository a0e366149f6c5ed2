"""Socket operations by name, so the same code runs here or in a child process.

A request is a dict of builtins ({"op": "bind", "socket": "a", ...}) and the
answer is a step record; that keeps the child-process owner (owner.py) a thin
pipe around this module. Every blocking call has a timeout: a timed-out call is
the outcome TIMEOUT, never a hang.
"""

from __future__ import annotations

import errno
import select
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from . import locality, platforms

FAMILIES = {"inet": socket.AF_INET, "inet6": getattr(socket, "AF_INET6", -1)}
TYPES = {"stream": socket.SOCK_STREAM, "dgram": socket.SOCK_DGRAM}
TIMEOUT = 2.0  # seconds; loopback answers in microseconds, so this only bounds a hang
# (a connect's limit also outlasts the OS's own refusal time: platforms.*.connect_limit)

# errno names (POSIX) and their Winsock twins, folded into the case vocabulary.
_NORMALISED = {
    "INUSE": ("EADDRINUSE", "WSAEADDRINUSE"),
    "ACCESS": ("EACCES", "WSAEACCES", "EPERM"),
    "ADDRNOTAVAIL": ("EADDRNOTAVAIL", "WSAEADDRNOTAVAIL"),
    "INVAL": ("EINVAL", "WSAEINVAL"),
    "NOTSUP": ("ENOPROTOOPT", "WSAENOPROTOOPT", "EOPNOTSUPP", "WSAEOPNOTSUPP", "ENOTSUP"),
    "REFUSED": ("ECONNREFUSED", "WSAECONNREFUSED"),
    "TIMEOUT": ("ETIMEDOUT", "WSAETIMEDOUT"),
    "RESET": ("ECONNRESET", "WSAECONNRESET"),
}
_WINSOCK_CODES = {
    10048: "WSAEADDRINUSE",
    10013: "WSAEACCES",
    10049: "WSAEADDRNOTAVAIL",
    10022: "WSAEINVAL",
    10042: "WSAENOPROTOOPT",
    10045: "WSAEOPNOTSUPP",
    10061: "WSAECONNREFUSED",
    10060: "WSAETIMEDOUT",
    10054: "WSAECONNRESET",
}
OTHER = "OTHER"
# SO_LINGER on, 0 s: close() sends an RST and leaves no TIME_WAIT (the struct differs per OS)
RST_LINGER = platforms.current.rst_linger()


# Groups a 'join' step joins, on the loopback interface only (the delivery probe pins its
# senders to loopback with TTL 0: delivery.pin_multicast).
GROUPS = {"inet": "239.255.66.77", "inet6": "ff01::6677"}  # site-local / interface-local


def error_name(code: int) -> str:
    return _WINSOCK_CODES.get(code) or errno.errorcode.get(code, f"errno {code}")


def normalise(exc: OSError) -> tuple[str, int, str]:
    """(outcome, errno, raw name) of a failed call."""
    if isinstance(exc, TimeoutError) and not exc.errno:
        return "TIMEOUT", 0, "timed out"
    code = getattr(exc, "winerror", None) or exc.errno or 0
    name = error_name(code)
    for outcome, names in _NORMALISED.items():
        if name in names:
            return outcome, code, name
    return OTHER, code, name


def record(
    sock: str, call: str, outcome: str = "ok", code: int = 0, name: str = ""
) -> dict[str, Any]:
    return {"socket": sock, "call": call, "outcome": outcome, "errno": code, "error": name}


def batch(do: Callable[[dict[str, Any]], dict[str, Any]], req: dict[str, Any]) -> dict[str, Any]:
    """{"op": "batch", "requests": [...]}: the requests in order, up to the first that
    fails. A socket's creation, its options and its first call cost a child-process owner
    one round trip instead of one each."""
    answers: list[dict[str, Any]] = []
    for one in req["requests"]:
        answers.append(do(one))
        if answers[-1]["outcome"] != "ok":
            break
    return {"outcome": "ok", "answers": answers}


class Executor:
    """Owns named sockets and performs requests on them."""

    def __init__(self) -> None:
        self.socks: dict[str, socket.socket] = {}

    def do(self, req: dict[str, Any]) -> dict[str, Any]:
        if req["op"] == "batch":
            return batch(self.do, req)
        name, op = req["socket"], req["op"]
        call = req.get("call", op)
        self.limit: dict[str, Any] = {}
        try:
            extra = getattr(self, f"_{op}")(name, req)
        except OSError as exc:
            return {**record(name, call, *normalise(exc)), **self.limit}
        out = {**record(name, call), **self.limit}
        if extra:
            out.update(extra)
        return out

    def close_all(self) -> None:
        for s in self.socks.values():
            s.close()
        self.socks.clear()

    def _wait(self, req: dict[str, Any]) -> float:
        """accept/recv wait for this host's own loopback traffic: no OS retry is involved."""
        seconds = float(req.get("timeout", TIMEOUT))
        self.limit = {"timeout": seconds, "timeout_basis": "probe limit (local traffic only)"}
        return seconds

    # -- operations ---------------------------------------------------------
    def _socket(self, name: str, req: dict[str, Any]) -> None:
        self.socks[name] = socket.socket(FAMILIES[req["family"]], TYPES[req["type"]])

    def _setsockopt(self, name: str, req: dict[str, Any]) -> None:
        option = req["option"]
        if option == "SO_LINGER0":
            self.socks[name].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST_LINGER)
        elif option == "IPV6_V6ONLY":
            self.socks[name].setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(req["value"]))
        else:
            self.socks[name].setsockopt(socket.SOL_SOCKET, getattr(socket, option), 1)

    def _make(self, name: str, req: dict[str, Any]) -> dict[str, Any]:
        """A goal candidate's factory makes and binds the socket, in the process that owns
        it; what it set is read back. A broken factory is a problem, never a crash here."""
        from .candidates import FactoryProblem, make, read_options  # only goal suites need it

        try:
            made = make(req["factory"], req["family"], req["type"], req["address"], req["port"])
        except FactoryProblem as exc:
            return {"problem": str(exc)}
        self.socks[name] = made
        return {"set": read_options(made), "address": made.getsockname()[0]}

    def _bind(self, name: str, req: dict[str, Any]) -> dict[str, Any] | None:
        if "until" in req:
            return self._bind_until_free(name, req)
        self.socks[name].bind((req["address"], req["port"]))
        return None

    def _bind_until_free(self, name: str, req: dict[str, Any]) -> dict[str, Any]:
        """Retry a bind refused with EADDRINUSE until it succeeds or the ceiling passes (a
        failed bind leaves the socket unbound, so the same socket tries again)."""
        ceiling, interval = float(req["until"]), float(req.get("interval", 0.25))
        self.limit = {"timeout": ceiling, "timeout_basis": "ceiling of a bind ... until-free"}
        start = time.monotonic()
        tries = 0
        while True:
            tries += 1
            try:
                self.socks[name].bind((req["address"], req["port"]))
            except OSError as exc:
                spent = time.monotonic() - start
                if normalise(exc)[0] != "INUSE":
                    self.limit.update(waited=round(spent, 3), tries=tries)
                    raise
                if spent >= ceiling:  # TIMEOUT: no answer within the ceiling, not a verdict
                    still = normalise(exc)[2]
                    self.limit.update(waited=round(spent, 3), tries=tries, still=still)
                    raise TimeoutError(f"still {still} after {spent:.1f} s") from None
                time.sleep(min(interval, max(ceiling - spent, 0.0)))
                continue
            return {"waited": round(time.monotonic() - start, 3), "tries": tries}

    def _listen(self, name: str, req: dict[str, Any]) -> None:
        self.socks[name].listen(16)

    def _connect(self, name: str, req: dict[str, Any]) -> None:
        s = self.socks[name]
        shortened = s.type == socket.SOCK_STREAM and platforms.current.prepare_connect(s)
        seconds, basis = platforms.current.connect_limit(req.get("timeout", TIMEOUT), shortened)
        self.limit = {"timeout": seconds, "timeout_basis": basis}
        s.settimeout(seconds)
        try:
            s.connect((req["address"], req["port"]))
        finally:
            s.settimeout(None)

    def _accept(self, name: str, req: dict[str, Any]) -> dict[str, Any]:
        s = self.socks[name]
        ready, _, _ = select.select([s], [], [], self._wait(req))
        if not ready:
            raise TimeoutError("accept timed out")
        conn, peer = s.accept()
        self.socks[req["into"]] = conn
        return {"peer": list(peer[:2])}  # the probe checks it is one of its own sockets

    def _send(self, name: str, req: dict[str, Any]) -> None:
        self.socks[name].send(b"bindconform")

    def _recv(self, name: str, req: dict[str, Any]) -> dict[str, Any]:
        s = self.socks[name]
        ready, _, _ = select.select([s], [], [], self._wait(req))
        if not ready:
            raise TimeoutError("recv timed out")
        return {"bytes": len(s.recv(65536))}

    def _shutdown(self, name: str, req: dict[str, Any]) -> None:
        self.socks[name].shutdown(socket.SHUT_WR)

    def _close(self, name: str, req: dict[str, Any]) -> None:
        self.socks.pop(name).close()

    def _drain(self, name: str, req: dict[str, Any]) -> dict[str, Any]:
        """Count what arrived for this socket (connections or datagrams), without blocking long.

        With "seen", also say who sent each and its first bytes (a connection's are read
        for up to "read" seconds), so the delivery probe can tell its own traffic from
        anyone else's. A connection from an "own" endpoint (the cell's own connects, which
        may send nothing) is read without waiting."""
        s = self.socks[name]
        own = {(host, int(port)) for host, port in req.get("own", ())}
        count = 0
        seen: list[list[Any]] = []
        wait = float(req.get("wait", 0.05))
        # socket.accept() makes each connection's socket from the listener's family and type,
        # each converted to an enum per call: a delivery probe accepts 16 in a row
        stream = s.type == socket.SOCK_STREAM
        family, kind, proto = int(s.family), int(s.type), s.proto
        blocking = socket.getdefaulttimeout() is None and bool(s.gettimeout())  # as accept()
        while True:
            ready, _, _ = select.select([s], [], [], wait)
            if not ready:
                break
            wait = 0.0
            if stream:
                fd, peer = s._accept()  # type: ignore[attr-defined]  # what accept() calls
                conn = socket.socket(family, kind, proto, fileno=fd)
                if blocking:
                    conn.setblocking(True)
                data = b""
                read = 0.0 if locality.endpoint(peer[0], peer[1]) in own else req.get("read", 0.25)
                if req.get("seen") and select.select([conn], [], [], read)[0]:
                    data = conn.recv(256)
                # RST instead of FIN: no TIME_WAIT entry is left on the case's port
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST_LINGER)
                conn.close()
            else:
                data, peer = s.recvfrom(65536)
            count += 1
            if req.get("seen"):
                seen.append([peer[0], peer[1], data[:256].hex()])
        return {"count": count, "seen": seen} if req.get("seen") else {"count": count}

    def _join(self, name: str, req: dict[str, Any]) -> None:
        """Join this socket's family's group on the loopback interface."""
        from .delivery import loopback_index  # delivery imports this module

        s = self.socks[name]
        group = GROUPS["inet6" if s.family == FAMILIES["inet6"] else "inet"]
        if s.family == FAMILIES["inet6"]:
            mreq6 = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", loopback_index())
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq6)
        else:
            mreq = socket.inet_aton(group) + socket.inet_aton("127.0.0.1")
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)

    def _rebind(self, name: str, req: dict[str, Any]) -> dict[str, Any]:
        """Close the socket, then `tries` times: a fresh one like it (the options in req)
        binds its address to port 0 and is closed again. How often did the port just
        closed come straight back?"""
        old = self.socks.pop(name)
        last = old.getsockname()[1]
        old.close()
        ports: list[int] = []
        for _ in range(int(req["tries"])):  # bounded: REBINDS in model.py
            fresh = socket.socket(FAMILIES[req["family"]], TYPES[req["type"]])
            try:
                self.socks[name] = fresh
                for option in req.get("options", []):
                    self._setsockopt(name, option)
                fresh.bind((req["address"], 0))
                ports.append(fresh.getsockname()[1])
            finally:
                self.socks.pop(name, None)
                fresh.close()
        back = sum(1 for before, now in zip([last, *ports], ports, strict=False) if before == now)
        return {"tries": len(ports), "came_back": back, "ports": ports}

    def _sockname(self, name: str, req: dict[str, Any]) -> dict[str, Any]:
        address = self.socks[name].getsockname()
        return {"address": address[0], "port": address[1]}
