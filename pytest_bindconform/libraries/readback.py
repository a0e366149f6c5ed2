"""What a socket really carries, read back from the kernel with getsockopt().

This is the other half of a profile check: the profile says what the library's source
sets, the readback says what the call left on the socket here.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from ..host import available_options
from .factories import factory


@dataclass(frozen=True)
class Readback:
    options: tuple[str, ...]  # raw option names that are on, among those this OS defines
    v6only: bool | None  # IPV6_V6ONLY of an AF_INET6 socket; None for another family


def read(sock: socket.socket) -> Readback:
    on = []
    for name in available_options():
        try:
            value = sock.getsockopt(socket.SOL_SOCKET, getattr(socket, name))
        except OSError:
            continue  # defined but refused for this socket type: not set
        if value:
            on.append(name)
    v6only = None
    if sock.family == getattr(socket, "AF_INET6", None):
        v6only = bool(sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
    return Readback(tuple(on), v6only)


def called(profile_id: str, family: str, type: str, address: str) -> Readback | None:
    """What the real call behind a profile sets here (None: not callable on this host)."""
    make = factory(profile_id)
    if make is None:
        return None
    with make(family, type, address, 0) as sock:
        return read(sock)


def v6only_default(type: int) -> bool | None:
    """IPV6_V6ONLY a fresh AF_INET6 socket of this type gets here (what 'leaves it' means)."""
    if not socket.has_ipv6:
        return None
    with socket.socket(socket.AF_INET6, type) as fresh:
        return read(fresh).v6only
