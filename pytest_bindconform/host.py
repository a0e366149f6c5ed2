"""The host fingerprint: what a verdict depends on, computed once per run.

Everything here is read from the real OS (a bind to port 0 proves an address
exists); the result is plain data so it can travel to xdist workers and into
reports unchanged.
"""

from __future__ import annotations

import platform
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

from . import platforms

IPV4_SPECIFIC = ("127.0.0.1", "127.0.0.2")
# Documentation prefix only (RFC 3849): a run never touches a real network.
IPV6_SPECIFIC = ("::1", "2001:db8::1", "2001:db8::2")


def os_family() -> str:
    return platforms.NAME


def can_bind(family: str, address: str) -> bool:
    """A bind to port 0 proves the address is configured here."""
    try:
        with socket.socket(
            socket.AF_INET if family == "inet" else socket.AF_INET6, socket.SOCK_DGRAM
        ) as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False


def _v6only_default() -> bool | None:
    if not socket.has_ipv6:
        return None
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            return bool(s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
    except OSError:
        return None


OPTION_NAMES = ("SO_REUSEADDR", "SO_REUSEPORT", "SO_REUSEPORT_LB", "SO_EXCLUSIVEADDRUSE")


def available_options() -> list[str]:
    """Options this OS defines (a missing constant means the OS lacks it)."""
    return [n for n in OPTION_NAMES if hasattr(socket, n)]


@dataclass(frozen=True)
class Host:
    os: str
    os_release: str
    os_version: str  # what oracle version ranges compare against
    kernel: str
    machine: str
    python: str
    admin: bool
    ipv6: bool
    v6only_default: bool | None
    options: tuple[str, ...]
    addresses: dict[str, tuple[str, ...]]  # family -> specific addresses that exist
    sysctl: dict[str, str] = field(default_factory=dict)
    isolation: str = "host"
    # Windows: port ranges reserved by the OS (Hyper-V, WinNAT...); a bind there is WSAEACCES
    excluded_ports: tuple[tuple[int, int], ...] = ()
    ephemeral_ports: tuple[int, int] | None = None
    # set only by --bindconform-simulate: which stand-in socket layer answered instead of the OS
    simulated: str = ""

    def privileged(self, port: int) -> bool:
        """Would binding this port need privileges this run lacks?"""
        if self.admin:
            return False
        start = self.sysctl.get("net.ipv4.ip_unprivileged_port_start")
        return port < (int(start) if start else 1024) and self.os != "windows"

    def excluded(self, port: int) -> bool:
        return any(lo <= port <= hi for lo, hi in self.excluded_ports)

    def specific(self, family: str, index: int) -> str | None:
        found = self.addresses.get(family, ())
        return found[index] if index < len(found) else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["options"] = list(self.options)
        data["addresses"] = {k: list(v) for k, v in self.addresses.items()}
        data["excluded_ports"] = [list(r) for r in self.excluded_ports]
        data["ephemeral_ports"] = list(self.ephemeral_ports) if self.ephemeral_ports else None
        if not self.simulated:
            del data["simulated"]  # a real run's fingerprint has no such field
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Host:
        data = dict(data)
        data["options"] = tuple(data["options"])
        data["addresses"] = {k: tuple(v) for k, v in data["addresses"].items()}
        data["excluded_ports"] = tuple(tuple(r) for r in data.get("excluded_ports", ()))
        eph = data.get("ephemeral_ports")
        data["ephemeral_ports"] = tuple(eph) if eph else None
        return cls(**data)

    def header(self) -> str:
        """One line with what is needed to reproduce the run."""
        sys_bits = " ".join(f"{k}={v}" for k, v in sorted(self.sysctl.items()))
        v6 = f"ipv6 v6only-default={int(bool(self.v6only_default))}" if self.ipv6 else "no-ipv6"
        addrs = " ".join(f"{k}:{','.join(v) or '-'}" for k, v in sorted(self.addresses.items()))
        return (
            (
                "bindconform: SIMULATED (" + self.simulated + "), not a conformance result: "
                if self.simulated
                else "bindconform: "
            )
            + f"{self.os} {self.os_release} ({self.kernel}, {self.machine}), "
            f"python {self.python}, {'admin' if self.admin else 'unprivileged'}, {v6}, "
            f"options {','.join(self.options) or '-'}, addresses {addrs}"
            + (f", {sys_bits}" if sys_bits else "")
            + f", isolation {self.isolation}"
        )


def fingerprint(isolation: str = "host", probe: bool = True) -> Host:
    """probe=False opens no socket (--collect-only): addresses are then left unknown."""
    facts = platforms.current.facts(platforms.LiveSystem())
    ipv6 = socket.has_ipv6 and (not probe or can_bind("inet6", "::1"))
    addresses = {
        "inet": tuple(a for a in IPV4_SPECIFIC if probe and can_bind("inet", a)),
        "inet6": tuple(a for a in IPV6_SPECIFIC if probe and ipv6 and can_bind("inet6", a)),
    }
    if not probe:
        isolation += " (not probed: --collect-only)"
    return from_facts(
        facts,
        admin=platforms.current.is_admin(),
        ipv6=ipv6,
        v6only_default=_v6only_default() if probe else None,
        options=tuple(available_options()),
        addresses=addresses,
        isolation=isolation,
    )


def from_facts(facts: platforms.Facts, **probed: Any) -> Host:
    """A Host from what the platform module read and what binds proved."""
    return Host(
        os=facts.os,
        os_release=facts.os_release,
        os_version=facts.os_version,
        kernel=facts.kernel,
        machine=facts.machine,
        python=probed.pop("python", platform.python_version()),
        sysctl=dict(facts.sysctl),
        excluded_ports=facts.excluded_ports,
        ephemeral_ports=facts.ephemeral_ports,
        **probed,
    )
