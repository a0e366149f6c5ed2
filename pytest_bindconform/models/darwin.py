"""macOS (xnu) bind()/listen() rules: derived, never run.

Source: shared/reference/posix-semantics.md, column "macOS / xnu (derived)";
the in_pcbbind() logic xnu shares with FreeBSD is in bsd.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import bsd
from .base import RP, Event, Meeting, ModelSocket


def _cross_user(old: ModelSocket, new: ModelSocket, met: Meeting) -> bool:
    # Row "different users": no overlap if either address is specific; both
    # wildcard with RP on both is allowed (the model's users are unprivileged).
    return met.old_wildcard and met.new_wildcard and old.has(RP) and new.has(RP)


def bind(existing: Sequence[ModelSocket], new: ModelSocket, history: Sequence[Event] = ()) -> str:
    del history  # no order dependence is derived for this OS
    # Row "exact duplicate": RP on both (macOS has no SO_REUSEPORT_LB).
    return bsd.bind(existing, new, (RP,), _cross_user)


listen = bsd.listen
