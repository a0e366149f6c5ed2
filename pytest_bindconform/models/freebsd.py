"""FreeBSD 14/15 bind()/listen() rules: derived, never run.

Source: docs/reference/posix-semantics.md, column "FreeBSD 14/15 (derived)";
the in_pcbbind() logic FreeBSD shares with macOS is in bsd.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import bsd
from .base import CONNECTED, RP, RPLB, Event, Meeting, ModelSocket


def _cross_user(old: ModelSocket, new: ModelSocket, met: Meeting) -> bool | None:
    """An unprivileged socket over another user's: refused on every stack.

    sys/netinet6/in6_pcb.c in6_pcbbind() (in6_pcbbind_avail() in 15.0): "If a
    socket owned by a different user is already bound to this port, fail. In
    particular, SO_REUSE* can only be used to share a port among sockets owned
    by the same user. However, we can share a port with a connected socket
    which has a unique 4-tuple." It runs a second lookup for the IPv4 half of a
    dual-stack [::] bind with the same test and no address exemption, so a
    dual-stack bind fails over another user's 0.0.0.0 although it passes over
    the same user's. sys/netinet/in_pcb.c in_pcbbind_setup() (14.x) does the
    same for AF_INET and v4-mapped binds, except when both addresses are
    wildcards and the old socket has SO_REUSEPORT_LB without SO_REUSEPORT (its
    term "(t->inp_socket->so_options & SO_REUSEPORT_LB) == 0"); 15.0 dropped
    that exemption on the IPv6 side and its IPv4 side is not derived here."""
    if new.type == "stream" and (old.state in CONNECTED or old.state == "time-wait"):
        return True  # "(so->so_type != SOCK_STREAM || t not connected)": a 4-tuple is unique
    if met.old_wildcard and met.new_wildcard and old.has(RPLB) and not old.has(RP):
        return None  # 14.x and 15.0 differ here
    return False


def bind(existing: Sequence[ModelSocket], new: ModelSocket, history: Sequence[Event] = ()) -> str:
    del history  # no order dependence is derived for this OS
    # Row "exact duplicate": RP on both, or RPLB on both.
    return bsd.bind(existing, new, (RP, RPLB), _cross_user)


listen = bsd.listen
