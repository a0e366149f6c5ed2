"""The stand-in socket layer of simulated runs: ops.Executor's interface, answered by a model.

Per-port state is models.cells.Port (the same replay the cell models use); each
call gets the outcome the OS's model gives it, in ops.py's record format and with
that OS's error names and codes (platforms/<os>.py). Where the model has no
claim the answer is `unknown` and the call is noted, so that simulate.honest()
turns the cell into a skip: nothing here invents an outcome.
"""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType
from typing import Any

from . import models, owner, platforms
from .model import Step
from .models.base import OS_OPTIONS, UNKNOWN, V6ONLY_DEFAULT, ModelSocket
from .models.cells import Port, model_host
from .ops import batch, record

NO_CLAIM = "simulated: the {os} model makes no claim"


class World:
    """Every port's model state in this process (xdist workers own disjoint ports)."""

    def __init__(self, os_name: str):
        self.os = os_name
        self.platform: ModuleType = platforms.for_os(os_name)
        self.model = models.for_os(os_name)
        self.host = model_host(os_name)
        self.ports: dict[int, Port] = {}
        self.queued: dict[tuple[int, str], int] = {}  # datagrams waiting per (port, socket)
        self.turn: dict[int, int] = {}  # round robin where the model says traffic is shared
        self.silent: list[str] = []  # calls the model had no claim on, since the last cell
        self.client_ports: dict[str, int] = {}  # connected socket -> its made-up local port

    def port(self, number: int) -> Port:
        return self.ports.setdefault(number, Port({}, self.host))

    def receiver(self, number: int, address: str) -> str:
        """Who gets traffic for address:number: a socket name, 'none' or UNKNOWN."""
        port = self.ports.get(number)
        sharing = port.sharing() if port else {}
        said = models.predict_delivery(self.os, sharing, address) if sharing else "none"
        if said not in ("both", "shared"):
            return said
        # balanced: every socket that would receive alone takes its turn, exact addresses first
        alone = [
            n for n in sharing if models.predict_delivery(self.os, {n: sharing[n]}, address) == n
        ]
        exact = [n for n in alone if sharing[n].address == address] or alone
        self.turn[number] = self.turn.get(number, -1) + 1
        return exact[self.turn[number] % len(exact)] if exact else UNKNOWN


class SimSocket:
    """What probe.py may touch directly on a socket: SO_LINGER and close()."""

    def __init__(self, executor: SimExecutor, name: str):
        self.executor, self.name = executor, name

    def setsockopt(self, *args: Any) -> None:
        del args  # nothing lingers in a model

    def close(self) -> None:
        self.executor.forget(self.name)


class SimExecutor:
    """ops.Executor's interface, answered by the model of one OS."""

    def __init__(self, world: World, owner_name: str = "self"):
        self.world, self.owner = world, owner_name
        self.socks: dict[str, SimSocket] = {}
        self.loose: dict[str, ModelSocket] = {}  # sockets on no port yet
        self.home: dict[str, int] = {}  # socket -> its port
        self.peer: dict[str, tuple[str, int]] = {}  # connected UDP sockets

    # the record format of ops.Executor
    def do(self, req: dict[str, Any]) -> dict[str, Any]:
        if req["op"] == "batch":
            return batch(self.do, req)
        name, op = req["socket"], req["op"]
        call = req.get("call", op)
        answer = getattr(self, f"_{op}")(name, req)
        outcome, extra = answer if isinstance(answer, tuple) else (answer, {})
        if outcome == "ok":
            return {**record(name, call), **extra}
        if outcome == UNKNOWN:
            self.world.silent.append(f"{name} {call}")
            return {**record(name, call, UNKNOWN, 0, NO_CLAIM.format(os=self.world.os)), **extra}
        error, code = self.world.platform.ERRORS.get(outcome, (outcome, 0))
        return {**record(name, call, outcome, code, error), **extra}

    def close_all(self) -> None:
        """End of a cell: its sockets, and the connections they left on the port, go."""
        for name in {*self.socks, *self.loose, *self.home}:
            self.forget(name)

    def model(self, name: str) -> ModelSocket:
        if name in self.home:
            return self.world.ports[self.home[name]].socks[name]
        return self.loose[name]

    def store(self, name: str, sock: ModelSocket) -> None:
        if name in self.home:
            self.world.ports[self.home[name]].socks[name] = sock
        else:
            self.loose[name] = sock

    def forget(self, name: str) -> None:
        """close() as the probe's cleanup sees it; the cell's port state goes with its sockets."""
        self.socks.pop(name, None)
        self.loose.pop(name, None)
        self.peer.pop(name, None)
        number = self.home.pop(name, None)
        port = self.world.ports.get(number) if number is not None else None
        if port is None:
            return
        port.socks.pop(name, None)
        port.order = [n for n in port.order if n != name]
        if not port.socks:
            del self.world.ports[number]  # type: ignore[arg-type]
            self.world.turn.pop(number, None)  # type: ignore[arg-type]

    def join(self, name: str, number: int, sock: ModelSocket) -> Port:
        port = self.world.port(number)
        self.loose.pop(name, None)
        self.home[name] = number
        port.socks[name] = sock
        return port

    # operations -----------------------------------------------------------
    def _hello(self, name: str, req: dict[str, Any]) -> str:
        return "ok"

    def _socket(self, name: str, req: dict[str, Any]) -> str:
        family = req["family"]
        v6only = family == "inet6" and V6ONLY_DEFAULT[self.world.os]
        wildcard = "::" if family == "inet6" else "0.0.0.0"
        self.socks[name] = SimSocket(self, name)
        self.loose[name] = ModelSocket(
            family, req["type"], v6only, frozenset(), wildcard, owner=self.owner, name=name
        )
        return "ok"

    def _setsockopt(self, name: str, req: dict[str, Any]) -> str:
        sock = self.model(name)
        option = req["option"]
        if sock.state != "unbound" and self.world.os not in ("linux", "freebsd"):
            return UNKNOWN  # posix-semantics.md: an option set after bind is unknown here
        if option == "IPV6_V6ONLY":
            if sock.family != "inet6":
                return UNKNOWN
            self.store(name, replace(sock, v6only=bool(req["value"])))
            return "ok"
        if option not in OS_OPTIONS[self.world.os]:
            return "NOTSUP"
        self.store(name, replace(sock, options=sock.options | {option}))
        return "ok"

    def _bind(self, name: str, req: dict[str, Any]) -> str:
        if int(req["port"]) < 1024:  # port 0 (the kernel's pick) or a privileged port
            return UNKNOWN  # beyond the models, which know one shared, unprivileged port
        sock = self.model(name)
        if name in self.home:
            return models.predict(self.world.os, [], sock, "bind")  # already bound: INVAL
        port = self.join(name, int(req["port"]), replace(sock, address=req["address"]))
        said = port.ask(self.world.model, "bind", name)
        if said == "ok":
            port.apply(Step("bind", name), "ok")
        else:  # refused or no claim: the socket stays unbound, on no port
            self.home.pop(name)
            self.loose[name] = port.socks.pop(name).at("unbound")
        return said

    def _listen(self, name: str, req: dict[str, Any]) -> str:
        sock = self.model(name)
        if name not in self.home:
            said = models.predict(self.world.os, [], sock, "listen")
            if said == "ok":  # POSIX: an ephemeral port, far from the cell's
                self.loose[name] = sock.at("elsewhere")
            return said
        port = self.world.ports[self.home[name]]
        said = port.ask(self.world.model, "listen", name)
        if said == "ok":
            port.apply(Step("listen", name), "ok")
        return said

    def _connect(self, name: str, req: dict[str, Any]) -> str | tuple[str, dict[str, Any]]:
        sock, number, address = self.model(name), int(req["port"]), req["address"]
        if sock.type == "dgram":
            self.peer[name] = (address, number)
            return "ok"
        seconds, basis = self.world.platform.connect_limit(float(req.get("timeout", 2.0)))
        limit = {"timeout": seconds, "timeout_basis": basis}
        target = self.world.receiver(number, address)
        if target == UNKNOWN:
            return UNKNOWN, limit
        if target == "none":
            # nobody listens: an RST, which this OS reports after its own SYN retries
            slow = self.world.platform.CONNECT_REFUSAL_SECONDS
            return ("TIMEOUT" if slow >= seconds else "REFUSED"), limit
        if name in self.home:
            return UNKNOWN, limit  # a bound client: beyond the models
        port = self.join(name, number, sock)
        port.apply(Step("connect", name, target), "ok")
        return "ok", limit

    def _accept(self, name: str, req: dict[str, Any]) -> str | tuple[str, dict[str, Any]]:
        port = self.world.ports.get(self.home.get(name, -1))
        limit = {"timeout": float(req.get("timeout", 2.0)), "timeout_basis": "probe limit"}
        if port is None or not port.waiting.get(name):
            return "TIMEOUT", limit  # the model knows nothing is pending
        port.apply(Step("accept", name), "ok")
        into = req["into"]
        self.socks[into] = SimSocket(self, into)
        self.home[into] = self.home[name]
        return "ok", limit

    def _send(self, name: str, req: dict[str, Any]) -> str:
        sock = self.model(name)
        if sock.type == "stream":
            return "ok" if sock.state in ("elsewhere", "established") else UNKNOWN
        if name not in self.peer:
            return UNKNOWN
        address, number = self.peer[name]
        target = self.world.receiver(number, address)
        if target == UNKNOWN:
            return UNKNOWN
        if target != "none":
            key = (number, target)
            self.world.queued[key] = self.world.queued.get(key, 0) + 1
        return "ok"

    def _recv(self, name: str, req: dict[str, Any]) -> str | tuple[str, dict[str, Any]]:
        limit = {"timeout": float(req.get("timeout", 2.0)), "timeout_basis": "probe limit"}
        sock = self.model(name)
        if sock.type == "dgram":
            key = (self.home.get(name, -1), name)
            if self.world.queued.get(key):
                self.world.queued[key] -= 1
                return "ok", {**limit, "bytes": 11}
            return "TIMEOUT", limit
        port = self.world.ports.get(self.home.get(name, -1))
        if port is not None and port.expect(self.world.model, Step("recv", name)) == "ok":
            return "ok", {**limit, "bytes": 0}  # the FIN of a connection the server closed
        return UNKNOWN, limit

    def _shutdown(self, name: str, req: dict[str, Any]) -> str:
        return "ok" if self.model(name).state in ("elsewhere", "established") else UNKNOWN

    def _close(self, name: str, req: dict[str, Any]) -> str:
        number = self.home.get(name)
        if number is None:
            self.forget(name)
            return "ok"
        port = self.world.ports[number]
        port.apply(Step("close", name), "ok")
        if port.socks[name].state == "closing":
            # active close: the connection stays on the port, this handle is gone
            self.socks.pop(name, None)
            return "ok"
        self.forget(name)
        return "ok"

    def _drain(self, name: str, req: dict[str, Any]) -> dict[str, Any] | tuple[str, dict[str, Any]]:
        number = self.home.get(name, -1)
        port = self.world.ports.get(number)
        if self.model(name).type == "dgram":
            count = self.world.queued.pop((number, name), 0)
        else:
            count = len(port.waiting.pop(name, [])) if port else 0
        return "ok", {"count": count}

    def _rebind(self, name: str, req: dict[str, Any]) -> str:
        return UNKNOWN  # ephemeral-port choice is beyond the models

    def _sockname(self, name: str, req: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """A connected client's local endpoint: the model has no ports of its own, so each
        gets a distinct made-up one (the probe only checks that peers are its own)."""
        ports = self.world.client_ports
        number = ports.setdefault(name, 40000 + len(ports))
        return "ok", {"address": self.model(name).address, "port": number}

    def _make(self, name: str, req: dict[str, Any]) -> str:
        del req  # a candidate's factory makes real sockets: the model has no claim on them
        return UNKNOWN

    def _join(self, name: str, req: dict[str, Any]) -> str:
        del req  # the models hold no multicast memberships
        return UNKNOWN


class SimProbe:
    """delivery.Probe's interface, answered by the model: who receives each probe's
    connection or datagram, as the model predicts it; no claim makes the cell a skip."""

    def __init__(
        self,
        kind: str,
        target: str,
        port: int,
        receivers: Any,
        planned: int,
        own: set[tuple[str, int]],
    ):
        del own
        self.kind, self.target, self.port, self.planned = kind, target, port, planned
        self.received = dict.fromkeys(receivers, 0)

    def run(self) -> dict[str, Any]:
        assert WORLD_OF_PROBES is not None, "simulate.install() sets the world"
        world = WORLD_OF_PROBES
        for _ in range(self.planned):
            said = world.receiver(self.port, self.target)
            if said == UNKNOWN:
                world.silent.append(f"delivery probe {self.kind} to {self.target}")
                return {
                    "target": self.target,
                    "planned": self.planned,
                    "sent": 0,
                    "received": self.received,
                    "receiver": None,
                    "failure": NO_CLAIM.format(os=world.os) + " on who receives",
                }
            if said in self.received:
                self.received[said] += 1
        got = [n for n, count in self.received.items() if count]
        receiver = {0: "none", 1: got[0] if got else "", 2: "both"}.get(len(got), "shared")
        return {
            "target": self.target,
            "planned": self.planned,
            "sent": self.planned,
            "received": self.received,
            "receiver": receiver,
        }


WORLD_OF_PROBES: World | None = None


class SimChild:
    """owner.Child's interface: a socket owner of another process (or user) of that OS."""

    def __init__(self, world: World, owner_name: str):
        if owner_name == "other-user":
            owner.other_user_ids()  # the simulated OS's rules: raises with how to enable it
        self.executor = SimExecutor(world, owner_name)

    def do(self, req: dict[str, Any]) -> dict[str, Any]:
        return self.executor.do(req)

    def close(self) -> None:
        self.executor.close_all()

    def kill(self) -> None:
        """A crash: the kernel closes each of the process's sockets as close() would."""
        for name in [n for n in self.executor.socks if n in self.executor.home]:
            self.executor.do({"socket": name, "op": "close"})
        self.close()


__all__ = ["NO_CLAIM", "SimChild", "SimExecutor", "SimProbe", "SimSocket", "World"]
