"""Per-process run state, free of pytest so the engine can be driven without it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .host import Host
from .model import ROLES, Cell, SocketSpec, Suite
from .oracles import parse_gates
from .ports import PRIVILEGED_RANGE, PortAllocator, default_range, worker_slice
from .runner import Context
from .yamlsrc import CaseError, CaseFileError

try:  # pytest is a dependency, but keep this module importable without it
    from pytest import StashKey

    STATE: Any = StashKey["RunState"]()
except ImportError:  # pragma: no cover
    STATE = "bindconform_state"


@dataclass
class RunState:
    host: Host
    gates: dict[str, str]
    port_range: tuple[int, int] | None
    worker: tuple[int, int]  # (index, count) of this xdist worker
    outputs: dict[str, str] = field(default_factory=dict)
    suites: dict[str, str] = field(default_factory=dict)  # suite id -> file
    explore: tuple[int, int | None, bool] = (0, None, False)  # examples, seed, derandomize
    _context: Context | None = None

    def context(self) -> Context:
        if self._context is None:
            lo, hi = self.port_range or default_range(self.host)
            ports = worker_slice(lo, hi, *self.worker)
            low = worker_slice(*PRIVILEGED_RANGE, *self.worker)  # 'port: privileged' sockets
            self._context = Context(self.host, self.gates, PortAllocator(self.host, ports, low))
        return self._context

    def claim_suite(self, suite: Suite) -> CaseFileError | None:
        """Suite ids are global: two files with one id would merge their results."""
        other = self.suites.setdefault(suite.id, suite.path)
        if other == suite.path:
            return None
        message = f"duplicate suite id {suite.id!r}: already used by {other}; give this one its own"
        return CaseFileError([CaseError(suite.path, *suite.id_position, message)])


_MARKERS: dict[tuple[Any, ...], list[str]] = {}


def markers(cell: Cell, suite: Suite, host: Host) -> list[str]:
    """Marker names for -m: families, types, roles, the concrete options on this host, and
    other_user for cells with a socket owned by another user.

    Thousands of cells share a few kinds of socket, so each kind is worked out once per
    suite and profile (the host is the same for the whole process)."""
    names: list[str] = []
    for spec in cell.sockets:
        key = (suite.id, cell.profile, spec.family, spec.type, spec.options, spec.owner)
        if key not in _MARKERS:
            _MARKERS[key] = _spec_markers(spec, suite, cell.profile, host)
        names += _MARKERS[key]
    return list(dict.fromkeys(names))


def _spec_markers(spec: SocketSpec, suite: Suite, profile: str | None, host: Host) -> list[str]:
    from .probe import resolve_options

    options = resolve_options(spec, suite.profiles.get(profile) if profile else None, host)
    names = [spec.family, spec.type]
    names += [o for o in spec.options if o in ROLES and o != "default"]
    names += [o.lower() for o in options]
    if spec.owner in ("other-user", "unprivileged"):
        # needs root/a second account: CI's privileged pass (an 'unprivileged' socket is
        # another user's there, and this process's in an unprivileged run)
        names.append("other_user")
    return names


def explain(record: dict[str, Any]) -> str:
    """The failure text of a cell: what ran, what came back, what each oracle said."""
    lines = [
        f"{record['id']}",
        f"  observed {record['observed']['outcome']} at step '{record['scenario']['under_test']}'",
        "  steps:",
    ]
    for step in record["observed"]["steps"]:
        err = f" ({step['error']}, errno {step['errno']})" if step["error"] else ""
        lines.append(f"    {step['socket']:>8} {step['call']:<28} {step['outcome']}{err}")
    lines.append("  sockets:")
    for sock in record["scenario"]["sockets"]:
        opts = "+".join(sock["options"]) or "no options"
        v6 = "" if sock["v6only"] is None else f" v6only={int(sock['v6only'])}"
        port = f" port {sock['port']} ({sock['port_role']})" if sock.get("port_role") else ""
        lines.append(
            f"    {sock['name']:>8} {sock['family']}/{sock['type']}{v6} {opts} "
            f"at {sock['address']} ({sock['address_role']}){port}"
        )
    delivery = record["observed"].get("delivery")
    if delivery:
        counts = ", ".join(f"{k}: {v}" for k, v in delivery["received"].items())
        lines.append(
            f"  delivery: {delivery['sent']} sent to {delivery['target']}; received {counts} "
            f"-> {delivery['receiver']}"
        )
    lines.append("  expectations:")
    for oracle, exp in sorted(record["expected"].items()):
        verdict = record["verdicts"].get(oracle, "not applicable here")
        flag = "*" if exp["flags"] else ""
        gate = "  <- gate" if oracle == record["gate"] else ""
        lines.append(
            f"    {oracle:<28} {exp['outcome']}{flag:<2} {verdict}{gate}  [{exp['provenance']}]"
        )
    lines.append(f"  {record['reason']}")
    return "\n".join(lines)


__all__ = ["STATE", "RunState", "explain", "markers", "parse_gates"]
