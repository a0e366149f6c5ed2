"""Executable bind models, one per OS family: an oracle in their own right.

`predict` says what the next bind() or listen() returns given the sockets
already on the port; its answers are predictions (oracle kind 'model'), never
documented or measured expectations, and reports must say so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import darwin, freebsd, linux, windows
from .base import OS_OPTIONS, UNKNOWN, V6ONLY_DEFAULT, Event, ModelSocket, common
from .delivery import predict_delivery

Rule = Callable[[Sequence[ModelSocket], ModelSocket, Sequence[Event]], str]
Model = Callable[[Sequence[ModelSocket], ModelSocket, str, Sequence[Event]], str]
"""(existing, new, call, history) -> outcome: what explore.run() compares with."""

_RULES: dict[str, tuple[Rule, Rule]] = {
    "linux": (linux.bind, linux.listen),
    "freebsd": (freebsd.bind, freebsd.listen),
    "darwin": (darwin.bind, darwin.listen),
    "windows": (windows.bind, windows.listen),
}
OS_FAMILIES = tuple(_RULES)


def predict(
    os_family: str,
    existing: Sequence[ModelSocket],
    new: ModelSocket,
    call: str,
    history: Sequence[Event] = (),
) -> str:
    """Outcome of `call` ('bind' or 'listen') on `new`, in the case vocabulary
    (ok, INUSE, ACCESS, ADDRNOTAVAIL, INVAL, NOTSUP), or 'unknown' where the model
    has no rule. existing: the other sockets on the port, in bind order.
    history: the successful binds, listens and closes so far, in order (the
    Linux model needs it for TCP; without it, it assumes bind order)."""
    if call not in ("bind", "listen"):
        raise ValueError(f"the models predict bind and listen, not {call!r}")
    bind, listen = _RULES[os_family]
    others = [s for s in existing if s is not new]
    shared = common(new, call, os_family)
    if shared is not None:
        return shared
    return (bind if call == "bind" else listen)(others, new, history)


def for_os(os_family: str) -> Model:
    """`predict` bound to one OS."""
    if os_family not in _RULES:
        raise ValueError(f"no model for {os_family!r}; models: {', '.join(_RULES)}")

    def model(
        existing: Sequence[ModelSocket], new: ModelSocket, call: str, history: Sequence[Event]
    ) -> str:
        return predict(os_family, existing, new, call, history)

    return model


__all__ = [
    "OS_FAMILIES",
    "OS_OPTIONS",
    "UNKNOWN",
    "V6ONLY_DEFAULT",
    "Event",
    "Model",
    "ModelSocket",
    "for_os",
    "predict",
    "predict_delivery",
]
