"""Run one cell with real sockets and record what every system call did.

Nothing here is simulated: each step is a real system call on the host (in
this process, or in a child process when the case gives a socket another
owner), and every socket is closed whatever happens. When several sockets end
up sharing the port, real traffic is sent to find out who receives it.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import ops
from .host import Host
from .model import Cell, Profile, SocketSpec, Step
from .ops import OTHER, RST_LINGER, Executor, error_name, normalise, record
from .owner import Child
from .plan import PlannedSocket, Unrunnable, plan, resolve_address, resolve_options

NOT_RUN = "not-run"
DELIVERY_PROBES = 16  # enough that a two-way load balancer shows both sides (1 - 2**-15)
WILDCARDS = ("0.0.0.0", "::", "::ffff:0.0.0.0")
BATCH = 8  # delivery clients between two drains of the receivers
DELIVERY_WAIT = 0.25  # loopback delivers synchronously; this only bounds a slow host


@dataclass
class Observation:
    outcome: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    delivery: dict[str, Any] | None = None
    connections: bool = False  # TCP connections were made: TIME_WAIT may linger on the port
    duration: float = 0.0


def connectable(address: str, family: str, host: Host) -> str:
    """A wildcard is not a destination: traffic for it goes to this host's loopback."""
    if address in ("0.0.0.0", "::ffff:0.0.0.0"):
        v4 = host.specific("inet", 0) or "127.0.0.1"
        return f"::ffff:{v4}" if family == "inet6" and address.startswith("::ffff:") else v4
    if address == "::":
        return host.specific("inet6", 0) or "::1"
    return address


class Addressed(Protocol):
    @property
    def address(self) -> str: ...
    @property
    def family(self) -> str: ...


def delivery_target(sharing: Sequence[Addressed], host: Host) -> str:
    """Where the delivery probe sends: the most recently bound specific address of the
    sockets sharing the port (the overlap), else loopback for their wildcard."""
    specific = [p.address for p in reversed(sharing) if p.address not in WILDCARDS]
    first = sharing[0]
    return connectable(specific[0] if specific else first.address, first.family, host)


class _Run:
    """The live state of one cell: who holds each socket, socket states, step records."""

    def __init__(
        self,
        cell: Cell,
        planned: list[PlannedSocket],
        port: int,
        profile: Profile | None,
        host: Host,
        factories: dict[str, str] | None = None,
    ):
        self.cell, self.port, self.profile, self.host = cell, port, profile, host
        self.factories = factories or {}  # socket -> factory that makes it (goal candidates)
        self.group = ""  # the multicast group a 'join' step joined: delivery goes there
        self.planned = {p.name: p for p in planned}
        self.local = Executor()
        self.children: dict[str, Child] = {}
        self.where: dict[str, Executor | Child] = {}
        self.states = {p.name: "unbound" for p in planned}
        self.failed: dict[str, dict[str, Any]] = {}  # socket -> the call that made it unusable
        self.steps: list[dict[str, Any]] = []
        self.connections = False

    def holder(self, owner: str) -> Executor | Child:
        if owner == "self":
            return self.local
        if owner not in self.children:
            self.children[owner] = Child(owner)
        return self.children[owner]

    def send(self, name: str, req: dict[str, Any]) -> dict[str, Any]:
        answer = self.where[name].do({"socket": name, **req})
        self.steps.append(answer)
        if answer["outcome"] != "ok":
            self.failed.setdefault(name.split(".")[0], answer)
        return answer

    def create(self, name: str) -> None:
        p = self.planned[name]
        self.where[name] = self.holder(p.owner)
        if name in self.factories:
            return  # the factory makes, configures and binds it at 'bind'
        if self.send(name, {"op": "socket", "family": p.family, "type": p.type})["outcome"] != "ok":
            return
        requests = []
        if p.v6only is not None:
            requests.append({"option": "IPV6_V6ONLY", "value": p.v6only})
        requests += [{"option": option} for option in p.options]
        for req in requests:
            call = f"setsockopt {req['option']}"
            if self.send(name, {"op": "setsockopt", "call": call, **req})["outcome"] != "ok":
                return

    def target(self, step: Step) -> str:
        """Where 'connect X TARGET' goes: another socket's address, or an address role."""
        family = self.planned[step.socket].family
        if step.argument in self.planned:
            address = self.planned[step.argument].address
        else:
            spec = SocketSpec(step.socket, family, "stream", None, (), step.argument)
            address = resolve_address(spec, self.host)
        return connectable(address, family, self.host)

    def step(self, step: Step) -> dict[str, Any]:
        name = step.socket
        base = name.split(".")[0]
        if name == base and name not in self.where and name not in self.failed:
            if self.states.get(name) == "closed":
                self.steps.append(record(name, step.call, NOT_RUN, 0, "closed by an earlier step"))
                return self.steps[-1]
            self.create(name)
        if base in self.failed or name not in self.where:
            self.steps.append(
                {"socket": name, "call": step.call, "outcome": NOT_RUN, "errno": 0, "error": ""}
            )
            return self.failed.get(base, self.steps[-1])
        call = step.call
        if call == "bind" and name in self.factories:
            return self.made(name)
        if call == "kill":
            return self.kill(name)
        if call == "join":
            self.group = ops.GROUPS[self.planned[name].family]
        if call == "bind":
            req: dict[str, Any] = {
                "op": "bind",
                "address": self.planned[name].address,
                "port": self.port,
            }
        elif call == "connect":
            self.connections = True
            address = self.target(step)
            req = {
                "op": "connect",
                "address": address,
                "port": self.port,
                "call": f"connect {address}",
            }
        elif call == "accept":
            req = {"op": "accept", "into": f"{name}.conn"}
        elif call == "setsockopt":
            spec = SocketSpec(name, "inet", "stream", None, (step.argument,), "wildcard")
            answer: dict[str, Any] = {"outcome": "ok"}
            for option in resolve_options(spec, self.profile, self.host):
                answer = self.send(
                    name, {"op": "setsockopt", "option": option, "call": f"setsockopt {option}"}
                )
            return answer
        else:  # listen, send, recv, shutdown, close
            req = {"op": call}
        answer = self.send(name, req)
        if answer["outcome"] == "ok":
            if call in ("bind", "listen"):
                self.states[name] = "bound" if call == "bind" else "listening"
            elif call == "accept":
                self.where[f"{name}.conn"] = self.where[name]
            elif call == "close":
                del self.where[name]
                if name in self.states:
                    self.states[name] = "closed"
        return answer

    def deliver(self) -> dict[str, Any] | None:
        """Who receives traffic sent to the shared address, when several sockets could."""
        kinds = {p.type for p in self.planned.values() if self.states[p.name] != "unbound"}
        if len(kinds) != 1:
            return None
        kind = kinds.pop()
        wanted = "listening" if kind == "stream" else "bound"
        sharing = [n for n, st in self.states.items() if st == wanted and n in self.where]
        if len(sharing) < 2:
            return None
        address = self.group or delivery_target([self.planned[n] for n in sharing], self.host)
        family = "inet6" if ":" in address else "inet"
        if kind == "stream":
            self.connections = True
        sent = 0
        clients = [f"probe{i}" for i in range(self.cell.delivery_probes)]
        received = dict.fromkeys(sharing, 0)
        try:
            for i, client in enumerate(clients):
                if i and i % BATCH == 0:  # accept as we go: a listen backlog is finite
                    for n, count in self._collect(sharing, 0).items():
                        received[n] += count
                self.local.do({"socket": client, "op": "socket", "family": family, "type": kind})
                if self.group:
                    self.local.do({"socket": client, "op": "multicast_sender"})
                answer = self.local.do(
                    {"socket": client, "op": "connect", "address": address, "port": self.port}
                )
                if answer["outcome"] == "ok" and kind == "dgram":
                    answer = self.local.do({"socket": client, "op": "send"})
                sent += answer["outcome"] == "ok"
            for n, count in self._collect(sharing, sent - sum(received.values())).items():
                received[n] += count
        finally:
            for client in clients:
                _abort(self.local, client)
        got = [n for n, count in received.items() if count]
        receiver = {0: "none", 1: got[0] if got else "", 2: "both"}.get(len(got), "shared")
        return {"target": address, "sent": sent, "received": received, "receiver": receiver}

    def _collect(self, sharing: list[str], expected: int) -> dict[str, int]:
        """Poll every receiver until all that was sent arrived (or a short deadline passed)."""
        received = dict.fromkeys(sharing, 0)
        deadline = time.monotonic() + DELIVERY_WAIT
        while True:
            for n in sharing:
                received[n] += int(
                    self.where[n].do({"socket": n, "op": "drain", "wait": 0}).get("count", 0)
                )
            if sum(received.values()) >= expected or time.monotonic() > deadline:
                return received
            time.sleep(0.001)

    def made(self, name: str) -> dict[str, Any]:
        """'bind' of a socket a candidate's factory makes: the factory's own calls."""
        from .candidates import make, read_options

        p = self.planned[name]
        target = self.factories[name]
        call = f"bind (factory {target})"
        try:
            sock = make(target, p.family, p.type, p.address, self.port)
        except OSError as exc:
            answer = record(name, call, *normalise(exc))
        else:
            self.local.socks[name] = sock
            answer = {**record(name, call), "factory": target, "set": read_options(sock)}
            self.states[name] = "bound"
        self.steps.append(answer)
        if answer["outcome"] != "ok":
            self.failed.setdefault(name, answer)
        return answer

    def kill(self, name: str) -> dict[str, Any]:
        """A crash: SIGKILL the child process holding the socket; the kernel closes its
        sockets as it does for any dead process."""
        holder = self.where[name]
        answer = record(name, "kill (the owning process)")
        if isinstance(holder, Child):
            holder.kill()
            self.children = {k: c for k, c in self.children.items() if c is not holder}
            for held in [n for n, h in self.where.items() if h is holder]:
                del self.where[held]
                if held in self.states:
                    self.states[held] = "closed"
        self.steps.append(answer)
        return answer

    def close(self) -> None:
        self.local.close_all()
        for child in self.children.values():
            child.close()


def _abort(executor: Executor, name: str) -> None:
    """Close a probe client with an RST, so it leaves no TIME_WAIT entry behind."""
    sock = executor.socks.pop(name, None)
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST_LINGER)
    sock.close()


def run(
    cell: Cell,
    planned: list[PlannedSocket],
    port: int,
    host: Host,
    profile: Profile | None = None,
    deliver: bool = True,
    factories: dict[str, str] | None = None,
) -> Observation:
    """Execute the cell's steps on a port; the outcome is that of the step under test.

    A step on a socket that an earlier call made unusable is recorded as not-run;
    if that is the step under test, the outcome is the earlier call's.
    """
    start = time.perf_counter()
    live = _Run(cell, planned, port, profile, host, factories)
    outcome = NOT_RUN
    state_at_test: dict[str, str] = {}
    try:
        for index, step in enumerate(cell.steps):
            if index == cell.under_test:
                state_at_test = dict(live.states)
            answer = live.step(step)
            if index == cell.under_test:
                outcome = answer["outcome"]
        delivery = live.deliver() if deliver else None
    finally:
        live.close()
    return Observation(
        outcome, live.steps, state_at_test, delivery, live.connections, time.perf_counter() - start
    )


__all__ = [
    "NOT_RUN",
    "OTHER",
    "Observation",
    "PlannedSocket",
    "Unrunnable",
    "error_name",
    "normalise",
    "plan",
    "resolve_options",
    "run",
]
