"""Run one cell with real sockets and record what every system call did.

Nothing here is simulated: each step is a real socket()/setsockopt()/bind()/
listen()/close() on the host, and every socket is closed whatever happens.
"""

from __future__ import annotations

import errno
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from .host import Host
from .model import ROLES, Cell, Profile, SocketSpec

FAMILIES = {"inet": socket.AF_INET, "inet6": getattr(socket, "AF_INET6", -1)}
TYPES = {"stream": socket.SOCK_STREAM, "dgram": socket.SOCK_DGRAM}
WILDCARD = {"inet": "0.0.0.0", "inet6": "::"}

# errno names (POSIX) and their Winsock twins, folded into the case vocabulary.
_NORMALISED = {
    "INUSE": ("EADDRINUSE", "WSAEADDRINUSE"),
    "ACCESS": ("EACCES", "WSAEACCES"),
    "ADDRNOTAVAIL": ("EADDRNOTAVAIL", "WSAEADDRNOTAVAIL"),
    "INVAL": ("EINVAL", "WSAEINVAL"),
    "NOTSUP": ("ENOPROTOOPT", "WSAENOPROTOOPT", "EOPNOTSUPP", "WSAEOPNOTSUPP", "ENOTSUP"),
}
_WINSOCK_CODES = {
    10048: "WSAEADDRINUSE",
    10013: "WSAEACCES",
    10049: "WSAEADDRNOTAVAIL",
    10022: "WSAEINVAL",
    10042: "WSAENOPROTOOPT",
    10045: "WSAEOPNOTSUPP",
}
NOT_RUN = "not-run"
OTHER = "OTHER"


def error_name(code: int) -> str:
    return _WINSOCK_CODES.get(code) or errno.errorcode.get(code, f"errno {code}")


def normalise(exc: OSError) -> tuple[str, int, str]:
    """(outcome, errno, raw name) of a failed call."""
    code = getattr(exc, "winerror", None) or exc.errno or 0
    name = error_name(code)
    for outcome, names in _NORMALISED.items():
        if name in names:
            return outcome, code, name
    return OTHER, code, name


@dataclass(frozen=True)
class PlannedSocket:
    """A socket as it will really be created on this host."""

    name: str
    family: str
    type: str
    v6only: bool | None
    options: tuple[str, ...]  # concrete option names
    address: str  # literal
    roles: tuple[str, ...]  # options as the case wrote them
    address_role: str

    def to_dict(self, state: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "type": self.type,
            "v6only": self.v6only,
            "options": list(self.options),
            "roles": list(self.roles),
            "address": self.address,
            "address_role": self.address_role,
            "state": state,
        }


@dataclass
class StepRecord:
    socket: str
    call: str
    outcome: str
    errno: int = 0
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "socket": self.socket,
            "call": self.call,
            "outcome": self.outcome,
            "errno": self.errno,
            "error": self.error,
        }


@dataclass
class Observation:
    outcome: str
    steps: list[StepRecord] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    duration: float = 0.0


class Unrunnable(Exception):
    """This host lacks what the cell needs; the message says how to enable it."""


def _os_kind(host: Host) -> str:
    return "windows" if host.os == "windows" else "posix"


def resolve_options(spec: SocketSpec, profile: Profile | None, host: Host) -> tuple[str, ...]:
    out: list[str] = []
    for item in spec.options:
        if item in ROLES:
            names = profile.resolve(item, _os_kind(host)) if profile else ()
        else:
            names = (item,)
        out += [n for n in names if n not in out]
    return tuple(out)


_ADD_IPV4 = {
    "darwin": "sudo ifconfig lo0 alias 127.0.0.2 up",
    "freebsd": "sudo ifconfig lo0 alias 127.0.0.2/32",
    "linux": "sudo ip addr add 127.0.0.2/8 dev lo",
    "windows": "127.0.0.0/8 should answer on loopback; check the firewall",
}


def _missing_address(host: Host, family: str, what: str) -> str:
    if family == "inet":
        return (
            f"needs {what} IPv4 address (127.0.0.2) that this host lacks; "
            f"add it with: {_ADD_IPV4.get(host.os, 'an alias on the loopback interface')}"
        )
    if host.os == "linux":
        how = (
            "run with --bindconform-isolate=netns, or add one: "
            "sudo ip -6 addr add 2001:db8::1/128 dev lo"
        )
    else:
        how = "add a documentation-prefix address (2001:db8::1) to the loopback interface"
    return f"needs {what} IPv6 address besides ::1, which this host lacks; {how}"


def resolve_address(spec: SocketSpec, host: Host) -> str:
    role = spec.address
    if role == "wildcard":
        return WILDCARD[spec.family]
    if role == "v4mapped-wildcard":
        return "::ffff:0.0.0.0"
    if role in ("specific", "specific2"):
        index = 0 if role == "specific" else 1
        found = host.specific(spec.family, index)
        if found is None:
            raise Unrunnable(_missing_address(host, spec.family, "a second" if index else "a"))
        return found
    if role == "v4mapped-specific":
        found = host.specific("inet", 0)
        if found is None:
            raise Unrunnable(_missing_address(host, "inet", "a"))
        return f"::ffff:{found}"
    # a literal: wildcards always exist; a specific one must be on this host
    if role in ("0.0.0.0", "::") or role.startswith("::ffff:"):
        return role
    if role not in host.addresses.get(spec.family, ()):
        raise Unrunnable(
            f"address {role} is not configured on this host; "
            + (_missing_address(host, spec.family, "this") if role not in ("127.0.0.1", "::1") else "")
        )
    return role


_OPTION_HOME = {
    "SO_EXCLUSIVEADDRUSE": "a Windows-only option",
    "SO_REUSEPORT": "not on Windows",
    "SO_REUSEPORT_LB": "FreeBSD only",
    "SO_REUSEADDR": "present on every supported OS",
}


def plan(cell: Cell, profile: Profile | None, host: Host) -> list[PlannedSocket]:
    """Concrete sockets for this host, or Unrunnable with how to enable the cell."""
    planned = []
    for spec in cell.sockets:
        if spec.family == "inet6" and not host.ipv6:
            raise Unrunnable("needs IPv6, which is not available on this host; enable IPv6 on loopback (::1)")
        options = resolve_options(spec, profile, host)
        for name in options:
            if name not in host.options:
                raise Unrunnable(
                    f"{name} does not exist on {host.os} ({_OPTION_HOME.get(name, 'unknown option')}); "
                    "this cell can only run where the OS has it"
                )
        planned.append(
            PlannedSocket(
                name=spec.name,
                family=spec.family,
                type=spec.type,
                v6only=spec.v6only,
                options=options,
                address=resolve_address(spec, host),
                roles=spec.options,
                address_role=spec.address,
            )
        )
    return planned


class _Open:
    """The live sockets of one run; closes them all on exit."""

    def __init__(self) -> None:
        self.socks: dict[str, socket.socket] = {}
        self.dead: dict[str, StepRecord] = {}

    def __enter__(self) -> _Open:
        return self

    def __exit__(self, *exc: object) -> None:
        for s in self.socks.values():
            s.close()


def _call(record: list[StepRecord], sock: str, call: str, fn: Any, *args: Any) -> StepRecord:
    try:
        fn(*args)
        rec = StepRecord(sock, call, "ok")
    except OSError as exc:
        outcome, code, name = normalise(exc)
        rec = StepRecord(sock, call, outcome, code, name)
    record.append(rec)
    return rec


def _create(p: PlannedSocket, live: _Open, record: list[StepRecord]) -> bool:
    try:
        s = socket.socket(FAMILIES[p.family], TYPES[p.type])
    except OSError as exc:
        outcome, code, name = normalise(exc)
        live.dead[p.name] = StepRecord(p.name, "socket", outcome, code, name)
        record.append(live.dead[p.name])
        return False
    live.socks[p.name] = s
    record.append(StepRecord(p.name, "socket", "ok"))
    steps = []
    if p.v6only is not None:
        steps.append(("setsockopt IPV6_V6ONLY", socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(p.v6only)))
    for name in p.options:
        steps.append((f"setsockopt {name}", socket.SOL_SOCKET, getattr(socket, name), 1))
    for call, level, opt, value in steps:
        rec = _call(record, p.name, call, s.setsockopt, level, opt, value)
        if rec.outcome != "ok":
            live.dead[p.name] = rec
            return False
    return True


def run(cell: Cell, planned: list[PlannedSocket], port: int) -> Observation:
    """Execute the cell's steps on a port; the outcome is that of the step under test."""
    start = time.perf_counter()
    by_name = {p.name: p for p in planned}
    record: list[StepRecord] = []
    states = {p.name: "unbound" for p in planned}
    outcome = NOT_RUN
    state_at_test: dict[str, str] = {}
    with _Open() as live:
        for index, step in enumerate(cell.steps):
            if index == cell.under_test:
                state_at_test = dict(states)
            p = by_name[step.socket]
            if step.socket not in live.socks and step.socket not in live.dead:
                _create(p, live, record)
            if step.socket in live.dead:
                rec = StepRecord(step.socket, step.call, NOT_RUN)
                record.append(rec)
                if index == cell.under_test:
                    outcome = live.dead[step.socket].outcome
                continue
            s = live.socks[step.socket]
            if step.call == "bind":
                rec = _call(record, step.socket, "bind", s.bind, (p.address, port))
                if rec.outcome == "ok":
                    states[step.socket] = "bound"
            elif step.call == "listen":
                rec = _call(record, step.socket, "listen", s.listen, 8)
                if rec.outcome == "ok":
                    states[step.socket] = "listening"
            else:  # close
                s.close()
                del live.socks[step.socket]
                live.dead[step.socket] = rec = StepRecord(step.socket, "close", "ok")
                record.append(rec)
                states[step.socket] = "closed"
                continue
            if rec.outcome != "ok":
                live.dead[step.socket] = rec
            if index == cell.under_test:
                outcome = rec.outcome
    return Observation(outcome, record, state_at_test, time.perf_counter() - start)
