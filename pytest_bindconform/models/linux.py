"""Linux >= 3.9 bind()/listen() rules, checked against Linux 6.18 with real sockets.

Pairwise rules: docs/reference/posix-semantics.md, column "Linux >= 3.9
(measured)", cited by row; the kernel functions are named at each rule.
Beyond pairs, Linux decides from the port's history: TCP keeps fast paths per
port (the bind bucket) that skip the pairwise check, and UDP stops its scan at
the first compatible SO_REUSEPORT socket. Those rules
come from the kernel source named at each one and were found, and confirmed, by
exploration on this project's Linux 6.18 host (explore.py); their regression
tests are tests/test_models.py and the case file linux-port-history.bind.yaml.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from .base import (
    HOLDS_PORT,
    RA,
    RP,
    Event,
    ModelSocket,
    is_v4mapped,
    meetings,
    rivals,
    v6only_bound,
)


def _reuseport_pair(old: ModelSocket, new: ModelSocket) -> bool:
    # Rows "exact duplicate" and "different users": SO_REUSEPORT on both, same
    # effective uid (root included). Row "TIME_WAIT": a TIME_WAIT entry has no
    # owner to compare, so RP on both is enough there.
    return old.has(RP) and new.has(RP) and (old.user == new.user or old.state == "time-wait")


def _may_share(old: ModelSocket, new: ModelSocket) -> bool:
    if _reuseport_pair(old, new):
        return True
    if old.has(RA) and new.has(RA):
        # Row "does listening state matter?": RA never overlaps a TCP listener.
        # Row "TIME_WAIT": the entry inherits RA from its listener, so RA on both
        # passes. Row "different users": RA shares across users too.
        return not (new.type == "stream" and old.state == "listening")
    # Row "W and S on one port": without RA or RP on both, any overlap conflicts
    # (a socket without options is exclusive in both directions).
    return False


# -- TCP: the bind bucket's fast paths -------------------------------------------
# net/ipv4/inet_connection_sock.c: inet_csk_get_port() skips the pairwise check
# (inet_csk_bind_conflict) when the port's bucket says every owner would
# accept the new socket: fastreuse (all owners RA, none listening) with RA on
# the new one, or sk_reuseport_match(). inet_csk_update_fastreuse() keeps that
# state after each successful bind and listen. FASTREUSEPORT_STRICT remembers
# only the last RP socket that got in through the full check, so a later RP
# socket on the same address skips the check even where an owner without RP
# would refuse it (measured: RA socket, then RA+RP, then RP only on 0.0.0.0:
# the third bind succeeds on Linux 6.18).
ANY, STRICT = 1, 2


@dataclass(frozen=True)
class _Bucket:
    fastreuse: bool
    fastreuseport: int  # 0, ANY or STRICT
    fast: ModelSocket | None  # the RP socket whose address and uid the bucket remembers


def _v4(sock: ModelSocket) -> str | None:
    """sk_rcv_saddr: the IPv4 address (0.0.0.0 for a wildcard); None for an IPv6 one."""
    ip = ipaddress.ip_address(sock.address)
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return "0.0.0.0" if ip.is_unspecified else None


def _kind6(sock: ModelSocket) -> str:
    if sock.family == "inet" or is_v4mapped(sock):
        return "mapped"
    return "any" if ipaddress.ip_address(sock.address).is_unspecified else "other"


def _remembered(fast: ModelSocket, new: ModelSocket) -> bool:
    """sk_reuseport_match()'s address test: ipv4/ipv6_rcv_saddr_equal() with the
    remembered socket's wildcard matching anything and the new one's nothing."""
    if fast.family == "inet":
        return not v6only_bound(new) and fast.address in ("0.0.0.0", _v4(new))
    k1, k2 = _kind6(fast), _kind6(new)
    if k1 == k2 == "mapped":
        return not v6only_bound(new) and _v4(fast) in ("0.0.0.0", _v4(new))
    if k1 == k2 == "any":
        return True
    if k1 == "any":
        return not (v6only_bound(fast) and k2 == "mapped")
    same = ipaddress.ip_address(fast.address) == ipaddress.ip_address(new.address)
    return new.family == "inet6" and same


def _match(bucket: _Bucket | None, new: ModelSocket) -> bool:
    if bucket is None or bucket.fastreuseport == 0 or bucket.fast is None or not new.has(RP):
        return False
    if bucket.fast.user != new.user:
        return False
    return bucket.fastreuseport == ANY or _remembered(bucket.fast, new)


def _update(bucket: _Bucket | None, sock: ModelSocket) -> _Bucket:
    """inet_csk_update_fastreuse() after a successful bind or listen of `sock`."""
    reuse = sock.has(RA) and sock.state != "listening"
    if bucket is None:
        return _Bucket(reuse, ANY if sock.has(RP) else 0, sock if sock.has(RP) else None)
    if not sock.has(RP):
        return _Bucket(bucket.fastreuse and reuse, 0, None)
    if _match(bucket, sock):
        return _Bucket(bucket.fastreuse and reuse, bucket.fastreuseport, bucket.fast)
    return _Bucket(bucket.fastreuse and reuse, STRICT, sock)


def _bucket(history: Sequence[Event]) -> _Bucket | None:
    """Replay the port's TCP history; the bucket dies with its last owner. An
    accepted connection joins the owners without an update (__inet_inherit_port())."""
    owners: set[str] = set()
    bucket = None
    for call, sock in history:
        if sock.type != "stream":
            continue
        if call == "close":
            owners.discard(sock.name)
            bucket = bucket if owners else None
            continue
        if call in ("bind", "listen"):
            bucket = _update(bucket if owners else None, sock)
        owners.add(sock.name)
    return bucket


def _tcp(existing: Sequence[ModelSocket], sock: ModelSocket, history: Sequence[Event]) -> str:
    bucket = _bucket(history)
    reuse = sock.has(RA) and sock.state != "listening"
    if bucket is not None and ((bucket.fastreuse and reuse) or _match(bucket, sock)):
        return "ok"  # the fast path: no owner is looked at
    for old, _ in rivals(existing, sock):
        if not _may_share(old, sock):
            return "INUSE"  # row "conflict errno": always EADDRINUSE
    return "ok"


def _chain(existing: Sequence[ModelSocket], history: Sequence[Event]) -> list[ModelSocket]:
    """The port's UDP hash chain (net/ipv4/udp.c udp_lib_get_port()): a new
    socket goes to the head, except an AF_INET6 one with SO_REUSEPORT, which
    goes to the tail (measured: see _udp)."""
    order: list[str] = []
    for call, sock in history or _assumed_history(existing):
        if sock.type != "dgram" or call not in ("bind", "close"):
            continue
        if call == "close":
            order = [n for n in order if n != sock.name]
        elif sock.family == "inet6" and sock.has(RP):
            order.append(sock.name)
        else:
            order.insert(0, sock.name)
    now = {s.name: s for s in existing}
    return [now[n] for n in order if n in now]


def _udp(existing: Sequence[ModelSocket], new: ModelSocket, history: Sequence[Event]) -> str:
    # net/ipv4/udp.c udp_lib_lport_inuse() walks the chain; sockets with RA on
    # both are passed over, and the first other overlapping socket decides: RP
    # on both with one uid ends the walk with success (sockets further down are
    # never looked at), anything else is a conflict. Measured on 6.18 (UDP):
    # RA on 127.0.0.1, then RA+RP on 0.0.0.0, then RP on 0.0.0.0 succeeds, and
    # fails with the first two swapped; with AF_INET6 v4-mapped sockets (RA, then
    # RA+RP, then RP, one address) the third fails: the RP socket went to the tail.
    for old in _chain(existing, history):
        if old.state not in HOLDS_PORT or not meetings(old, new) or (old.has(RA) and new.has(RA)):
            continue
        return "ok" if _reuseport_pair(old, new) else "INUSE"
    return "ok"


def _assumed_history(existing: Sequence[ModelSocket]) -> list[Event]:
    """Without a history: the sockets were bound in this order, then listened."""
    binds: list[Event] = [("bind", s.at("bound")) for s in existing]
    return binds + [("listen", s) for s in existing if s.state == "listening"]


def bind(existing: Sequence[ModelSocket], new: ModelSocket, history: Sequence[Event] = ()) -> str:
    if is_v4mapped(new) and new.v6only:
        # net/ipv6/af_inet6.c __inet6_bind(): "Binding to v4-mapped address on a
        # v6-only socket makes no sense" -> -EINVAL
        return "INVAL"
    if new.type == "dgram":
        return _udp(existing, new, history)
    return _tcp(existing, new, history or _assumed_history(existing))


def listen(
    existing: Sequence[ModelSocket], sock: ModelSocket, history: Sequence[Event] = ()
) -> str:
    # inet_csk_listen_start() runs the same port check as bind, with the socket
    # already in LISTEN state: row "does listening state matter?": of several RA
    # sockets only one may listen; RP sockets of one user all listen.
    assumed = _assumed_history([*existing, sock])
    return _tcp(existing, sock.at("listening"), history or assumed)
