"""Which of the sockets sharing a port receives unicast traffic sent to it.

Linux: net/ipv4/udp.c udp4_lib_lookup2() and inet_hashtables.c
inet_lhash2_lookup(), measured on Linux 6.18 (tests/test_models.py): the exact
address beats a wildcard, an AF_INET socket beats an AF_INET6 one for IPv4
traffic, then the first socket of the lookup chain wins, or its SO_REUSEPORT
group shares by hash. Windows (docs/reference/windows-tables.md): Wine's
test_reuseaddr() assertions, which pass on real Windows, for TCP listeners of
one family (the specific address beats the wildcard; of two SO_REUSEADDR
listeners on one address the first to listen receives), and the C page's text
for UDP (a wildcard next to an exclusive specific socket receives everything
but that address). FreeBSD and macOS: only where one socket alone can receive;
the order of their PCB hash chains (sys/netinet/in_pcb.c _in_pcbinshash_wild()
on FreeBSD 14 appends dual-stack wildcards at the tail) is not derived here.
Anything else is 'unknown'. The answer uses the probe's vocabulary: a socket
name, 'both' / 'shared' (two / three or more receive), 'none'.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from .base import EXCL, RA, RP, UNKNOWN, ModelSocket, endpoints, v6only_bound


def _score(sock: ModelSocket, to: ModelSocket) -> int:
    """0: does not receive traffic for `to`; 1: as a wildcard; 2: as its exact address."""
    best = 0
    for own in endpoints(sock):
        for dest in endpoints(to):
            if own.stack == dest.stack and own.address in (None, dest.address):
                best = max(best, 1 if own.address is None else 2)
    return best


def _balanced(names: list[str]) -> str:
    return "both" if len(names) == 2 else "shared"


def _group_key(sock: ModelSocket) -> tuple[str, bool, str, object]:
    """SO_REUSEPORT group: one family, v6only, user and exact address
    (udp_reuseport_add_sock(), inet_reuseport_add_sock())."""
    return sock.family, v6only_bound(sock), sock.user, ipaddress.ip_address(sock.address)


def _linux(group: dict[str, ModelSocket], to: ModelSocket) -> str:
    if to.family == "inet":  # compute_score(): AF_INET scores higher for IPv4 traffic
        group = {n: s for n, s in group.items() if s.family == "inet"} or group
    # The lookup chain: newest first, except AF_INET6 sockets with SO_REUSEPORT,
    # which are appended (same insertion rule as the bind chain, models/linux.py).
    chain: list[str] = []
    for name, sock in group.items():
        chain = [*chain, name] if sock.family == "inet6" and sock.has(RP) else [name, *chain]
    first = group[chain[0]]
    if first.has(RP):
        mates = [n for n in chain if group[n].has(RP) and _group_key(group[n]) == _group_key(first)]
        if len(mates) > 1:
            return _balanced(mates)  # inet_lookup_reuseport(): balanced by a hash
    return chain[0]


def _tie(os_family: str, group: dict[str, ModelSocket], to: ModelSocket) -> str:
    names, socks = list(group), list(group.values())
    if os_family == "linux":
        return _linux(group, to)
    if os_family in ("freebsd", "darwin"):
        return UNKNOWN  # the hash chain order decides; not derived
    if all(s.type == "stream" and s.has(RA) for s in socks):
        # Windows, Wine test_reuseaddr(): "The connection is delivered to the
        # first socket" of two SO_REUSEADDR listeners on one address.
        return names[0]
    return UNKNOWN  # Windows UDP: the page's '*': undefined which socket receives


def predict_delivery(os_family: str, sharing: Mapping[str, ModelSocket], to: str) -> str:
    """Who receives traffic sent to address `to` on the port. sharing: the
    sockets on the port by name, in the order they began to receive (bind for
    UDP, listen for TCP); only bound UDP and listening TCP sockets count."""
    dest = ModelSocket("inet6" if ":" in to else "inet", "dgram", True, frozenset(), to)
    if dest.family == "inet6" and ipaddress.IPv6Address(to).ipv4_mapped is not None:
        dest = ModelSocket(
            "inet", "dgram", False, frozenset(), str(ipaddress.IPv6Address(to).ipv4_mapped)
        )
    live = {
        n: s
        for n, s in sharing.items()
        if s.state == ("listening" if s.type == "stream" else "bound")
    }
    scores = {n: _score(s, dest) for n, s in live.items()}
    top = max(scores.values(), default=0)
    if top == 0:
        return "none"
    group = {n: live[n] for n, score in scores.items() if score == top}
    candidates = [live[n] for n, score in scores.items() if score]
    if len(candidates) > 1 and not _ranked(os_family, candidates, group):
        return UNKNOWN
    return next(iter(group)) if len(group) == 1 else _tie(os_family, group, dest)


def _ranked(os_family: str, candidates: list[ModelSocket], best: dict[str, ModelSocket]) -> bool:
    """Does a source rank these candidates (exact address over wildcard)?"""
    if os_family == "linux":
        return True  # measured, see the module docstring
    if os_family != "windows" or len({s.family for s in candidates}) > 1:
        return False  # BSD order not derived; Windows across families: no source
    if all(s.type == "stream" for s in candidates):
        return True  # Wine test_reuseaddr(): the specific listener receives, either order
    # UDP: the C page's text only: an exclusive specific socket and a wildcard.
    return len(candidates) == 2 and len(best) == 1 and next(iter(best.values())).has(EXCL)
