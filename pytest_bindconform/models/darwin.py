"""macOS (xnu) bind()/listen() rules: derived, never run.

Source: docs/reference/posix-semantics.md, column "macOS / xnu (derived)";
the in_pcbbind() logic xnu shares with FreeBSD is in bsd.py. Not modelled:
xnu's SKYWALK port namespace (bsd/skywalk/namespace/netns.c netns_reserve_in*,
called from the same bind functions), which can refuse a bind in_pcbbind()
allows; a macOS run is what will show whether it does for these cases.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from . import bsd
from .base import CONNECTED, RP, Event, Meeting, ModelSocket, is_v4mapped


def _dual(sock: ModelSocket) -> bool:
    return (
        sock.family == "inet6"
        and not sock.v6only
        and not is_v4mapped(sock)
        and ipaddress.ip_address(sock.address).is_unspecified
    )


def _cross_user(old: ModelSocket, new: ModelSocket, met: Meeting) -> bool | None:
    """An unprivileged socket over another user's, per stack and per bind path.

    IPv6 (bsd/netinet6/in6_pcb.c in6_pcbbind(), first lookup): EADDRINUSE
    unless both addresses are wildcards and the old socket has SO_REUSEPORT.
    The IPv4 half of a dual-stack [::] bind (same function, the lookup after
    in6_sin6_2_sin()): EADDRINUSE unless the old socket has SO_REUSEPORT or is
    an AF_INET socket on 0.0.0.0 ("t->inp_laddr.s_addr != INADDR_ANY ||
    SOCK_DOM(so) == SOCK_DOM(t->inp_socket)"). AF_INET and v4-mapped binds
    (bsd/netinet/in_pcb.c in_pcbbind()): EADDRINUSE unless both addresses are
    wildcards ("SIN(nam)->sin_addr.s_addr != INADDR_ANY || t->inp_laddr.s_addr
    != INADDR_ANY"). The lookups there also return connected PCBs, so a live
    connection of another user is not derived (None)."""
    if old.state in CONNECTED or old.state == "time-wait":
        return None
    both_wildcard = met.old_wildcard and met.new_wildcard
    if met.stack == "v6":
        return both_wildcard and old.has(RP)
    if _dual(new):
        return old.has(RP) or (old.family == "inet" and met.old_wildcard)
    return both_wildcard


def bind(existing: Sequence[ModelSocket], new: ModelSocket, history: Sequence[Event] = ()) -> str:
    del history  # no order dependence is derived for this OS
    # Row "exact duplicate": RP on both (macOS has no SO_REUSEPORT_LB).
    return bsd.bind(existing, new, (RP,), _cross_user)


listen = bsd.listen
