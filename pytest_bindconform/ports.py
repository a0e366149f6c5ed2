"""Ports no other process or xdist worker can confound.

Each worker owns a disjoint slice of a range kept outside the OS's ephemeral
ports, so neither a sibling worker nor an outgoing connection elsewhere gets
one. A port is used only after an exclusive bind on every wildcard proves it
free, and is proven free again after the cell's sockets are closed; a cell
whose port was taken meanwhile is an interference error, never a verdict.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from .host import Host

DEFAULT_RANGE = (20000, 29999)


class Interference(Exception):
    """Something outside this run touched the port; no verdict can be given."""


def parse_range(text: str) -> tuple[int, int]:
    lo_text, sep, hi_text = text.partition("-")
    try:
        lo, hi = int(lo_text), int(hi_text)
    except ValueError:
        raise ValueError(f"bad port range {text!r}: expected LOW-HIGH, e.g. 20000-29999") from None
    if not sep or not 1 <= lo < hi <= 65535:
        raise ValueError(f"bad port range {text!r}: expected LOW-HIGH with 1 <= LOW < HIGH <= 65535")
    return lo, hi


def ephemeral_range(host: Host) -> tuple[int, int]:
    if host.ephemeral_ports:
        return host.ephemeral_ports
    if host.os == "freebsd":
        return 10000, 65535
    return 49152, 65535  # Windows, macOS (IANA dynamic range)


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


def _probe_sockets(host: Host) -> Iterator[tuple[int, int, str]]:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        yield socket.AF_INET, kind, "0.0.0.0"
        if host.ipv6:
            yield socket.AF_INET6, kind, "::"


def is_free(port: int, host: Host) -> bool:
    """An exclusive wildcard bind per family and type succeeds only on an unused port."""
    opened: list[socket.socket] = []
    try:
        for family, kind, address in _probe_sockets(host):
            s = socket.socket(family, kind)
            opened.append(s)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if host.os == "windows":
                # Without it a Windows wildcard bind succeeds next to a specific one.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # type: ignore[attr-defined]
            s.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        for s in opened:
            with contextlib.suppress(OSError):
                s.close()


class PortAllocator:
    def __init__(self, host: Host, ports: range):
        self.host = host
        self.ports = ports
        self._next = 0

    def acquire(self) -> int:
        """The next port of this worker's slice that is free right now."""
        for _ in range(len(self.ports)):
            port = self.ports[self._next % len(self.ports)]
            self._next += 1
            if not self.host.excluded(port) and is_free(port, self.host):
                return port
        raise Interference(
            f"no free port in {self.ports.start}-{self.ports.stop - 1}: every port of this "
            "worker's slice is held by another process; choose another range with "
            "--bindconform-ports"
        )

    def release(self, port: int, strict: bool = True) -> None:
        """Prove the port free again now that the cell's sockets are closed.

        Not strict after TCP connections: their TIME_WAIT entries may hold the
        port for a minute by design (the allocator then skips it).
        """
        if strict and not is_free(port, self.host):
            raise Interference(
                f"port {port} was taken by another process during the cell: the observed "
                "outcome may be that process's doing, so no verdict is given; rerun, or "
                "choose a quieter range with --bindconform-ports"
            )
