"""The host fingerprint: what a verdict depends on, computed once per run.

Everything here is read from the real OS (a bind to port 0 proves an address
exists); the result is plain data so it can travel to xdist workers and into
reports unchanged.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

IPV4_SPECIFIC = ("127.0.0.1", "127.0.0.2")
# Documentation prefix only (RFC 3849): a run never touches a real network.
IPV6_SPECIFIC = ("::1", "2001:db8::1", "2001:db8::2")


def os_family() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "darwin"
    if sys.platform.startswith("freebsd"):
        return "freebsd"
    return "linux"


def _sysctl(path: str) -> str | None:
    try:
        return Path("/proc/sys", path).read_text().strip()
    except OSError:
        return None


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


def available_options() -> list[str]:
    """Options this OS defines (a missing constant means the OS lacks it)."""
    names = ["SO_REUSEADDR", "SO_REUSEPORT", "SO_REUSEPORT_LB", "SO_EXCLUSIVEADDRUSE"]
    return [n for n in names if hasattr(socket, n)]


def _is_admin() -> bool:
    if sys.platform != "win32":
        return os.geteuid() == 0
    import ctypes

    try:
        return bool(ctypes.windll.shell32.IsUserAnAdmin())
    except OSError:
        return False


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
            f"bindconform: {self.os} {self.os_release} ({self.kernel}, {self.machine}), "
            f"python {self.python}, {'admin' if self.admin else 'unprivileged'}, {v6}, "
            f"options {','.join(self.options) or '-'}, addresses {addrs}"
            + (f", {sys_bits}" if sys_bits else "")
            + f", isolation {self.isolation}"
        )


def parse_excluded_ranges(text: str) -> list[tuple[int, int]]:
    """Rows of `netsh interface ipv4 show excludedportrange` ('Start Port  End Port')."""
    ranges = []
    for line in text.splitlines():
        parts = line.replace("*", " ").split()
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            ranges.append((int(parts[0]), int(parts[1])))
    return ranges


def parse_dynamic_range(text: str) -> tuple[int, int] | None:
    """`netsh int ipv4 show dynamicport tcp`: 'Start Port : 49152', 'Number of Ports : 16384'."""
    numbers = [
        int(line.rsplit(":", 1)[1])
        for line in text.splitlines()
        if ":" in line and line.rsplit(":", 1)[1].strip().isdigit()
    ]
    if len(numbers) < 2:
        return None
    return numbers[0], numbers[0] + numbers[1] - 1


def _netsh(*args: str) -> str:
    import subprocess

    try:
        done = subprocess.run(["netsh", *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout


def _windows_ports() -> tuple[tuple[tuple[int, int], ...], tuple[int, int] | None]:
    excluded: set[tuple[int, int]] = set()
    for ip in ("ipv4", "ipv6"):
        for proto in ("tcp", "udp"):
            excluded.update(
                parse_excluded_ranges(
                    _netsh("interface", ip, "show", "excludedportrange", f"protocol={proto}")
                )
            )
    return tuple(sorted(excluded)), parse_dynamic_range(
        _netsh("int", "ipv4", "show", "dynamicport", "tcp")
    )


def fingerprint(isolation: str = "host", probe: bool = True) -> Host:
    """probe=False opens no socket (--collect-only): addresses are then left unknown."""
    fam = os_family()
    ipv6 = socket.has_ipv6 and (not probe or can_bind("inet6", "::1"))
    addresses = {
        "inet": tuple(a for a in IPV4_SPECIFIC if probe and can_bind("inet", a)),
        "inet6": tuple(a for a in IPV6_SPECIFIC if probe and ipv6 and can_bind("inet6", a)),
    }
    sysctl: dict[str, str] = {}
    if fam == "linux":
        for key, path in (
            ("net.ipv6.bindv6only", "net/ipv6/bindv6only"),
            ("net.ipv4.ip_local_port_range", "net/ipv4/ip_local_port_range"),
            ("net.ipv4.ip_unprivileged_port_start", "net/ipv4/ip_unprivileged_port_start"),
            ("net.ipv4.tcp_timestamps", "net/ipv4/tcp_timestamps"),  # connect() over a TIME_WAIT
        ):
            value = _sysctl(path)
            if value is not None:
                sysctl[key] = " ".join(value.split())
    excluded: tuple[tuple[int, int], ...] = ()
    ephemeral: tuple[int, int] | None = None
    if fam == "windows":
        excluded, ephemeral = _windows_ports()
    elif "net.ipv4.ip_local_port_range" in sysctl:
        lo, hi = sysctl["net.ipv4.ip_local_port_range"].split()
        ephemeral = (int(lo), int(hi))
    release = platform.release()
    version = platform.version()
    if fam == "windows":
        os_version = version  # e.g. 10.0.22631
    elif fam == "darwin":
        os_version = platform.mac_ver()[0] or release
    else:
        os_version = release
    with contextlib.suppress(Exception):
        if fam == "linux":
            release = platform.freedesktop_os_release().get("PRETTY_NAME", release)
    if not probe:
        isolation += " (not probed: --collect-only)"
    return Host(
        os=fam,
        os_release=release,
        os_version=os_version,
        kernel=f"{platform.system()} {platform.release()}",
        machine=platform.machine(),
        python=platform.python_version(),
        admin=_is_admin(),
        ipv6=ipv6,
        v6only_default=_v6only_default() if probe else None,
        options=tuple(available_options()),
        addresses=addresses,
        sysctl=sysctl,
        isolation=isolation,
        excluded_ports=excluded,
        ephemeral_ports=ephemeral,
    )
