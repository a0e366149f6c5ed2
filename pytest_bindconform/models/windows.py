"""Windows (Server 2003 and later) bind()/listen() rules, each resting on a source.

Sources, described in docs/reference/windows-tables.md:
  C, D  the tables of "Using SO_REUSEADDR and SO_EXCLUSIVEADDRUSE" (same user,
        different users), https://learn.microsoft.com/windows/win32/winsock/
        using-so-reuseaddr-and-so-exclusiveaddruse (ms.date 05/31/2018);
  E     the same page's dual-stack paragraph: a dual-stack wildcard bind runs
        those checks on both stacks and fails if either fails;
  WINE  Wine's dlls/ws2_32/tests/sock.c, test_reuseaddr() (its tests_exclusive[]
        table and the loops after it) and test_ipv6only(): assertions that pass
        on real Windows (https://gitlab.winehq.org/wine/wine, commit 3379ee2e).
Tables A and B are superseded and not modelled. Where none of these decides,
the answer is 'unknown': a model never guesses. Rows and columns are named as
on the page: D = default, R = SO_REUSEADDR, E = SO_EXCLUSIVEADDRUSE, W =
wildcard, S = specific.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from .base import (
    CONNECTED,
    EXCL,
    RA,
    UNKNOWN,
    Event,
    Meeting,
    ModelSocket,
    is_v4mapped,
    meetings,
    rivals,
)


def _pair(old: ModelSocket, new: ModelSocket, met: Meeting) -> str:
    """Table C (same user) or D (different users) for one pair on one stack."""
    if new.has(EXCL) and met.new_wildcard:
        return "INUSE"  # C and D, column E/W: INUSE in every row
    if met.exact:
        # C and D diagonals (D/W x D/W ... E/S x E/S): a shared address needs R on
        # both; R after D or E is refused with ACCESS, anything else is INUSE.
        if new.has(RA):
            return "ok" if old.has(RA) else "ACCESS"
        return "INUSE"
    if met.old_wildcard:  # the new socket is specific, inside the old wildcard
        if old.has(EXCL):
            return "ACCESS"  # C and D, row E/W: D/S, R/S, E/S are ACCESS
        if old.user != new.user and not (old.has(RA) and new.has(RA)):
            return "ACCESS"  # D rows D/W and R/W: only R on both shares across users
        return "ok"  # C rows D/W, R/W: D/S, R/S, E/S are ok
    # A (non-exclusive) wildcard over an old specific socket: C and D, rows */S,
    # columns D/W and R/W are ok.
    return "ok"


def _dual_wildcard(sock: ModelSocket) -> bool:
    return (
        sock.family == "inet6"
        and not sock.v6only
        and ipaddress.ip_address(sock.address).is_unspecified
    )


def _after_dual(old: ModelSocket, new: ModelSocket) -> str:
    """An IPv4 bind over the IPv4 half of an earlier dual-stack [::] socket. E
    speaks only of the dual-stack socket's own bind; WINE shows that table C
    does not carry over to this order, so only its assertions are claimed (TCP,
    the dual-stack socket bound, not listening)."""
    if new.type != "stream" or old.state != "bound" or new.user != old.user:
        return UNKNOWN
    if old.has(EXCL) and not new.has(EXCL):
        # tests_exclusive[1] (S, default) and [10] (W, default): WSAEACCES;
        # test_ipv6only(): W with SO_REUSEADDR: WSAEACCES.
        known = {(False, ()), (True, ()), (True, (RA,))}
        wildcard = ipaddress.ip_address(new.address).is_unspecified
        return "ACCESS" if (wildcard, tuple(sorted(new.options))) in known else UNKNOWN
    if not old.options and ipaddress.ip_address(new.address).is_unspecified:
        # tests_exclusive[14] (W, default) and [11] (W, SO_EXCLUSIVEADDRUSE): success
        return "ok" if new.options <= {EXCL} else UNKNOWN
    return UNKNOWN


def _cross_family(old: ModelSocket, new: ModelSocket) -> str | None:
    """The claims for sockets of different families meeting on the IPv4 stack;
    None when the table logic below applies."""
    if is_v4mapped(new) or is_v4mapped(old):
        # WINE tests_exclusive[9], [15], [16], [17]: a v4-mapped address on a
        # dual-stack TCP socket conflicts with an AF_INET socket exactly as its
        # IPv4 address would. Nothing is known of other pairs or of UDP.
        other = old if is_v4mapped(new) else new
        mapped = new if other is old else old
        if other.family != "inet" or new.type != "stream" or mapped.v6only:
            return UNKNOWN
        return None
    if old.family == "inet6" and new.family == "inet":
        return _after_dual(old, new) if _dual_wildcard(old) else None
    return None  # a dual-stack bind over an IPv4 socket: E, with table C's cells


def _outcome(old: ModelSocket, new: ModelSocket, met: Meeting) -> str:
    if old.family != new.family or is_v4mapped(old) or is_v4mapped(new):
        special = _cross_family(old, new)
        if special is not None:
            return special
    outcome = _pair(old, new, met)
    if (
        outcome != "ok"
        and _dual_wildcard(new)
        and old.family == "inet"
        and old.state == "listening"
        and not old.options
        and not met.old_wildcard
        and new.has(EXCL)
    ):
        # E's worked example (an IPv4 TCP socket on loopback, then an exclusive
        # dual-stack [::]) says WSAEACCES where table C says INUSE; WINE
        # tests_exclusive[6] shows INUSE for a bound IPv4 socket. A listening one
        # is checked by neither.
        return UNKNOWN
    return outcome


def bind(existing: Sequence[ModelSocket], new: ModelSocket, history: Sequence[Event] = ()) -> str:
    del history  # pairs only: no source speaks of the order of earlier binds
    if new.has(RA) and new.has(EXCL):
        # WINE test_reuseaddr(): the second of the two setsockopt() calls fails
        # with WSAEINVAL, in either order, before any bind.
        return "INVAL"
    if is_v4mapped(new) and new.v6only:
        return UNKNOWN  # no source: a v4-mapped bind on an IPv6-only socket
    outcomes: set[str] = set()
    for old, met in rivals(existing, new):
        if old.state in (*CONNECTED, "time-wait"):
            # No table has these states. The SO_EXCLUSIVEADDRUSE page says an
            # exclusive listener's port cannot be bound again while an accepted
            # connection is active, without the error; nothing for the others.
            return UNKNOWN
        outcomes |= {_outcome(old, new, m) for m in met}
    if UNKNOWN in outcomes:
        return UNKNOWN
    failures = outcomes - {"ok"}
    if len(failures) > 1:
        return UNKNOWN  # two rivals refuse with different errors: which wins is unknown
    return failures.pop() if failures else "ok"


def _listen_verified(old: ModelSocket, sock: ModelSocket) -> bool:
    """WINE test_reuseaddr() listens, on IPv4 and IPv6 TCP: two SO_REUSEADDR
    sockets on one address (both listen), and a wildcard next to a specific
    socket without options (both listen, in either order)."""
    if old.family != sock.family or sock.type != "stream":
        return False
    if old.user != sock.user or is_v4mapped(old) or is_v4mapped(sock):
        return False
    for met in meetings(old, sock):
        if met.exact and not (old.options == sock.options == {RA}):
            return False
        if not met.exact and (old.options or sock.options):
            return False
    return True


def listen(
    existing: Sequence[ModelSocket], sock: ModelSocket, history: Sequence[Event] = ()
) -> str:
    # Winsock listen(): WSAEADDRINUSE only when the local address is in use (a
    # bind with SO_REUSEADDR whose check was delayed): a socket alone on its port
    # listens. With other sockets there, only WINE's cases are claimed.
    del history
    others = [old for old, _ in rivals(existing, sock)]
    if all(old.state in ("bound", "listening") and _listen_verified(old, sock) for old in others):
        return "ok"
    return UNKNOWN
