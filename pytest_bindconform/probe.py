"""Run one cell with real sockets and record what every system call did.

Nothing here is simulated: each step is a real system call on the host (in
this process, or in a child process when the case gives a socket another
owner), and every socket is closed whatever happens. When several sockets end
up sharing the port, real traffic is sent to find out who receives it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from . import delivery, locality, ops, slow
from .host import Host
from .model import Cell, Profile, SocketSpec, Step
from .ops import OTHER, Executor, error_name, normalise, record
from .ownerpool import Child
from .ownports import NOT_RUN, OwnPorts
from .plan import PlannedSocket, Unrunnable, plan, resolve_address, resolve_options
from .ports import Interference

WILDCARDS = ("0.0.0.0", "::", "::ffff:0.0.0.0")


@dataclass
class Observation:
    outcome: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    delivery: dict[str, Any] | None = None
    connections: bool = False  # TCP connections were made: TIME_WAIT may linger on the port
    duration: float = 0.0
    ports: dict[str, int] = field(default_factory=dict)  # socket -> the port it bound


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


class _Run(OwnPorts):
    """The live state of one cell: who holds each socket, socket states, step records."""

    def __init__(
        self,
        cell: Cell,
        planned: list[PlannedSocket],
        port: int,
        profile: Profile | None,
        host: Host,
        factories: dict[str, str] | None = None,
        privileged: int = 0,
    ):
        self.cell, self.port, self.profile, self.host = cell, port, profile, host
        self.privileged = privileged  # the port of 'port: privileged' sockets
        self.ports: dict[str, int] = {}  # socket -> the port it bound (kept after close)
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
        self.peers: set[tuple[str, int]] = set()  # local endpoints of the cell's connects
        self.creating: dict[str, list[dict[str, Any]]] = {}  # sent with a socket's first call

    def holder(self, owner: str) -> Executor | Child:
        if owner == "self":
            return self.local
        if owner not in self.children:
            self.children[owner] = Child(owner)
        return self.children[owner]

    def send(self, name: str, req: dict[str, Any]) -> dict[str, Any] | None:
        """One call on a socket, after the creation requests queued for it (one batch: one
        round trip to a child owner). None when a queued request failed: the call was not
        made (the caller records it as not run)."""
        queued = self.creating.pop(name, [])
        answers = self._exchange(name, [*queued, req])
        return answers[-1] if len(answers) > len(queued) else None

    def settle(self, name: str) -> bool:
        """Make the socket now (a step without a call of its own); False if that failed."""
        self._exchange(name, self.creating.pop(name, []))
        return name.split(".")[0] not in self.failed

    def _exchange(self, name: str, reqs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answers: list[dict[str, Any]]
        if len(reqs) > 1:
            batch = [{"socket": name, **req} for req in reqs]
            answers = self.where[name].do({"socket": name, "op": "batch", "requests": batch})[
                "answers"
            ]
        else:
            answers = [self.where[name].do({"socket": name, **req}) for req in reqs]
        for answer in answers:
            self.steps.append(answer)
            if answer["outcome"] != "ok":
                self.failed.setdefault(name.split(".")[0], answer)
        return answers

    def not_run(self, name: str, call: str) -> dict[str, Any]:
        """A step on a socket an earlier call made unusable: its outcome is that call's."""
        self.steps.append(record(name, call, NOT_RUN))
        return self.failed.get(name.split(".")[0], self.steps[-1])

    def create(self, name: str) -> None:
        """Queue the socket's creation and options: they go with its first call."""
        p = self.planned[name]
        self.where[name] = self.holder(p.owner)
        if name in self.factories:
            return  # the factory makes, configures and binds it at 'bind'
        self.creating[name] = [
            {"op": "socket", "family": p.family, "type": p.type},
            *(
                {"op": "setsockopt", "call": f"setsockopt {req['option']}", **req}
                for req in self.option_requests(p)
            ),
        ]

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
        if step.call == "compare-ports":  # compares what the sockets bound, open or closed
            return self.compare(step)
        if name == base and name not in self.where and name not in self.failed:
            if self.states.get(name) == "closed":
                self.steps.append(record(name, step.call, NOT_RUN, 0, "closed by an earlier step"))
                return self.steps[-1]
            self.create(name)
        if base in self.failed or name not in self.where:
            return self.not_run(name, step.call)
        call = step.call
        if call == "bind" and name in self.factories:
            return self.made(name)
        if call in ("kill", "rebind") and not self.settle(name):
            return self.not_run(name, call)
        if call == "kill":
            return self.kill(name)
        if call == "join":
            self.group = ops.GROUPS[self.planned[name].family]
        if call == "rebind":
            return self.rebind(name)
        if call == "bind":
            port = self.bind_port(name)
            if port is None:  # plan order made sure the other bind ran: it failed
                if not self.settle(name):
                    return self.not_run(name, call)
                other = self.planned[name].port.removeprefix("same-as ")
                self.steps.append(record(name, "bind", NOT_RUN, 0, f"{other} bound no port"))
                self.failed.setdefault(name, self.failed.get(other, self.steps[-1]))
                return self.failed[name]
            req: dict[str, Any] = {
                "op": "bind",
                "address": self.planned[name].address,
                "port": port,
            }
            if step.argument == slow.UNTIL_FREE:  # plan() ran it only with slow cells on
                req.update(call="bind (until free)", until=slow.ceiling(), interval=slow.INTERVAL)
        elif call == "connect":
            self.connections = True
            address = self.target(step)
            why = locality.not_local(address)
            if why:  # plan() proved every target local; never send if that ever slips
                if not self.settle(name):
                    return self.not_run(name, call)
                self.steps.append(record(name, f"connect {address}", NOT_RUN, 0, why))
                return self.steps[-1]
            req = {
                "op": "connect",
                "address": address,
                "port": self.port_of(step.argument) if step.argument in self.planned else self.port,
                "call": f"connect {address}",
            }
        elif call == "accept":
            req = {"op": "accept", "into": f"{name}.conn"}
        elif call == "setsockopt":
            spec = SocketSpec(name, "inet", "stream", None, (step.argument,), "wildcard")
            answer: dict[str, Any] = {"outcome": "ok"}
            options = resolve_options(spec, self.profile, self.host)
            if not options and not self.settle(name):
                return self.not_run(name, call)
            for option in options:
                sent = self.send(
                    name, {"op": "setsockopt", "option": option, "call": f"setsockopt {option}"}
                )
                if sent is None:
                    return self.not_run(name, call)
                answer = sent
            return answer
        else:  # listen, send, recv, shutdown, close
            req = {"op": call}
        sent = self.send(name, req)
        if sent is None:
            return self.not_run(name, call)
        answer = sent
        if call == "bind" and self.planned[name].port:  # a socket's own port: in the record
            answer["port"] = req["port"]
        if answer["outcome"] == "ok":
            if call == "bind" and req["port"] == 0:  # the kernel's pick, read back
                here = self.where[name].do({"socket": name, "op": "sockname"})
                answer["port"] = here["port"]
            if call == "bind":
                self.ports[name] = answer.get("port", req["port"])
            if call in ("bind", "listen"):
                self.states[name] = "bound" if call == "bind" else "listening"
            elif call == "accept":
                self.where[f"{name}.conn"] = self.where[name]
                self._own_peer(answer.get("peer"))
            elif call == "connect":
                here = self.where[name].do({"socket": name, "op": "sockname"})
                self.peers.add(locality.endpoint(here["address"], here["port"]))
            elif call == "close":
                del self.where[name]
                if name in self.states:
                    self.states[name] = "closed"
        return answer

    def _own_peer(self, peer: list[Any] | None) -> None:
        """An accepted connection must come from one of the cell's own connects."""
        if peer and locality.endpoint(peer[0], peer[1]) not in self.peers:
            raise Interference(
                f"the listener accepted a connection from {peer[0]} port {peer[1]}, which is "
                "none of this cell's sockets: another process connected to the cell's port"
            )

    def start_owners(self) -> None:
        """Start every child process first: forking takes milliseconds that must not fall
        between the proof that the port is free and the binds it vouches for."""
        for p in self.planned.values():
            self.holder(p.owner)

    def deliver(self) -> dict[str, Any] | None:
        """Who receives traffic sent to the shared address, when several sockets could."""
        kinds = {p.type for p in self.planned.values() if self.states[p.name] != "unbound"}
        if len(kinds) != 1:
            return None
        kind = kinds.pop()
        wanted = "listening" if kind == "stream" else "bound"
        sharing = [n for n, st in self.states.items() if st == wanted and n in self.where]
        ports = {self.port_of(n) for n in sharing}
        if len(sharing) < 2 or len(ports) != 1:  # sockets on different ports share nothing
            return None
        address = self.group or delivery_target([self.planned[n] for n in sharing], self.host)
        if kind == "stream":
            self.connections = True
        receivers = {n: self.where[n] for n in sharing}
        return delivery.Probe(
            kind, address, ports.pop(), receivers, self.cell.delivery_probes, self.peers
        ).run()

    def made(self, name: str) -> dict[str, Any]:
        """'bind' of a socket a candidate's factory makes (in the socket's owner process):
        the factory's own calls. Where it bound is proved local like any planned address."""
        from .candidates import FactoryProblem

        p = self.planned[name]
        target = self.factories[name]
        answer = self.where[name].do(
            {
                "socket": name,
                "op": "make",
                "call": f"bind (factory {target})",
                "factory": target,
                "family": p.family,
                "type": p.type,
                "address": p.address,
                "port": self.port,
            }
        )
        if "problem" in answer:
            raise FactoryProblem(answer["problem"])
        if answer["outcome"] == "ok":
            why = locality.not_local(str(answer.pop("address")))
            if why:  # its traffic could leave the host: never probe it
                raise FactoryProblem(f"factory {target!r} bound a socket elsewhere: {why}")
            answer["factory"] = target
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
        if holder is not self.local:  # a Child (or simulate.py's stand-in for one)
            cast(Child, holder).kill()
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


def run(
    cell: Cell,
    planned: list[PlannedSocket],
    port: int,
    host: Host,
    profile: Profile | None = None,
    deliver: bool = True,
    before: Callable[[], None] | None = None,
    factories: dict[str, str] | None = None,
    privileged: int = 0,
) -> Observation:
    """Execute the cell's steps on a port; the outcome is that of the step under test.

    `before` runs once every socket owner is ready, just before the first step (the
    runner proves the port free there); Interference from it or from the delivery
    probe (traffic from outside the cell) propagates, with every socket closed.

    A step on a socket that an earlier call made unusable is recorded as not-run;
    if that is the step under test, the outcome is the earlier call's.
    """
    start = time.perf_counter()
    live = _Run(cell, planned, port, profile, host, factories, privileged)
    outcome = NOT_RUN
    state_at_test: dict[str, str] = {}
    try:
        live.start_owners()
        if before is not None:
            before()
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
        outcome,
        live.steps,
        state_at_test,
        delivery,
        live.connections,
        time.perf_counter() - start,
        live.ports,
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
