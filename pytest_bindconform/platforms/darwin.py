"""macOS: sw_vers, sysctl net.inet.ip.portrange.*, ifconfig lo0, errno of xnu sys/errno.h."""

from __future__ import annotations

import re
from typing import Any

from . import _bsd
from ._common import Facts, System, parse_uname_a
from ._common import connect_limit as _limit
from ._posix import is_admin, open_sockets, other_user_problem, owner_starter, rst_linger

NAME = "darwin"
ERRORS = {
    "INUSE": ("EADDRINUSE", 48),
    "ACCESS": ("EACCES", 13),
    "ADDRNOTAVAIL": ("EADDRNOTAVAIL", 49),
    "INVAL": ("EINVAL", 22),
    "NOTSUP": ("EOPNOTSUPP", 102),
    "REFUSED": ("ECONNREFUSED", 61),
    "TIMEOUT": ("ETIMEDOUT", 60),
}
CONNECT_REFUSAL_SECONDS = 0.0
EPHEMERAL_DEFAULT = (49152, 65535)  # as recorded (sysctl-portrange.txt): the IANA dynamic range
SW_VERS = ("sw_vers",)
UNAME = ("uname", "-a")


def connect_limit(requested: float, shortened: bool = False) -> tuple[float, str]:
    return _limit(requested, CONNECT_REFUSAL_SECONDS, shortened)


def prepare_connect(sock: Any) -> bool:
    del sock
    return False


def parse_sw_vers(text: str) -> tuple[str, str]:
    """(product name, version) of `sw_vers`: 'ProductName:\tmacOS', 'ProductVersion:\t14.5'."""
    fields = dict(
        (m.group(1), m.group(2).strip())
        for m in re.finditer(r"^\s*(\w+):\s*(.*)$", text, re.MULTILINE)
    )
    return fields.get("ProductName", ""), fields.get("ProductVersion", "")


def facts(system: System) -> Facts:
    sysname, release, _, machine = parse_uname_a(system.run(UNAME)) or system.uname()
    product, version = parse_sw_vers(system.run(SW_VERS))
    sysctl, ephemeral = _bsd.ephemeral(system)
    return Facts(
        os=NAME,
        os_release=version or release,
        os_version=version or release,
        kernel=f"{sysname} {release}",
        machine=machine,
        sysctl=sysctl,
        ephemeral_ports=ephemeral,
        addresses=_bsd.loopback(system),
    )


def enter_isolation() -> list[str]:
    return _bsd.no_isolation("macOS")


__all__ = [
    "is_admin",
    "other_user_problem",
    "rst_linger",
    "owner_starter",
    "open_sockets",
    "parse_sw_vers",
]
