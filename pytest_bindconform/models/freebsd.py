"""FreeBSD 14/15 bind()/listen() rules: derived, never run.

Source: shared/reference/posix-semantics.md, column "FreeBSD 14/15 (derived)";
the shared in_pcbbind() logic is in bsd.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import bsd
from .base import RP, RPLB, Event, Meeting, ModelSocket


def _cross_user(old: ModelSocket, new: ModelSocket, met: Meeting) -> bool:
    # Row "different users": an unprivileged socket never overlaps another
    # user's socket (the model's users are unprivileged).
    del old, new, met
    return False


def bind(existing: Sequence[ModelSocket], new: ModelSocket, history: Sequence[Event] = ()) -> str:
    del history  # no order dependence is derived for this OS
    # Row "exact duplicate": RP on both, or RPLB on both.
    return bsd.bind(existing, new, (RP, RPLB), _cross_user)


listen = bsd.listen
