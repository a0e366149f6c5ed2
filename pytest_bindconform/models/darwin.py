"""macOS (xnu) bind()/listen() rules: derived, never run.

Source: shared/reference/posix-semantics.md, column "macOS / xnu (derived)";
the in_pcbbind() logic xnu shares with FreeBSD is in bsd.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import bsd
from .base import RP, Event, Meeting, ModelSocket


def _cross_user(old: ModelSocket, new: ModelSocket, met: Meeting) -> bool:
    # Row "different users": no overlap if either address is specific (the
    # model's users are unprivileged). Both wildcard: xnu's uid test does not
    # fire (in_pcbbind(): its last term "(SIN(nam)->sin_addr.s_addr !=
    # INADDR_ANY || t->inp_laddr.s_addr != INADDR_ANY)"), so the same-user rules
    # decide: an exact duplicate needs RP on both (the row's "both W with RP on
    # both is allowed"), and the v4-mapped exemption in bsd.py applies.
    del old, new
    return met.old_wildcard and met.new_wildcard


def bind(existing: Sequence[ModelSocket], new: ModelSocket, history: Sequence[Event] = ()) -> str:
    del history  # no order dependence is derived for this OS
    # Row "exact duplicate": RP on both (macOS has no SO_REUSEPORT_LB).
    return bsd.bind(existing, new, (RP,), _cross_user)


listen = bsd.listen
