"""Run a case-file cell through a model instead of the network.

The cell is resolved exactly as the probe resolves it for a host of the model's
OS (same option roles, same address roles), and its steps are replayed with the
probe's semantics: a failed call leaves its socket unusable, later steps on it
are not run, and a step under test on such a socket reports the call that
failed; a step on a closed socket opens a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..host import IPV4_SPECIFIC, IPV6_SPECIFIC, Host
from ..model import STEP_OPTIONS, UNTIL_FREE, Cell, Profile, SocketSpec, Step
from ..plan import Unrunnable, resolve_address, resolve_options
from ..probe import connectable, delivery_target
from . import Model, for_os, predict_delivery
from .base import OS_OPTIONS, UNKNOWN, V6ONLY_DEFAULT, Event, ModelSocket


class Unmodelled(Exception):
    """The cell needs something the model's OS lacks, or a call no model knows."""


def model_host(os_family: str) -> Host:
    """A host of `os_family` with every option it defines and every test address:
    plain data for plan.resolve_*, not a stand-in for a verdict."""
    return Host(
        os=os_family,
        os_release="model",
        os_version="",
        kernel="model",
        machine="model",
        python="",
        admin=False,
        ipv6=True,
        v6only_default=V6ONLY_DEFAULT[os_family],
        options=tuple(sorted(OS_OPTIONS[os_family])),
        addresses={"inet": IPV4_SPECIFIC, "inet6": IPV6_SPECIFIC},
    )


def model_socket(spec: SocketSpec, profile: Profile | None, host: Host) -> ModelSocket:
    options = resolve_options(spec, profile, host)
    missing = [o for o in options if o not in OS_OPTIONS[host.os]]
    if missing:
        raise Unmodelled(f"{', '.join(missing)} does not exist on {host.os}")
    v6only = spec.family == "inet6" and (
        V6ONLY_DEFAULT[host.os] if spec.v6only is None else spec.v6only
    )
    return ModelSocket(
        family=spec.family,
        type=spec.type,
        v6only=v6only,
        options=frozenset(options),
        address=resolve_address(spec, host),
        owner=spec.owner,
        name=spec.name,
    )


class Port:
    """A model's view of one port while a sequence runs: the sockets, the order
    they took the port in, the history of successful calls, the unusable sockets,
    and the connections (accept names the connection '<listener>.conn', as the
    probe does)."""

    def __init__(self, socks: dict[str, ModelSocket], host: Host, profile: Profile | None = None):
        self.socks = dict(socks)
        self.host, self.profile = host, profile
        self.order: list[str] = []  # sockets holding the port, in the order they took it
        self.history: list[Event] = []
        self.failed: dict[str, str] = {}  # socket -> outcome of the call that failed
        self.waiting: dict[str, list[str]] = {}  # listener -> peers not yet accepted
        self.closed: set[str] = set()  # closed once: the probe still counts their type
        self.peer_of: dict[str, str] = {}  # connection -> its peer

    def ask(self, model: Model, call: str, name: str) -> str:
        others = [self.socks[n] for n in self.order if n != name]
        return model(others, self.socks[name], call, self.history)

    def sharing(self) -> dict[str, ModelSocket]:
        """The sockets on the port in the order they began to receive: UDP at
        bind, TCP at listen (what predict_delivery wants)."""
        started: list[str] = []
        for call, sock in self.history:
            started = [n for n in started if n != sock.name]
            if call == ("listen" if sock.type == "stream" else "bind"):
                started.append(sock.name)
        return {n: self.socks[n] for n in started if n in self.order}

    def expect(self, model: Model, step: Step) -> str:
        """The outcome the model gives a step; connections succeed where the
        other side is there, anything else is beyond the models."""
        if step.argument == UNTIL_FREE:
            return UNKNOWN  # a bind that waits for TIME_WAIT to end: the models have no clock
        if step.call in ("bind", "listen"):
            return self.ask(model, step.call, step.socket)
        if step.call == "close":
            return "ok"
        if step.call == "setsockopt":
            return self._setsockopt(step)
        target = self.socks.get(step.argument)
        if step.call == "connect" and self.socks[step.socket].state == "bound":
            return UNKNOWN  # a bound client: its 4-tuple rules (client-binds) are not modelled
        if step.call == "connect" and target is not None and target.state == "listening":
            return "ok"
        if step.call == "accept" and self.waiting.get(step.socket):
            return "ok"
        if step.call == "recv" and any(
            p == step.socket and self.socks[c].state == "closing" for c, p in self.peer_of.items()
        ):
            return "ok"  # the peer reads the FIN of a connection closed by the server
        return UNKNOWN

    def apply(self, step: Step, outcome: str) -> None:
        """What a step that returned `outcome` did to the port."""
        name = step.socket
        if outcome != "ok":
            self.failed[name.split(".")[0]] = outcome
            return
        if step.call == "connect":
            self.socks[name] = self.socks[name].at("elsewhere")
            self.waiting.setdefault(step.argument, []).append(name)
        elif step.call == "accept":
            self._accept(name)
        elif step.call == "close":
            self._close(name)
        elif step.call == "setsockopt":
            sock = self.socks[name]
            self.socks[name] = replace(sock, options=sock.options | set(self._options(step)))
        elif step.call in ("bind", "listen"):
            sock = self.socks[name]
            if step.call == "listen" and sock.state not in ("bound", "listening"):
                self.socks[name] = sock.at("elsewhere")  # POSIX: an ephemeral port
                return
            self.socks[name] = sock.at("bound" if step.call == "bind" else "listening")
            self.order += [name] if step.call == "bind" else []
            self.history.append((step.call, self.socks[name]))

    def _options(self, step: Step) -> tuple[str, ...]:
        spec = SocketSpec(step.socket, "inet", "stream", None, (step.argument,), "wildcard")
        return resolve_options(spec, self.profile, self.host)

    def _setsockopt(self, step: Step) -> str:
        if step.argument in STEP_OPTIONS:
            return UNKNOWN  # SO_LINGER0 shapes close(), which the bind models do not follow
        if any(o not in OS_OPTIONS[self.host.os] for o in self._options(step)):
            raise Unmodelled(f"{step.argument} does not exist on {self.host.os}")
        if self.socks[step.socket].state != "unbound" and self.host.os not in ("linux", "freebsd"):
            # posix-semantics.md row "option set after bind": honoured on Linux and
            # FreeBSD, unknown on macOS; Windows wants options before bind.
            return UNKNOWN
        return "ok"

    def _accept(self, listener: str) -> None:
        sock = self.socks[listener]
        name = f"{listener}.conn"
        # the connection's local address is where the peer connected to
        address = connectable(sock.address, sock.family, self.host)
        self.socks[name] = replace(sock, name=name, address=address, state="established")
        self.peer_of[name] = self.waiting[listener].pop(0)
        self.order.append(name)
        self.history.append(("accept", self.socks[name]))

    def _close(self, name: str) -> None:
        sock = self.socks[name]
        if (
            name in self.peer_of
            and self.peer_of[name] in self.socks
            and self.socks[self.peer_of[name]].state == "elsewhere"
        ):
            self.socks[name] = sock.at("closing")  # active close: FIN sent, the port stays
            return
        for conn, peer in self.peer_of.items():
            if peer == name and self.socks[conn].state == "closing":
                self.socks[conn] = self.socks[conn].at("time-wait")  # the peer's FIN came
        self.closed.add(name)
        if name in self.order:
            self.order.remove(name)
            self.history.append(("close", sock.at("closed")))
        self.socks[name] = sock.at("unbound")  # the probe opens a fresh one if used again


@dataclass(frozen=True)
class Prediction:
    outcome: str  # of the step under test
    receiver: str  # who receives once all steps ran: a name, both, shared, none, unknown


def predict_cell(
    os_family: str, cell: Cell, profile: Profile | None, model: Model | None = None
) -> str:
    """The outcome of the cell's step under test as `model` (default: the OS's
    model) predicts it; 'unknown' when the cell cannot be modelled."""
    return predict(os_family, cell, profile, model).outcome


def predict(
    os_family: str,
    cell: Cell,
    profile: Profile | None,
    model: Model | None = None,
    outcomes: list[str] | None = None,
    port_type: type[Port] = Port,
) -> Prediction:
    """The step under test's outcome and, after every step, the receiver; `outcomes`,
    if given, gets every step's outcome up to the first the model has no claim on
    (`port_type`: a Port that answers more calls, as foretold.py's does)."""
    if any(spec.port or spec.owner == "unprivileged" for spec in cell.sockets):
        # the models know one shared port and who owns it, not ephemeral-port choice or
        # privileged ports
        return Prediction(UNKNOWN, UNKNOWN)
    try:
        host = model_host(os_family)
        socks = {spec.name: model_socket(spec, profile, host) for spec in cell.sockets}
    except (Unmodelled, Unrunnable):
        return Prediction(UNKNOWN, UNKNOWN)
    port = port_type(socks, host, profile)
    outcome = UNKNOWN
    for index, step in enumerate(cell.steps):
        failed = port.failed.get(step.socket.split(".")[0])
        said = failed if failed is not None else port.expect(model or for_os(os_family), step)
        if outcomes is not None:
            outcomes.append(said)
        if index == cell.under_test:
            outcome = said
        if said == UNKNOWN:
            return Prediction(outcome, UNKNOWN)
        if failed is None:
            port.apply(step, said)
    return Prediction(outcome, _receiver(os_family, port, [s.name for s in cell.sockets]))


def _receiver(os_family: str, port: Port, declared: list[str]) -> str:
    """Who the probe would see receive: it sends only when two or more sockets of
    one type could (probe.run's delivery step), to the most recently declared
    specific address among them, else to the first one's wildcard."""
    kinds = {port.socks[n].type for n in declared if port.socks[n].state != "unbound"}
    kinds |= {port.socks[n].type for n in port.closed}
    receiving = port.sharing()
    if len(kinds) != 1 or len(receiving) < 2:
        return "none"
    order = [n for n in declared if n in receiving]
    target = delivery_target([receiving[n] for n in order], port.host)
    return predict_delivery(os_family, receiving, target)


__all__ = [
    "Port",
    "Prediction",
    "Unmodelled",
    "model_host",
    "model_socket",
    "predict",
    "predict_cell",
]
