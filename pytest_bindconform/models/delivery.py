"""Which of the sockets sharing a port receives unicast traffic sent to it.

Sources: shared/reference/posix-semantics.md row "delivery when several sockets
share" for BSD and macOS ties; windows-documented-tables.md (C page text: a
specific socket receives its address, the wildcard the rest; table A's '*':
otherwise undefined), and for Windows listeners a reported fact (cited below).
Linux: net/ipv4/udp.c udp4_lib_lookup2() and inet_hashtables.c
inet_lhash2_lookup(), measured on Linux 6.18
(tests/test_models.py): the exact address beats a wildcard, an AF_INET socket
beats an AF_INET6 one for IPv4 traffic, then the first socket of the lookup
chain wins, or its SO_REUSEPORT group shares by hash. The answer uses the
probe's vocabulary: a socket name, 'both' / 'shared' (two / three or more
receive), 'none'.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from .base import RP, RPLB, UNKNOWN, ModelSocket, endpoints, v6only_bound


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
    if os_family == "freebsd" and all(s.has(RPLB) for s in socks):
        return _balanced(names)  # RPLB: balanced
    if os_family in ("freebsd", "darwin"):
        return names[-1]  # RP: the last bound
    if all(s.type == "stream" for s in socks):
        # Windows, reported (cases/lifecycle-sharing.bind.yaml, oracle
        # windows-reported): of two SO_REUSEADDR listeners the first receives.
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
    return next(iter(group)) if len(group) == 1 else _tie(os_family, group, dest)
