"""Linux: /proc/sys, network namespaces, errno values of asm-generic/errno.h."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from . import _posix
from ._common import Facts, Starter, System
from ._common import connect_limit as _limit
from ._posix import is_admin, open_sockets, other_user_problem, rst_linger

NAME = "linux"
ERRORS = {
    "INUSE": ("EADDRINUSE", 98),
    "ACCESS": ("EACCES", 13),
    "ADDRNOTAVAIL": ("EADDRNOTAVAIL", 99),
    "INVAL": ("EINVAL", 22),
    "NOTSUP": ("EOPNOTSUPP", 95),
    "REFUSED": ("ECONNREFUSED", 111),
    "TIMEOUT": ("ETIMEDOUT", 110),
}
CONNECT_REFUSAL_SECONDS = 0.0  # an RST answers the SYN at once on loopback
# ip_local_port_range's default (Documentation/networking/ip-sysctl.rst), if /proc is unreadable
EPHEMERAL_DEFAULT = (32768, 60999)
SYSCTLS = (
    ("net.ipv6.bindv6only", "net/ipv6/bindv6only"),
    ("net.ipv4.ip_local_port_range", "net/ipv4/ip_local_port_range"),
    ("net.ipv4.ip_unprivileged_port_start", "net/ipv4/ip_unprivileged_port_start"),
    ("net.ipv4.tcp_timestamps", "net/ipv4/tcp_timestamps"),  # connect() over a TIME_WAIT
)


def connect_limit(requested: float, shortened: bool = False) -> tuple[float, str]:
    return _limit(requested, CONNECT_REFUSAL_SECONDS, shortened)


def prepare_connect(sock: Any) -> bool:
    del sock
    return False


def parse_port_range(text: str) -> tuple[int, int] | None:
    """/proc/sys/net/ipv4/ip_local_port_range: '32768\t60999'."""
    parts = text.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def facts(system: System) -> Facts:
    sysname, release, _, machine = system.uname()
    sysctl = {}
    for key, path in SYSCTLS:
        value = system.read(f"/proc/sys/{path}")
        if value is not None:
            sysctl[key] = " ".join(value.split())
    pretty = release
    os_release = system.read("/etc/os-release") or system.read("/usr/lib/os-release") or ""
    for line in os_release.splitlines():
        if line.startswith("PRETTY_NAME="):
            pretty = line.partition("=")[2].strip().strip('"')
    return Facts(
        os=NAME,
        os_release=pretty,
        os_version=release,
        kernel=f"{sysname} {release}",
        machine=machine,
        sysctl=sysctl,
        ephemeral_ports=parse_port_range(sysctl.get("net.ipv4.ip_local_port_range", "")),
    )


def owner_starter(owner: str) -> Starter:
    """A zygote (_posix.py) whose helpers follow the CPU of the process they serve."""
    return _posix.Zygote(owner, colocate=colocate if _current_cpu() is not None else None)


_GETCPU: list[Callable[[], int] | None] = []  # libc's sched_getcpu(3), looked up once


def _current_cpu() -> Callable[[], int] | None:
    if not _GETCPU:
        try:
            import ctypes

            getcpu = ctypes.CDLL(None, use_errno=True).sched_getcpu
            getcpu.restype, getcpu.argtypes = ctypes.c_int, []
        except (ImportError, OSError, AttributeError):  # no ctypes, no such libc function
            getcpu = None
        _GETCPU.append(getcpu)
    return _GETCPU[0]


def colocate(pid: int, where: int | None) -> int | None:
    """Pin helper `pid` to the CPU this process runs on now, unless it is there already:
    one sched_getcpu() per request, a sched_setaffinity() only after this process moved.
    Where the helper may not be moved (EPERM), it runs where the kernel puts it."""
    getcpu = _current_cpu()
    cpu = getcpu() if getcpu is not None else -1
    if cpu < 0 or cpu == where:
        return where
    with contextlib.suppress(OSError):
        getattr(os, "sched_setaffinity")(pid, {cpu})  # noqa: B009 (Linux only)
    return cpu


def enter_isolation() -> list[str]:
    from ..isolate import enter_netns

    return enter_netns()


__all__ = ["is_admin", "other_user_problem", "rst_linger", "owner_starter", "open_sockets"]
