"""What a bind model sees: the sockets on one port, as plain frozen data.

A model never touches the network. It is given the sockets already on the port
(in the order they were bound) and the socket making the next call, and says
what the call returns, in the case vocabulary. Address geometry (which sockets
overlap, and how) is the same question on every OS and is answered here once;
each OS module holds only the rules that decide whether an overlap is allowed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

RA, RP, RPLB, EXCL = "SO_REUSEADDR", "SO_REUSEPORT", "SO_REUSEPORT_LB", "SO_EXCLUSIVEADDRUSE"
UNKNOWN = "unknown"  # the case vocabulary's no-claim token (model.NO_CLAIM): no rule applies

OS_OPTIONS: dict[str, frozenset[str]] = {
    "linux": frozenset({RA, RP}),
    "freebsd": frozenset({RA, RP, RPLB}),
    "darwin": frozenset({RA, RP}),
    "windows": frozenset({RA, EXCL}),
}
"""Options each OS defines; a cell needing another one cannot run there."""

V6ONLY_DEFAULT = {"linux": False, "freebsd": True, "darwin": False, "windows": True}
"""IPV6_V6ONLY when a socket does not set it (docs/reference/posix-semantics.md
row 'IPV6_V6ONLY default': Linux ipv6(7) net.ipv6.bindv6only=0, FreeBSD inet6(4)
net.inet6.ip6.v6only=1, xnu 0; Windows: "Dual-Stack Sockets for IPv6 Winsock
Applications" and Wine's test_ipv6only(), which reads 1 on a new socket)."""

CONNECTED = ("established", "closed-established", "closing")
"""An accepted connection on the port: established (the grid vocabulary's
closed-established: its listener is gone), or closed by this side first and
waiting for the peer's FIN."""

HOLDS_PORT = ("bound", "listening", *CONNECTED, "time-wait")
"""States in which a socket (or the connection it left behind) occupies the port."""

SOCKET_STATES = ("unbound", *HOLDS_PORT, "closed", "elsewhere")
"""'elsewhere': listen() on an unbound POSIX socket bound it to an ephemeral port."""


@dataclass(frozen=True)
class ModelSocket:
    """One socket as a model sees it: everything resolved, nothing left to the OS."""

    family: str  # inet | inet6
    type: str  # stream | dgram
    v6only: bool  # resolved: the OS default applied (always False for inet)
    options: frozenset[str]  # concrete names, e.g. SO_REUSEADDR
    address: str  # IP literal; wildcards are 0.0.0.0 / :: / ::ffff:0.0.0.0
    state: str = "unbound"
    owner: str = "self"  # self | process (same user) | other-user
    name: str = ""  # identity within one sequence (history events name their socket)

    def has(self, *names: str) -> bool:
        return any(n in self.options for n in names)

    def at(self, state: str) -> ModelSocket:
        return replace(self, state=state)

    @property
    def user(self) -> str:
        """The account: a child process of the same user is the same user."""
        return "self" if self.owner in ("self", "process") else self.owner


Event = tuple[str, ModelSocket]
"""A successful bind, listen or close on the port, with the socket as it was
right after it. Some OS state (Linux's bind-bucket fast paths) depends on the
order of these, not only on which sockets are there now."""


@dataclass(frozen=True)
class Endpoint:
    stack: str  # v4 | v6
    address: str | None  # None: the wildcard of that stack


def endpoints(sock: ModelSocket) -> tuple[Endpoint, ...]:
    """Where a bound socket receives. A dual-stack wildcard holds both stacks; a
    v4-mapped address is its IPv4 address (docs/reference/posix-semantics.md row
    'v4-mapped'; docs/reference/windows-tables.md E: a dual-stack socket is bound
    on both stacks). Whether a model claims anything for such a pair is the OS
    module's decision."""
    ip = ipaddress.ip_address(sock.address)
    if isinstance(ip, ipaddress.IPv4Address):
        return (Endpoint("v4", None if ip.is_unspecified else str(ip)),)
    if ip.ipv4_mapped is not None:
        return (Endpoint("v4", None if ip.ipv4_mapped.is_unspecified else str(ip.ipv4_mapped)),)
    if ip.is_unspecified:
        return (Endpoint("v6", None),) + (() if sock.v6only else (Endpoint("v4", None),))
    return (Endpoint("v6", str(ip)),)


def v6only_bound(sock: ModelSocket) -> bool:
    """IPV6_V6ONLY as the kernel sees it once bound: a specific IPv6 address
    (not v4-mapped) makes the socket IPv6-only (Linux __inet6_bind(); measured:
    a dual and a v6only SO_REUSEPORT socket on one IPv6 address share traffic)."""
    ip = ipaddress.ip_address(sock.address)
    if isinstance(ip, ipaddress.IPv6Address) and not ip.is_unspecified and ip.ipv4_mapped is None:
        return True
    return sock.v6only


def is_v4mapped(sock: ModelSocket) -> bool:
    ip = ipaddress.ip_address(sock.address)
    return isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None


@dataclass(frozen=True)
class Meeting:
    stack: str
    old_wildcard: bool
    new_wildcard: bool
    exact: bool  # the same address (both wildcard, or one specific address)


def meetings(old: ModelSocket, new: ModelSocket) -> list[Meeting]:
    """Every stack on which the two sockets' addresses overlap."""
    found = []
    for a in endpoints(old):
        for b in endpoints(new):
            if a.stack != b.stack:
                continue
            if a.address is None or b.address is None or a.address == b.address:
                found.append(
                    Meeting(a.stack, a.address is None, b.address is None, a.address == b.address)
                )
    return found


def rivals(
    existing: Sequence[ModelSocket], new: ModelSocket
) -> Iterator[tuple[ModelSocket, list[Meeting]]]:
    """Sockets that hold the port in new's port space (TCP and UDP ports are
    separate on every OS) and overlap new's address, with how they meet."""
    for old in existing:
        if old.state in HOLDS_PORT and old.type == new.type:
            met = meetings(old, new)
            if met:
                yield old, met


def common(new: ModelSocket, call: str, os_family: str) -> str | None:
    """Outcomes every OS shares, before any port rule: None when none applies.
    Sources: the bind(2) and listen(2) pages (Linux man-pages, FreeBSD), Winsock
    bind() and listen() on learn.microsoft.com (error lists), and for Windows
    Wine's afd.c test_bind() (a second bind: STATUS_ADDRESS_ALREADY_ASSOCIATED,
    which Winsock returns as WSAEINVAL)."""
    if call == "bind" and new.state != "unbound":
        return "INVAL"  # bind(2) EINVAL / Winsock bind WSAEINVAL: already bound
    if call == "listen" and new.type == "dgram":
        return "NOTSUP"  # listen(2) EOPNOTSUPP / WSAEOPNOTSUPP: not a connection socket
    if call == "listen" and new.state == "unbound":
        # Linux ip(7) and FreeBSD tcp_usr_listen(): listen() on an unbound socket
        # binds an ephemeral port; Winsock listen(): WSAEINVAL, "not been bound".
        return "INVAL" if os_family == "windows" else "ok"
    if call == "listen" and new.state == "listening":
        # A second listen() only changes the backlog (Linux inet_listen(); Winsock
        # listen(): "returns success without changing the value for the backlog").
        return "ok"
    return None
