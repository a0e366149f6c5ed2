"""From a cell as written to sockets as this host will create them.

Roles become concrete option names (through the profile) and literal
addresses; whatever the host lacks becomes Unrunnable with a reason that says
how to enable the cell, so an unknown is never mistaken for a pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from . import locality, slow
from .host import Host, can_bind
from .memo import Memo
from .model import ROLES, Cell, Profile, SocketSpec
from .owner import OwnerUnavailable, other_user_ids

T = TypeVar("T")

WILDCARD = {"inet": "0.0.0.0", "inet6": "::"}


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
    owner: str = "self"  # as run: 'unprivileged' is resolved to self or other-user
    port: str = ""  # the socket's own port role (model.PORT_ROLES), '' for the cell's port

    def to_dict(self, state: str) -> dict[str, Any]:
        own = {"port_role": self.port} if self.port else {}
        return {
            "name": self.name,
            "family": self.family,
            "type": self.type,
            "v6only": self.v6only,
            "options": list(self.options),
            "roles": list(self.roles),
            "address": self.address,
            "address_role": self.address_role,
            "owner": self.owner,
            "state": state,
            **own,
        }


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
    """The literal address of a socket on this host (or on a model's host)."""
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
    # a literal: wildcards always exist; a multicast group is bindable on every OS; the
    # IPv4 address inside a v4-mapped one, or any other address, must be on this host
    if role in ("0.0.0.0", "::", "::ffff:0.0.0.0") or locality.is_multicast(role):
        return role
    ip = locality.parse(role)
    inner_family, inner = spec.family, role
    if ip is not None and locality.unmapped(ip) != ip:
        inner_family, inner = "inet", str(locality.unmapped(ip))
    if inner not in host.addresses.get(inner_family, ()) and not address_exists(
        inner_family, inner
    ):
        raise Unrunnable(
            f"needs the address {inner}, which is not configured on this host; "
            + locality.advice(inner, inner_family, host.os)
        )
    return role


def local_address(spec: SocketSpec, host: Host) -> str:
    """resolve_address(), proved to be this host's before any socket call can send to it."""
    address = resolve_address(spec, host)
    why = locality.not_local(address)
    if why:
        raise Unrunnable(
            f"the address {address} cannot be used: {why}, so traffic to it could leave "
            f"this host; {locality.advice(address, spec.family, host.os)}"
        )
    return address


# an address either exists for the whole run or it does not: probe each once
address_exists = cache(can_bind)


_OPTION_HOME = {
    "SO_EXCLUSIVEADDRUSE": "a Windows-only option",
    "SO_REUSEPORT": "not on Windows",
    "SO_REUSEPORT_LB": "FreeBSD only",
    "SO_REUSEADDR": "present on every supported OS",
}


def _require_options(options: tuple[str, ...], host: Host) -> None:
    for name in options:
        if name in _OPTION_HOME and name not in host.options:
            raise Unrunnable(
                f"{name} does not exist on {host.os} "
                f"({_OPTION_HOME.get(name, 'unknown option')}); "
                "this cell can only run where the OS has it"
            )


def unprivileged_owner(host: Host) -> str:
    """Who holds an 'unprivileged' socket: this process when the run has no privileges,
    else a child that drops them (POSIX: setuid to 'nobody'; Windows: a second account)."""
    return "other-user" if host.admin else "self"


_PLANS: Memo[tuple[PlannedSocket, ...] | str] = Memo()
_SOCKETS: Memo[PlannedSocket | str] = Memo()


def plan(cell: Cell, profile: Profile | None, host: Host) -> list[PlannedSocket]:
    """Concrete sockets for this host, or Unrunnable with how to enable the cell.

    Cells of a case file share their sockets and steps (cases._shared) and the host does
    not change during a run, so each shape is planned once per host (memo.py)."""
    if slow.ceiling() is None and slow.is_slow(cell):
        raise Unrunnable(slow.off_reason())
    shape = (host, profile, cell.sockets, cell.steps)
    planned: tuple[PlannedSocket, ...] = _once(
        _PLANS, shape, lambda: tuple(_plan(cell, profile, host))
    )
    return list(planned)


def _once(memo: Memo[T | str], objects: tuple[Any, ...], make: Callable[[], T], *values: Any) -> T:
    """make()'s value once per objects (and values); an Unrunnable is kept as its reason,
    and raised again each time it is asked for."""

    def made() -> T | str:
        try:
            return make()
        except Unrunnable as exc:
            return str(exc)

    value = memo.get(objects, made, *values)
    if isinstance(value, str):
        raise Unrunnable(value)
    return value


def _plan(cell: Cell, profile: Profile | None, host: Host) -> list[PlannedSocket]:
    for step in cell.steps:  # an option set by a later 'setsockopt' step must exist too
        if step.call == "setsockopt":
            spec = SocketSpec(step.socket, "inet", "stream", None, (step.argument,), "wildcard")
            _require_options(resolve_options(spec, profile, host), host)
    planned = [_socket(spec, profile, host) for spec in cell.sockets]
    names = {spec.name for spec in cell.sockets}
    for step in cell.steps:  # a connect to an address role: proved local before any send
        if step.call == "connect" and step.argument and step.argument not in names:
            family = cell.socket(step.socket).family if step.socket in names else "inet"
            local_address(SocketSpec(step.socket, family, "stream", None, (), step.argument), host)
    return planned


def _socket(spec: SocketSpec, profile: Profile | None, host: Host) -> PlannedSocket:
    """One socket's plan: the library's cells are nearly all different, but their sockets
    are a few hundred specs, planned once per profile and host (by value: case files
    repeat each other's sockets too)."""
    return _once(_SOCKETS, (host, profile), lambda: _plan_socket(spec, profile, host), spec)


def _plan_socket(spec: SocketSpec, profile: Profile | None, host: Host) -> PlannedSocket:
    owner = unprivileged_owner(host) if spec.owner == "unprivileged" else spec.owner
    if owner == "other-user":
        try:
            other_user_ids()
        except OwnerUnavailable as exc:
            raise Unrunnable(str(exc)) from None
    if spec.family == "inet6" and not host.ipv6:
        raise Unrunnable(
            "needs IPv6, which is not available on this host; enable IPv6 on loopback (::1)"
        )
    options = resolve_options(spec, profile, host)
    _require_options(options, host)
    return PlannedSocket(
        name=spec.name,
        family=spec.family,
        type=spec.type,
        v6only=spec.v6only,
        options=options,
        address=local_address(spec, host),
        roles=spec.options,
        address_role=spec.address,
        owner=owner,
        port=spec.port,
    )
