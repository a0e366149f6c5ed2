"""Windows (Server 2003 and later) bind()/listen() rules.

Source: shared/reference/windows-documented-tables.md, tables C (same user), D
(different users) and E (dual stack) of "Using SO_REUSEADDR and
SO_EXCLUSIVEADDRUSE". Tables A and B are superseded and not modelled. Rows and
columns are named as on the page: D = default, R = SO_REUSEADDR, E =
SO_EXCLUSIVEADDRUSE, W = wildcard, S = specific.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import CONNECTED, EXCL, RA, Event, Meeting, ModelSocket, rivals


def _pair(old: ModelSocket, new: ModelSocket, met: Meeting) -> str:
    """Outcome of the second bind of one pair meeting on one stack."""
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
            # D rows D/W and R/W: another user may share only if both set R
            # ("to share a port, the first socket must set SO_REUSEADDR, except
            # when the second bind is made by the same user account").
            return "ACCESS"
        return "ok"  # C rows D/W, R/W: D/S, R/S, E/S are ok
    # The new socket is a (non-exclusive) wildcard over an old specific socket:
    # C and D, rows */S, columns D/W and R/W are ok (page text for C: it receives
    # on all interfaces except that specific address).
    return "ok"


def _worked_example(old: ModelSocket, new: ModelSocket, met: Meeting) -> bool:
    """E: a dual-stack bind runs the checks on both stacks and fails if either
    fails (with table C's error, except here). The page's worked example: an
    IPv4 TCP socket on loopback, then an exclusive dual-stack [::] bind fails
    with WSAEACCES, where table C's E/W column says INUSE. Only that pair."""
    return (
        new.family == "inet6"
        and met.stack == "v4"
        and met.new_wildcard
        and new.has(EXCL)
        and old.family == "inet"
        and not met.old_wildcard
        and not old.options
        and new.type == "stream"
    )


def bind(existing: Sequence[ModelSocket], new: ModelSocket, history: Sequence[Event] = ()) -> str:
    del history  # no document speaks of order beyond the pair
    if new.has(RA) and new.has(EXCL):
        # Reported (cases/lifecycle-sharing.bind.yaml, oracle windows-reported):
        # the two options exclude each other; the second setsockopt fails with
        # WSAEINVAL, before any bind.
        return "INVAL"
    for old, met in rivals(existing, new):
        if old.state in (*CONNECTED, "time-wait"):
            # Table A's page: an SO_EXCLUSIVEADDRUSE socket's port may stay taken
            # while an accepted connection is active (TIME_WAIT-like states); a
            # connection left by a socket without it does not block (model
            # extension: no table covers these states).
            if old.has(EXCL):
                return "INUSE"
            continue
        for m in met:
            outcome = _pair(old, new, m)
            if outcome == "ok":
                continue
            if _worked_example(old, new, m):
                return "ACCESS"
            return outcome
    return "ok"


def listen(
    existing: Sequence[ModelSocket], sock: ModelSocket, history: Sequence[Event] = ()
) -> str:
    # No Windows document says listen() can fail once bind succeeded: sharing
    # is decided at bind (model extension, not documented).
    del existing, sock, history
    return "ok"
