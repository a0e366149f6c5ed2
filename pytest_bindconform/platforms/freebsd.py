"""FreeBSD: freebsd-version, sysctl net.inet.ip.portrange.*, ifconfig lo0, sys/errno.h."""

from __future__ import annotations

import re
from typing import Any

from . import _bsd
from ._common import Facts, System
from ._common import connect_limit as _limit
from ._posix import is_admin, open_sockets, other_user_problem, owner_starter, rst_linger

NAME = "freebsd"
ERRORS = {
    "INUSE": ("EADDRINUSE", 48),
    "ACCESS": ("EACCES", 13),
    "ADDRNOTAVAIL": ("EADDRNOTAVAIL", 49),
    "INVAL": ("EINVAL", 22),
    "NOTSUP": ("EOPNOTSUPP", 45),
    "REFUSED": ("ECONNREFUSED", 61),
    "TIMEOUT": ("ETIMEDOUT", 60),
}
CONNECT_REFUSAL_SECONDS = 0.0
EPHEMERAL_DEFAULT = (10000, 65535)  # netinet/in.h IPPORT_EPHEMERALFIRST..IPPORT_EPHEMERALLAST
FREEBSD_VERSION = ("freebsd-version",)  # the userland's version (uname tells the kernel's)
UNAME = {"system": ("uname", "-s"), "release": ("uname", "-r"), "machine": ("uname", "-p")}


def connect_limit(requested: float, shortened: bool = False) -> tuple[float, str]:
    return _limit(requested, CONNECT_REFUSAL_SECONDS, shortened)


def prepare_connect(sock: Any) -> bool:
    del sock
    return False


def parse_freebsd_version(text: str) -> str:
    """`freebsd-version` prints the userland's version ('14.1-RELEASE-p5'), which moves
    with freebsd-update where the kernel's may not; with -ku the last line is the userland's."""
    found = re.findall(r"^\s*(\d+\.\d+-[A-Z]+[\w.-]*)\s*$", text, re.MULTILINE)
    return found[-1] if found else ""


def numeric_version(release: str) -> str:
    """'14.1-RELEASE-p5' -> '14.1', what oracle version ranges compare against."""
    m = re.match(r"(\d+(?:\.\d+)*)", release)
    return m.group(1) if m else release


def facts(system: System) -> Facts:
    live = system.uname()
    sysname, release, machine = (
        system.run(UNAME[k]).strip() or live[i]
        for i, k in ((0, "system"), (1, "release"), (3, "machine"))
    )
    userland = parse_freebsd_version(system.run(FREEBSD_VERSION)) or release
    sysctl, ephemeral = _bsd.ephemeral(system)
    return Facts(
        os=NAME,
        os_release=userland,
        os_version=numeric_version(release),
        kernel=f"{sysname} {release}",
        machine=machine,
        sysctl=sysctl,
        ephemeral_ports=ephemeral,
        addresses=_bsd.loopback(system),
    )


def enter_isolation() -> list[str]:
    return _bsd.no_isolation("FreeBSD")


__all__ = ["is_admin", "other_user_problem", "rst_linger", "owner_starter", "open_sockets"]
