"""A socket's own port: 'port: 0', 'port: privileged', 'port: same-as X' (case format),
and the steps that look at ports: 'compare-ports A B' and 'rebind A'.

Mixed into probe._Run, whose state it reads: the cell's port, the planned sockets, who
holds each one, and the records so far. What every socket bound is kept (also after it is
closed), so the report can say "IPv4 got 41234, IPv6 got 41235".
"""

from __future__ import annotations

from typing import Any

from .model import REBINDS, Step
from .ops import Executor, record
from .ownerpool import Child
from .plan import PlannedSocket

NOT_RUN = "not-run"  # a step not run: an earlier call made its socket unusable


class OwnPorts:
    """The port-related half of a running cell (see the module docstring)."""

    port: int  # the cell's port, proved free (ports.py)
    privileged: int  # the port of 'port: privileged' sockets
    ports: dict[str, int]  # socket -> the port it bound
    planned: dict[str, PlannedSocket]
    where: dict[str, Executor | Child]
    states: dict[str, str]
    failed: dict[str, dict[str, Any]]
    steps: list[dict[str, Any]]

    def send(self, name: str, req: dict[str, Any]) -> dict[str, Any] | None:
        raise NotImplementedError  # probe._Run's

    @staticmethod
    def option_requests(p: PlannedSocket) -> list[dict[str, Any]]:
        """The setsockopt requests that make a fresh socket as planned."""
        requests: list[dict[str, Any]] = []
        if p.v6only is not None:
            requests.append({"option": "IPV6_V6ONLY", "value": p.v6only})
        return requests + [{"option": option} for option in p.options]

    def port_of(self, name: str) -> int:
        """The port a socket bound, else the one it will bind: its own or the cell's."""
        return self.ports.get(
            name, self.privileged if self.planned[name].port == "privileged" else self.port
        )

    def bind_port(self, name: str) -> int | None:
        """The port 'bind X' asks for; None when a 'same-as' socket has none to share."""
        role = self.planned[name].port
        if role == "0":
            return 0
        if role.startswith("same-as "):
            return self.ports.get(role.removeprefix("same-as "))
        return self.port_of(name)

    def compare(self, step: Step) -> dict[str, Any]:
        """'compare-ports A B': same or differ, with both ports in the record."""
        names = (step.socket, step.argument)
        call = str(step)
        missing = [n for n in names if n not in self.ports]
        if missing:
            failed = next((self.failed[n] for n in missing if n in self.failed), None)
            self.steps.append(record(step.socket, call, NOT_RUN, 0, f"{missing[0]} bound no port"))
            return failed or self.steps[-1]
        a, b = (self.ports[n] for n in names)
        answer = record(step.socket, call, "same" if a == b else "differ")
        answer["ports"] = {names[0]: a, names[1]: b}
        self.steps.append(answer)
        return answer

    def rebind(self, name: str) -> dict[str, Any]:
        """'rebind A': the bounded loop of ops.Executor._rebind, judged here."""
        p = self.planned[name]
        answer = self.send(
            name,
            {
                "op": "rebind",
                "call": f"rebind {name} ({REBINDS} binds to port 0)",
                "family": p.family,
                "type": p.type,
                "address": p.address,
                "options": self.option_requests(p),
                "tries": REBINDS,
            },
        )
        assert answer is not None  # the step made the socket first (probe._Run.settle)
        if answer["outcome"] == "ok":
            every = answer["came_back"] == answer["tries"]
            answer["outcome"] = "same" if every else "differ"
        del self.where[name]  # closed by the loop, whatever it met
        self.states[name] = "closed"
        return answer
