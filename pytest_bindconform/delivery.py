"""Who receives traffic sent to a shared port, told apart from anyone else's traffic.

A process that holds no port is invisible to every free-port proof, yet what it
sends lands on the cell's sockets. So each probe carries a fresh nonce in every
datagram and in every connection's first bytes, each arrival is checked against
the local address and port of the probe client that sent it, and anything else
is interference, never a receiver. The traffic never leaves the host: the
target is proved local first, a v4-mapped target is reached by an IPv4 client
(an IPv6 client would depend on IPV6_V6ONLY, which defaults to 1 on Windows and
FreeBSD), and multicast is pinned to loopback with a TTL / hop limit of 0.
A probe that could not send all it planned is a probe failure, never a receiver.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from collections.abc import Mapping
from typing import Any, Protocol

from . import locality
from .ops import FAMILIES, RST_LINGER, TIMEOUT, TYPES, normalise
from .ports import Interference
from .spread import fairness

MAGIC = "bindconform"
DELIVERY_WAIT = 0.25  # loopback delivers synchronously; this only bounds a slow host
BATCH = 16  # connections in flight at once: within every OS's listen(16) backlog


class Receiver(Protocol):
    def do(self, req: dict[str, Any]) -> dict[str, Any]: ...


def loopback_index() -> int:
    """The loopback interface's index, for IPV6_MULTICAST_IF (Windows: always 1)."""
    for name in ("lo", "lo0"):
        with contextlib.suppress(OSError):
            return socket.if_nametoindex(name)
    return 1


def pin_multicast(sock: socket.socket, family: str) -> None:
    """Multicast from this socket goes out on loopback only and no router forwards it."""
    if family == "inet":
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, loopback_index())
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 0)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)


class Probe:
    """One delivery probe: clients, their nonce-stamped traffic, and what arrived where."""

    def __init__(
        self,
        kind: str,
        target: str,
        port: int,
        receivers: Mapping[str, Receiver],
        planned: int,
        own: set[tuple[str, int]],
    ):
        self.kind, self.target, self.port, self.planned = kind, target, port, planned
        self.receivers = receivers
        self.own = own  # the cell's own connected sockets: their traffic is not a probe's
        self.nonce = secrets.token_hex(8)
        self.clients: dict[tuple[str, int], int] = {}  # local endpoint -> probe index
        self.received = dict.fromkeys(receivers, 0)
        self.arrived: set[tuple[str, int]] = set()  # (receiver, index): each counts once
        self.foreign: list[str] = []
        self.failure = ""
        self.address = locality.endpoint(target, 0)[0]
        self.family = "inet6" if ":" in self.address else "inet"
        self.multicast = locality.is_multicast(target)

    def payload(self, index: int) -> bytes:
        return f"{MAGIC} {self.nonce} {index}\n".encode()

    def run(self) -> dict[str, Any]:
        why = locality.not_local(self.target)
        if why:
            self.failure = f"nothing sent: {why}"
        sent = 0
        while not self.failure and sent < self.planned:
            batch = self._send_batch(sent, min(BATCH, self.planned - sent))
            sent += batch
            self._collect(sent)
        if self.foreign:
            raise Interference(
                "traffic from outside this cell reached its sockets during the delivery "
                f"probe: {'; '.join(self.foreign[:3])}"
                + (f" (and {len(self.foreign) - 3} more)" if len(self.foreign) > 3 else "")
                + ", so who receives is not known; no verdict is given"
            )
        total = sum(self.received.values())
        # every connection is accepted by someone; a unicast datagram reaches one socket
        # or none (no socket matches); so a part missing went to a socket not in the cell
        lost = total < sent if self.kind == "stream" else not self.multicast and 0 < total < sent
        if lost:
            raise Interference(
                f"only {total} of the {sent} probe {self._what()} sent to {self.target} port "
                f"{self.port} reached the cell's sockets: the rest went to a socket outside the "
                "cell (another process sharing the port), so no verdict is given"
            )
        got = [n for n, count in self.received.items() if count]
        receiver = {0: "none", 1: got[0] if got else "", 2: "both"}.get(len(got), "shared")
        out: dict[str, Any] = {
            "target": self.target,
            "planned": self.planned,
            "sent": sent,
            "received": self.received,
            "receiver": None if self.failure else receiver,
        }
        index = fairness(list(self.received.values()))
        if index is not None:
            out["fairness"] = index  # the distribution in one figure, beside the counts
        if self.failure:
            out["failure"] = self.failure
        return out

    def _what(self) -> str:
        return "connections" if self.kind == "stream" else "datagrams"

    def _send_batch(self, first: int, count: int) -> int:
        """Open, aim and fire `count` clients; stop at the first failure (its reason kept)."""
        opened: list[socket.socket] = []
        try:
            for index in range(first, first + count):
                s = socket.socket(FAMILIES[self.family], TYPES[self.kind])
                opened.append(s)
                try:
                    if self.multicast:
                        pin_multicast(s, self.family)
                    s.settimeout(TIMEOUT)
                    s.connect((self.address, self.port))
                    here = s.getsockname()
                    self.clients[locality.endpoint(here[0], here[1])] = index
                    s.sendall(self.payload(index))
                except OSError as exc:
                    outcome, code, name = normalise(exc)
                    self.failure = (
                        f"probe client {index} could not send to {self.address} port {self.port}"
                        f" ({self.family}/{self.kind}): {name or outcome} (errno {code}); "
                        f"{index} of {self.planned} planned were sent"
                    )
                    return index - first
            return count
        finally:
            for s in opened:  # an RST: probe clients leave no TIME_WAIT on the case's port
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST_LINGER)
                s.close()

    def _collect(self, sent: int) -> None:
        """Poll every receiver until all that was sent arrived (or a short deadline passed)."""
        copies = len(self.receivers) if self.multicast else 1
        # the cell's own connections may send nothing: their first bytes are not awaited
        own = sorted(self.own)
        deadline = time.monotonic() + DELIVERY_WAIT
        while True:
            for name, where in self.receivers.items():
                answer = where.do(
                    {"socket": name, "op": "drain", "wait": 0, "seen": True, "own": own}
                )
                for host, port, data in answer.get("seen", ()):
                    self._check(name, host, port, bytes.fromhex(data))
            if sum(self.received.values()) >= sent * copies or time.monotonic() > deadline:
                return
            time.sleep(0.001)

    def _check(self, receiver: str, host: str, port: int, data: bytes) -> None:
        """Count an arrival as the probe's only if its sender and nonce are the probe's."""
        peer = locality.endpoint(host, port)
        index = self.clients.get(peer)
        if (
            index is not None
            and data == self.payload(index)
            and (receiver, index) not in (self.arrived)
        ):
            self.arrived.add((receiver, index))
            self.received[receiver] += 1
            return
        if peer in self.own and data in (b"", MAGIC.encode()):
            return  # the cell's own traffic (a 'send' step, a connect to itself)
        what = "a connection" if self.kind == "stream" else "a datagram"
        first = data[:24].decode("ascii", "backslashreplace")
        self.foreign.append(
            f"{receiver} received {what} from {peer[0]} port {peer[1]} that no probe client "
            f"sent (first bytes {first!r})"
        )
