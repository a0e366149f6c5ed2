"""What every per-OS module shares: the facts it reports and how it asks the OS.

A platform module reads its host through a `System` (run a command, read a
file, ask uname); the live one asks this machine, a recorded one answers from
outputs recorded on real systems (tests/fixtures/recorded/), so the same
parsing code runs for a real host and for a simulated one.
"""

from __future__ import annotations

import ipaddress
import platform
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

Range = tuple[int, int]

# Every platform module defines these names (tests/test_platforms.py checks it).
API = (
    "NAME",
    "ERRORS",
    "CONNECT_REFUSAL_SECONDS",
    "EPHEMERAL_DEFAULT",
    "connect_limit",
    "prepare_connect",
    "rst_linger",
    "is_admin",
    "facts",
    "other_user_problem",
    "owner_starter",
    "open_sockets",
    "enter_isolation",
)


class OwnerProcess(Protocol):
    """A helper process holding sockets for the pool (ownerpool.py): JSON lines both ways.
    One may also offer follow(), called before each request (Linux: platforms/_posix.py)."""

    rfile: IO[str]
    wfile: IO[str]

    def kill(self) -> None: ...

    def close(self) -> None: ...


class Starter(Protocol):
    """Starts helpers of one owner kind (owner_starter() of each platform module)."""

    def start(self) -> OwnerProcess: ...

    def close(self) -> None: ...


class System(Protocol):
    def run(self, argv: Sequence[str]) -> str:
        """stdout of a command, '' when it cannot run."""
        ...

    def read(self, path: str) -> str | None: ...

    def uname(self) -> tuple[str, str, str, str]:
        """(system, release, version, machine) as platform.uname() gives them."""
        ...


class LiveSystem:
    """This machine."""

    def run(self, argv: Sequence[str]) -> str:
        try:
            done = subprocess.run(list(argv), capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout

    def read(self, path: str) -> str | None:
        try:
            return Path(path).read_text()
        except OSError:
            return None

    def uname(self) -> tuple[str, str, str, str]:
        u = platform.uname()
        return u.system, u.release, u.version, u.machine


@dataclass(frozen=True)
class Facts:
    """What a platform module reads from its host (everything but what a bind proves)."""

    os: str
    os_release: str  # for people: 'Ubuntu 24.04', '14.5', '14.1-RELEASE'
    os_version: str  # what oracle version ranges compare against
    kernel: str
    machine: str
    sysctl: dict[str, str] = field(default_factory=dict)
    excluded_ports: tuple[Range, ...] = ()
    ephemeral_ports: Range | None = None
    # loopback addresses the OS reports (ifconfig); None: not read, a bind decides
    addresses: dict[str, tuple[str, ...]] | None = None


def parse_sysctl(text: str) -> dict[str, str]:
    """`sysctl a b` on the BSDs prints 'name: value' lines (Linux: 'name = value')."""
    values = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*[:=]\s*(.*?)\s*$", line)
        if m:
            values[m.group(1)] = " ".join(m.group(2).split())
    return values


def sysctl_range(values: dict[str, str], first: str, last: str) -> Range | None:
    lo, hi = values.get(first, ""), values.get(last, "")
    if lo.isdigit() and hi.isdigit() and 0 < int(lo) <= int(hi) <= 65535:
        return int(lo), int(hi)
    return None


def parse_uname_a(text: str) -> tuple[str, str, str, str] | None:
    """`uname -a`: 'Darwin host 23.5.0 Darwin Kernel Version 23.5.0: … arm64'."""
    parts = text.split()
    if len(parts) < 4:
        return None
    return parts[0], parts[2], " ".join(parts[3:-1]), parts[-1]


def parse_ifconfig(text: str, interface: str = "lo0") -> dict[str, tuple[str, ...]]:
    """Addresses of one interface in BSD `ifconfig` output ('inet 127.0.0.1 netmask …',
    'inet6 ::1 prefixlen 128', 'inet6 fe80::1%lo0 …' — link-local ones are left out:
    a test address must be bindable without a scope)."""
    found: dict[str, list[str]] = {"inet": [], "inet6": []}
    current = ""
    for line in text.splitlines():
        head = re.match(r"^([A-Za-z0-9_.]+):\s+flags=", line)
        if head:
            current = head.group(1)
            continue
        words = line.split()
        if current != interface or len(words) < 2 or words[0] not in found:
            continue
        address = words[1].split("%")[0]
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if not ip.is_link_local:
            found[words[0]].append(str(ip))
    return {k: tuple(v) for k, v in found.items()}


MARGIN_SECONDS = 1.0


def connect_limit(requested: float, refusal: float, shortened: bool) -> tuple[float, str]:
    """The timeout a blocking connect gets, and why: it must outlast the time the OS
    itself takes to refuse a loopback connect, or a refusal is misread as TIMEOUT."""
    if refusal <= 0 or shortened:
        why = "SIO_TCP_INITIAL_RTO: no SYN retransmissions" if shortened else "probe limit"
        return requested, f"{why} ({requested:g} s; this OS refuses a loopback connect at once)"
    seconds = max(requested, refusal + MARGIN_SECONDS)
    return seconds, (
        f"OS retry time: this OS refuses a loopback connect only after ~{refusal:g} s of SYN "
        f"retries (libuv PR #2896), so the limit is {seconds:g} s"
    )
