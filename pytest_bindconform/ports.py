"""Ports no other process or xdist worker can confound.

Each worker owns a disjoint slice of a range kept outside the OS's ephemeral
ports, so neither a sibling worker nor an outgoing connection elsewhere gets
one. Another process can still hold, take, share or send to a port; so a cell
runs only on a port proven free (exclusive binds, see held()) once its socket
owners are ready, just before its first bind. Its first bind then can only
conflict with someone else's socket: that is interference, and the cell runs
again on the next port. A later conflict, a delivery or a connection is
trusted only if the port is proven free again once the cell's sockets are
closed, so a foreign socket would have had to come and go within the cell's
own few hundred microseconds. (Cells that make TCP connections leave TIME_WAIT
entries of their own, so for them the proof after is left out; the peer of
every accepted connection is checked instead.)

A socket may also have a port of its own (case format 'port:'). A 'privileged' one comes
from this worker's slice of PRIVILEGED_RANGE and is proven free like the cell's port; a
port the kernel picked ('port: 0') was free by the kernel's own rules when it was handed
out, and is proved free again after a cell that met a conflict (runner._observe).
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Iterable

from . import platforms
from .host import Host
from .ops import FAMILIES, TYPES, normalise
from .plan import WILDCARD

DEFAULT_RANGE = (20000, 29999)
# ports a 'port: privileged' socket is given: below 1024 everywhere that has the rule,
# above the well-known services most hosts run (22, 25, 53, 80, 443...)
PRIVILEGED_RANGE = (600, 1023)


class Interference(Exception):
    """Something outside this run touched the port; no verdict can be given."""


def parse_range(text: str) -> tuple[int, int]:
    lo_text, sep, hi_text = text.partition("-")
    try:
        lo, hi = int(lo_text), int(hi_text)
    except ValueError:
        raise ValueError(f"bad port range {text!r}: expected LOW-HIGH, e.g. 20000-29999") from None
    if not sep or not 1 <= lo < hi <= 65535:
        raise ValueError(
            f"bad port range {text!r}: expected LOW-HIGH with 1 <= LOW < HIGH <= 65535"
        )
    return lo, hi


def ephemeral_range(host: Host) -> tuple[int, int]:
    """What the host reported, else its OS's default (platforms/<os>.py)."""
    return host.ephemeral_ports or platforms.for_os(host.os).EPHEMERAL_DEFAULT


def default_range(host: Host) -> tuple[int, int]:
    lo, hi = DEFAULT_RANGE
    eph_lo, eph_hi = ephemeral_range(host)
    if hi < eph_lo or lo > eph_hi:
        return lo, hi
    top = eph_lo - 1
    return max(1024, top - 9999), top


def worker_slice(lo: int, hi: int, index: int, count: int) -> range:
    size = (hi - lo + 1) // max(count, 1)
    if size < 1:
        raise ValueError(f"port range {lo}-{hi} is too small for {count} workers")
    start = lo + index * size
    return range(start, start + size)


ALL_KINDS = (("inet", "stream"), ("inet", "dgram"), ("inet6", "stream"), ("inet6", "dgram"))


def held(port: int, host: Host, kinds: Iterable[tuple[str, str]] = ALL_KINDS) -> str:
    """'' when an exclusive wildcard bind per (family, type) succeeds, which it does only on
    a port no socket of that kind uses (TIME_WAIT entries included); else what failed.

    On Linux and the BSDs a bind without options conflicts with every socket of its kind
    on the port; an IPv6-only wildcard meets every IPv6 address. Windows lets a plain
    wildcard bind succeed next to a specific one, so there SO_EXCLUSIVEADDRUSE is set:
    it refuses to share with anything."""
    return proof(port, host, kinds)[1]


def proof(port: int, host: Host, kinds: Iterable[tuple[str, str]] = ALL_KINDS) -> tuple[str, str]:
    """held()'s answer with the outcome of the bind that failed ('' when free): ACCESS
    means this run may not bind the port at all (a privileged port, an unprivileged run),
    so nothing is proved either way."""
    opened: list[socket.socket] = []
    try:
        for family, kind in kinds:
            if family == "inet6" and not host.ipv6:
                continue
            s = socket.socket(FAMILIES[family], TYPES[kind])
            opened.append(s)
            if family == "inet6":
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if sys.platform == "win32":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
            try:
                s.bind((WILDCARD[family], port))
            except OSError as exc:
                outcome, _, name = normalise(exc)
                return (
                    outcome,
                    f"an exclusive {family}/{kind} bind of port {port} failed with {name}",
                )
        return "", ""
    finally:
        for s in opened:
            with contextlib.suppress(OSError):
                s.close()


def is_free(port: int, host: Host, kinds: Iterable[tuple[str, str]] = ALL_KINDS) -> bool:
    return not held(port, host, kinds)


class PortAllocator:
    def __init__(self, host: Host, ports: range, privileged: range | None = None):
        self.host = host
        self.ports = ports
        self._next = 0
        self.skipped = 0  # ports passed over because something held them
        # this worker's slice of PRIVILEGED_RANGE, for 'port: privileged' sockets
        self.privileged = privileged or range(PRIVILEGED_RANGE[0], PRIVILEGED_RANGE[1] + 1)
        self._next_privileged = 0

    def take_privileged(self, kinds: Iterable[tuple[str, str]] = ALL_KINDS) -> tuple[int, bool]:
        """The next port below 1024 of this worker's slice, and whether it is proven free:
        an unprivileged run cannot bind it to prove it (the proof meets ACCESS), and then
        the port is handed out unproven: the kernels here refuse such a bind for want of
        privilege before they look for other sockets on the port, so an ACCESS is still
        the rule's answer, while any other conflict there is reported as interference."""
        kinds = tuple(kinds)
        for _ in range(len(self.privileged)):
            port = self.privileged[self._next_privileged % len(self.privileged)]
            self._next_privileged += 1
            outcome, _ = proof(port, self.host, kinds)
            if not outcome:
                return port, True
            if outcome == "ACCESS":
                return port, False
            self.skipped += 1
        raise Interference(
            f"no free port in {self.privileged.start}-{self.privileged.stop - 1} (below 1024): "
            "every one is held by another process (a service of this host), so no verdict "
            "is given"
        )

    def take(self, prove: bool = False, kinds: Iterable[tuple[str, str]] = ALL_KINDS) -> int:
        """The next port of this worker's slice (proven free right now if asked)."""
        for _ in range(len(self.ports)):
            port = self.ports[self._next % len(self.ports)]
            self._next += 1
            if self.host.excluded(port):
                continue
            if not prove or is_free(port, self.host, kinds):
                return port
            self.skipped += 1
        raise Interference(
            f"no free port in {self.ports.start}-{self.ports.stop - 1}: every port of this "
            "worker's slice is held by another process, so no verdict is given; choose "
            "another range with --bindconform-ports"
        )

    def free(self, port: int, kinds: Iterable[tuple[str, str]] = ALL_KINDS) -> bool:
        """Only the kinds of socket a cell used can have confounded it: check just those."""
        return is_free(port, self.host, kinds)

    def prove(self, port: int, kinds: Iterable[tuple[str, str]], when: str) -> None:
        """Interference, naming what was seen, unless the port is free right now."""
        seen = held(port, self.host, kinds)
        if seen:
            raise Interference(f"{when}, {seen}: another process held it")

    def acquire(self) -> int:
        """A port proven free right now (exploration, connection cells)."""
        return self.take(prove=True)

    def release(self, port: int, strict: bool = True) -> None:
        """Prove the port free again once the caller's sockets are closed."""
        if strict and not self.free(port):
            raise Interference(
                f"port {port} was taken by another process meanwhile: the observed outcome may "
                "be that process's doing, so no verdict is given; rerun, or choose a quieter "
                "range with --bindconform-ports"
            )
