"""--bindconform-simulate OS: run the whole pipeline as Windows, macOS or FreeBSD here.

No such machine is available to the project's own tests, yet their code paths
(plan and skip reasons, probe, verdicts, reports, merge) must not first run in
CI. A simulated run therefore:

- builds the Host fingerprint with that OS's platform module from outputs
  recorded on real systems (tests/fixtures/recorded/<os>/, each citing where it
  was recorded), so its parsers and branches run;
- replaces the socket layer (probe.Executor, probe.Child) with a stand-in that
  keeps per-port model state (models.cells.Port) and answers each call from
  that OS's executable model (pytest_bindconform/models/<os>.py), in the step
  record format of ops.py, with that OS's error names and codes;
- answers `unknown` wherever the model makes no claim, and such a cell becomes
  a skip ("simulated: the <os> model makes no claim ..."), never an outcome.

Nothing it reports is a conformance result: the host, the terminal header and
summary, and every report say SIMULATED, and `merge` refuses such reports
unless told --simulated. Only the model is exercised, against the documents.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

from . import models, owner, platforms, probe
from .host import IPV4_SPECIFIC, IPV6_SPECIFIC, OPTION_NAMES, Host, from_facts
from .model import Step
from .models.base import OS_OPTIONS, UNKNOWN, V6ONLY_DEFAULT, ModelSocket
from .models.cells import Port, model_host
from .ops import record

OSES = ("windows", "darwin", "freebsd")
OPTION_ORDER = OPTION_NAMES  # the names host.available_options() looks up, in its order
RECORDED = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "recorded"
NO_CLAIM = "simulated: the {os} model makes no claim"


class SimulationUnavailable(Exception):
    pass


def label(os_name: str) -> str:
    """What every output of a simulated run says answered instead of the OS."""
    return f"{os_name}: socket layer from pytest_bindconform/models/{os_name}.py"


# -- the host, from recorded outputs ------------------------------------------
class RecordedSystem:
    """A platforms System answering from outputs recorded on a real machine."""

    def __init__(self, os_name: str, root: Path = RECORDED):
        self.dir = root / os_name
        try:
            self.sources: dict[str, Any] = json.loads((self.dir / "sources.json").read_text())
        except (OSError, ValueError) as exc:
            raise SimulationUnavailable(
                f"--bindconform-simulate {os_name} needs the recorded outputs in {self.dir} "
                f"(a source checkout of pytest-bindconform): {exc}"
            ) from None

    def run(self, argv: Any) -> str:
        command = " ".join(argv)
        for name, entry in self.sources["files"].items():
            if entry.get("simulate") and entry["command"] == command:
                return (self.dir / str(name)).read_text(encoding="utf-8")
        return ""  # not recorded: as if the command were missing on that machine

    def read(self, path: str) -> str | None:
        return None

    def uname(self) -> tuple[str, str, str, str]:
        system, release, version, machine = self.sources["uname"]
        return str(system), str(release), str(version), str(machine)


def simulated_host(os_name: str, root: Path = RECORDED) -> Host:
    if os_name not in OSES:
        raise SimulationUnavailable(
            f"--bindconform-simulate: {os_name!r} is not one of {', '.join(OSES)}"
        )
    facts = platforms.for_os(os_name).facts(RecordedSystem(os_name, root))
    found = facts.addresses or {}
    return from_facts(
        facts,
        admin=False,
        ipv6=True,
        v6only_default=V6ONLY_DEFAULT[os_name],
        options=tuple(o for o in OPTION_ORDER if o in OS_OPTIONS[os_name]),
        addresses={
            "inet": tuple(a for a in IPV4_SPECIFIC if a in found.get("inet", ())),
            "inet6": tuple(a for a in IPV6_SPECIFIC if a in found.get("inet6", ())),
        },
        isolation="simulated",
        simulated=label(os_name),
    )


# -- the socket layer, from the model -----------------------------------------
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

    def _sockname(self, name: str, req: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "ok", {"address": self.model(name).address}


class SimChild:
    """owner.Child's interface: a socket owner of another process (or user) of that OS."""

    def __init__(self, owner_name: str):
        if owner_name == "other-user":
            owner.other_user_ids()  # the simulated OS's rules: raises with how to enable it
        assert WORLD is not None
        self.executor = SimExecutor(WORLD, owner_name)

    def do(self, req: dict[str, Any]) -> dict[str, Any]:
        return self.executor.do(req)

    def close(self) -> None:
        self.executor.close_all()


WORLD: World | None = None


def install(os_name: str) -> None:
    """Swap this process's socket layer for the model of `os_name` (controller and workers)."""
    global WORLD
    WORLD = World(os_name)
    world = WORLD

    def executor() -> SimExecutor:
        return SimExecutor(world)

    # the two names probe.py creates its socket holders with (tests/test_simulated.py fails
    # loudly, with real Linux outcomes, if probe.py stops using them)
    setattr(probe, "Executor", executor)  # noqa: B010
    setattr(probe, "Child", SimChild)  # noqa: B010
    owner.use_platform(platforms.for_os(os_name))


def honest(result: dict[str, Any], os_name: str) -> dict[str, Any]:
    """A cell in which any call (a step, or a delivery probe's connect or send) got no claim
    from the model is a skip, never a verdict."""
    silent = WORLD.silent[:] if WORLD is not None else []
    if WORLD is not None:
        WORLD.silent.clear()
    if not silent or result.get("status") == "skip":
        return result
    return {
        **result,
        "status": "skip",
        "gate": None,
        "verdicts": dict.fromkeys(result.get("verdicts", {}), "not-run"),
        "reason": f"{NO_CLAIM.format(os=os_name)} on '{silent[0]}' "
        f"(pytest_bindconform/models/{os_name}.py answers unknown there)",
    }


__all__ = ["OSES", "SimExecutor", "World", "honest", "install", "label", "simulated_host"]
