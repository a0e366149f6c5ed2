"""Linux: /proc/sys, network namespaces, errno values of asm-generic/errno.h."""

from __future__ import annotations

from typing import Any

from ._common import Facts, System
from ._common import connect_limit as _limit
from ._posix import is_admin, open_sockets, other_user_problem, owner_starter, rst_linger

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


def enter_isolation() -> list[str]:
    from ..isolate import enter_netns

    return enter_netns()


__all__ = ["is_admin", "other_user_problem", "rst_linger", "owner_starter", "open_sockets"]
