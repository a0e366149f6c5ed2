"""Hermetic runs on Linux: move this process into a private network namespace.

Inside it nothing else on the machine can hold or take a port, and addresses
the host lacks (a second IPv6 address for `specific2`) can be added. The
namespace is entered before xdist starts its workers, so they inherit it.
Configuration uses ioctl() directly: no dependency on iproute2.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import os
import socket
import struct
import time
from typing import Any

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCSIFADDR = 0x8913, 0x8914, 0x8916
IFF_UP = 0x1
IPV6_ADDRESSES = ("2001:db8::1", "2001:db8::2")  # documentation prefix (RFC 3849)
IPV4_ADDRESSES = ("127.0.0.2",)  # inside 127.0.0.0/8, routed to lo once lo is up


class IsolationUnavailable(Exception):
    """Namespaces are not permitted here; the message says why."""


def _unshare(flags: int) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise IsolationUnavailable(f"unshare() failed: {os.strerror(err)}")


def _map_ids(uid: int, gid: int) -> None:
    """Become root of the new user namespace, so lo can be configured."""
    with open("/proc/self/setgroups", "w") as fh:
        fh.write("deny")
    with open("/proc/self/uid_map", "w") as fh:
        fh.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as fh:
        fh.write(f"0 {gid} 1")


def _fcntl() -> Any:
    """Unix only; imported when used, so that Windows loads the plugin (platforms/linux.py
    is the only caller of this module)."""
    return importlib.import_module("fcntl")


def _loopback_up() -> None:
    fcntl = _fcntl()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


def _add_ipv6(address: str) -> None:
    fcntl = _fcntl()
    index = socket.if_nametoindex("lo")
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        in6_ifreq = socket.inet_pton(socket.AF_INET6, address) + struct.pack("Ii", 128, index)
        fcntl.ioctl(s, SIOCSIFADDR, in6_ifreq)


def _no_dad() -> None:
    """Duplicate address detection would leave new addresses tentative (unbindable) a while."""
    try:
        with open("/proc/sys/net/ipv6/conf/lo/accept_dad", "w") as fh:
            fh.write("0")
    except OSError:
        pass  # then _wait_bindable covers it


def _wait_bindable(addresses: tuple[str, ...], limit: float = 2.0) -> None:
    deadline = time.monotonic() + limit
    for address in addresses:
        while True:
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
                    s.bind((address, 0))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise IsolationUnavailable(f"{address} never became usable") from None
                time.sleep(0.005)


def enter_netns() -> list[str]:
    """Enter a fresh network namespace with loopback up; return the addresses added.
    Linux only: reached through platforms.linux.enter_isolation()."""
    uid, gid = getattr(os, "geteuid")(), getattr(os, "getegid")()  # noqa: B009 (POSIX only)
    try:
        if uid == 0:
            _unshare(CLONE_NEWNET)
        else:
            # an unprivileged user may create a network namespace inside its own user namespace
            _unshare(CLONE_NEWUSER | CLONE_NEWNET)
            _map_ids(uid, gid)
        _loopback_up()
        added = list(IPV4_ADDRESSES)
        if socket.has_ipv6:
            _no_dad()
            for address in IPV6_ADDRESSES:
                _add_ipv6(address)
                added.append(address)
            _wait_bindable(IPV6_ADDRESSES)
    except OSError as exc:
        raise IsolationUnavailable(f"could not set up the namespace: {exc}") from None
    return added
