"""One cell end to end: plan, port, probe, judge; the result is one report record.

The record is made of builtins only, so it travels from xdist workers to the
controller unchanged and is exactly what the JSON report stores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from . import goals, ownerpool, probe
from .candidates import FactoryProblem
from .host import Host
from .memo import Memo
from .model import Cell, Profile, Suite
from .oracles import NOT_RUN, Judgement, applies, judge
from .ports import Interference, PortAllocator


@dataclass
class Context:
    host: Host
    gates: dict[str, str]
    ports: PortAllocator

    @property
    def gate(self) -> str:
        return self.gates.get(self.host.os, "")


_DESCRIBED: Memo[dict[str, Any]] = Memo(limit=100_000)


def describe(cell: Cell, suite: Suite) -> dict[str, Any]:
    """The host-independent part of a record: what the cell is and what is expected.

    Made once per cell (a rerun, a missing result and the xdist controller ask again);
    the caller gets its own top-level dict and expectation table to fill in."""
    made = _DESCRIBED.get((cell, suite), lambda: _describe(cell, suite))
    return {**made, "expected": dict(made["expected"])}


def _describe(cell: Cell, suite: Suite) -> dict[str, Any]:
    position = cell.position
    steps, under_test = _steps(cell)
    return {
        "id": f"{suite.path}::{cell.name}",
        "suite": suite.id,
        "name": cell.name,
        "key": cell.key,
        "variant": cell.variant,
        "profile": cell.profile,
        "line": cell.line,
        "grid": None
        if position is None
        else {
            "row": position.row,
            "column": position.column,
            "row_label": position.row_label,
            "column_label": position.column_label,
        },
        "expected": _EXPECTED.get((cell.expectations, suite), lambda: _expected(cell, suite)),
        "steps_planned": steps,
        "under_test": under_test,
    }


# Cells share their expectation and step tuples (cases._shared), so what is made of them
# alone is made once per tuple: the xdist controller describes every cell again, and
# these took 40 % of it. The parts are read, never changed, by whoever gets a record.
_EXPECTED: Memo[dict[str, dict[str, Any]]] = Memo(limit=100_000)
_STEPS: Memo[tuple[list[str], str]] = Memo(limit=100_000)


def _expected(cell: Cell, suite: Suite) -> dict[str, dict[str, Any]]:
    return {
        exp.oracle: {
            "outcome": exp.outcome,
            "flags": ["undefined-delivery"] if exp.undefined_delivery else [],
            **({"receiver": exp.receiver} if exp.receiver else {}),
            **({"spread": exp.spread, "fairness_min": exp.fairness_min} if exp.spread else {}),
            "provenance": suite.oracles[exp.oracle].provenance,
        }
        for exp in cell.expectations
    }


def _steps(cell: Cell) -> tuple[list[str], str]:
    return _STEPS.get(
        (cell.steps,),
        lambda: ([str(s) for s in cell.steps], str(cell.steps[cell.under_test])),
        cell.under_test,
    )


DESCRIBED = ("suite", "name", "key", "variant", "profile", "line", "grid", "expected")


def travelling(record: dict[str, Any]) -> dict[str, Any]:
    """What of a record must cross from an xdist worker: what happened here. The rest is
    describe()'s, which the controller makes again from the suite it loads (rejoin)."""
    out = {k: v for k, v in record.items() if k not in DESCRIBED}
    out["scenario"] = {
        k: v for k, v in record["scenario"].items() if k not in ("profile", "steps", "under_test")
    }
    return out


def rejoin(travelled: dict[str, Any], cell: Cell, suite: Suite) -> dict[str, Any]:
    """The record travelling() was made of, key for key and in the same order."""
    record = describe(cell, suite)
    steps, under_test = record.pop("steps_planned"), record.pop("under_test")
    sent = travelled["scenario"]
    scenario = {"profile": cell.profile, "sockets": sent["sockets"]}
    scenario.update(steps=steps, under_test=under_test)
    scenario.update((k, v) for k, v in sent.items() if k != "sockets")
    record.update(travelled)
    record["scenario"] = scenario
    return record


def execute(cell: Cell, suite: Suite, ctx: Context) -> dict[str, Any]:
    record = _execute(cell, suite, ctx)
    situation = goals.of(suite, cell)
    if situation is not None:
        record["goal"] = goals.evaluate(situation, record, ctx.host.options)
    return record


def _execute(cell: Cell, suite: Suite, ctx: Context) -> dict[str, Any]:
    record = describe(cell, suite)
    record.update(
        scenario={
            "profile": cell.profile,
            "sockets": [],
            "steps": record.pop("steps_planned"),
            "under_test": record.pop("under_test"),
        },
        observed=None,
        verdicts=dict.fromkeys(
            (oid for oid in record["expected"] if oid in applicable(suite, ctx.host)), NOT_RUN
        ),
        gate=None,
        status="skip",
        reason="",
        duration=0.0,
    )
    start = time.perf_counter()
    profile = suite.profiles.get(cell.profile) if cell.profile else None
    try:
        planned = probe.plan(cell, profile, ctx.host)
    except probe.Unrunnable as exc:
        record["reason"] = str(exc)
        record["scenario"]["sockets"] = [unplanned(s) for s in cell.sockets]
        return record
    situation = goals.of(suite, cell)
    try:
        made_by = goals.factories(situation) if situation else None
        port, observation, confounded = _observe(cell, planned, profile, ctx, made_by)
    except FactoryProblem as exc:
        record.update(status="error", reason=str(exc), duration=time.perf_counter() - start)
        record["scenario"]["sockets"] = [p.to_dict("unknown") for p in planned]
        return record
    except Interference as exc:
        record.update(
            status="error", reason=f"interference: {exc}", duration=time.perf_counter() - start
        )
        record["scenario"]["sockets"] = [p.to_dict("unknown") for p in planned]
        return record
    record["scenario"]["sockets"] = [
        {
            **p.to_dict(observation.states.get(p.name, "unbound")),
            **({"port": observation.ports.get(p.name)} if p.port else {}),
        }
        for p in planned
    ]
    record["scenario"]["port"] = port
    if confounded:  # tries another process spoiled before this one ran clean
        record["confounded_tries"] = confounded
    record["observed"] = {
        "outcome": observation.outcome,
        "steps": observation.steps,
        "delivery": observation.delivery,
    }
    finding = environment_finding(observation.outcome, port, ctx.host) or probe_failure(observation)
    if finding:
        record.update(status="error", reason=finding, duration=time.perf_counter() - start)
        return record
    receiver = observation.delivery["receiver"] if observation.delivery else None
    if not _claimed_here(cell, suite, ctx.host):
        record["model"] = model_prediction(cell, profile, ctx.host, observation.outcome, receiver)
    judgement = _judge(cell, suite, ctx, observation)
    if (
        judgement.status == "fail"
        and receiver is not None
        and _only_receiver_differs(cell, ctx, observation)
    ):
        judgement = _rejudge_delivery(cell, suite, planned, profile, ctx, record, judgement)
    elif judgement.status == "fail" or _unproven_conflict(cell, observation):
        judgement = _reproduce(cell, suite, planned, profile, ctx, made_by, observation, judgement)
    record.update(
        verdicts=judgement.verdicts,
        gate=judgement.gate,
        status=judgement.status,
        reason=judgement.reason,
        duration=time.perf_counter() - start,
    )
    return record


def _judge(cell: Cell, suite: Suite, ctx: Context, observation: probe.Observation) -> Judgement:
    receiver = observation.delivery["receiver"] if observation.delivery else None
    host = ctx.host
    return judge(
        cell,
        observation.outcome,
        suite.oracles,
        ctx.gate,
        host.os,
        host.os_version,
        receiver,
        host.sysctl,
        observation.delivery,
    )


def _only_receiver_differs(cell: Cell, ctx: Context, observation: probe.Observation) -> bool:
    expected = cell.expectation(ctx.gate)
    return expected is not None and expected.outcome == observation.outcome


def _rejudge_delivery(
    cell: Cell,
    suite: Suite,
    planned: list[probe.PlannedSocket],
    profile: Profile | None,
    ctx: Context,
    record: dict[str, Any],
    first: Judgement,
) -> Judgement:
    """Load balancing is hashing: a lopsided sample is possible. Run the cell once more on a
    fresh port; keep both deliveries; pass only if the second run agrees, saying so."""
    try:
        _, again, _ = _observe(cell, planned, profile, ctx)
    except Interference:
        return first
    record["observed"]["delivery_reruns"] = [again.delivery]
    receiver = again.delivery["receiver"] if again.delivery else None
    second = _judge(cell, suite, ctx, again)
    if second.status != "pass":
        return first
    before = record["observed"]["delivery"]["receiver"]
    return Judgement(
        second.verdicts,
        second.gate,
        "pass",
        f"delivery differed between two runs on fresh ports: first received by {before}, then "
        f"by {receiver}; the gate agrees with the second (both are in the record)",
    )


def _reproduce(
    cell: Cell,
    suite: Suite,
    planned: list[probe.PlannedSocket],
    profile: Profile | None,
    ctx: Context,
    factories: dict[str, str] | None,
    observation: probe.Observation,
    first: Judgement,
) -> Judgement:
    """A disagreement, or a refused bind in a cell no proof after it can check, is a verdict
    only if the host does it again. A socket another process held for a moment on the cell's
    port (or its second address) can fail a later bind that no free-port proof around the
    cell sees; it will not be there again on a fresh port. Same outcomes there: the judgement
    stands. Otherwise: interference, no verdict."""
    unjudged = dict.fromkeys(first.verdicts, NOT_RUN)
    try:
        port, again, _ = _observe(cell, planned, profile, ctx, factories)
    except Interference as exc:
        return Judgement(unjudged, first.gate, "error", f"interference: {exc}")
    if _outcomes(again) == _outcomes(observation):
        if first.status != "fail":
            return first
        return Judgement(
            first.verdicts, first.gate, "fail", f"{first.reason} (the same again on a fresh port)"
        )
    return Judgement(
        unjudged,
        first.gate,
        "error",
        f"interference: the cell disagreed with {first.gate}, then ran otherwise on a fresh "
        f"port {port} ({again.outcome} instead of {observation.outcome}): another process most "
        "likely touched the first port while the cell ran, so no verdict is given. Stop it, or "
        "choose a quieter range with --bindconform-ports",
    )


def _unproven_conflict(cell: Cell, observation: probe.Observation) -> bool:
    """A bind refused in a cell that connects: the cell's port may be in TIME_WAIT
    afterwards, so no proof after it can tell whether someone else's socket was there."""
    return any(step.call == "connect" for step in cell.steps) and any(
        step["call"] == "bind" and step["outcome"] in CONFLICTS for step in observation.steps
    )


def _outcomes(observation: probe.Observation) -> list[str]:
    return [step["outcome"] for step in observation.steps]


CONFLICTS = ("INUSE", "ACCESS", "ADDRNOTAVAIL")
ATTEMPTS = 3


def _observe(
    cell: Cell,
    planned: list[probe.PlannedSocket],
    profile: Profile | None,
    ctx: Context,
    factories: dict[str, str] | None = None,
) -> tuple[int, probe.Observation, list[str]]:
    """Run the cell on a port no other process confounded (see ports.py); also say what
    spoiled the tries before."""
    kinds = _kinds(planned)
    connects = any(step.call == "connect" for step in cell.steps)
    children = any(p.owner != "self" for p in planned)
    seen: list[str] = []
    tried: list[str] = []
    unreached: int | None = None  # a port where the delivery reached nobody, to be confirmed
    for _ in range(ATTEMPTS + 1):
        port = ctx.ports.take(prove=True, kinds=kinds)
        tried.append(str(port))
        low, proven = own_ports(planned, ctx, kinds)
        proved = [port] + ([low] if proven else [])

        def before(proved: list[int] = proved) -> None:
            for each in proved:
                ctx.ports.prove(each, kinds, "once the cell's child processes were ready")

        try:
            observation = probe.run(
                cell,
                planned,
                port,
                ctx.host,
                profile,
                before=before if children else None,
                factories=factories,
                privileged=low,
            )
            suspect = suspect_after(observation, connects)
            if children and factories:
                ownerpool.settle()  # child owners closed the cell's sockets (a factory's too)
            why = _first_bind_conflict(observation, port, ctx.host) or _own_port_conflict(
                observation, planned, low, proven
            )
            if why:
                raise Interference(why)
            if suspect:
                unsettled = children and not factories
                prove_after(
                    ctx,
                    proved + ephemeral(observation, planned),
                    kinds,
                    unsettled=unsettled,
                    early=unsettled and not _children_bound(observation, planned),
                )
        except Interference as exc:
            seen.append(f"port {port}: {exc}")
            continue
        if unreached is None and _unreached(observation):
            unreached = port  # 'none' is also what a foreign socket that took it all shows
            continue
        if unreached is not None and not _unreached(observation):
            seen.append(
                f"port {unreached}: the delivery probe's traffic reached no socket of the cell, "
                f"but on port {port} it did: another process sharing the port took it"
            )
        return port, observation, seen
    if unreached is not None:
        seen.append(f"port {unreached}: the delivery reached no socket of the cell, unconfirmed")
    raise Interference(
        f"another process confounded every try: ports {', '.join(tried)} were held by another "
        "process while this cell ran there, or its traffic reached the cell, so the outcome "
        f"may be that process's doing; no verdict is given ({'; '.join(seen)})."
        " Stop it, or choose a quieter range with --bindconform-ports"
    )


def suspect_after(observation: probe.Observation, connects: bool) -> bool:
    """A later conflict or a delivery is trusted only if the port is proven free again
    once the cell closed its sockets (ports.py); a cell that connects cannot be (its
    TIME_WAIT entries), its peers are checked instead."""
    return not connects and (
        observation.delivery is not None
        or any(step["outcome"] in CONFLICTS for step in observation.steps)
    )


def prove_after(
    ctx: Context, ports: list[int], kinds: set[tuple[str, str]], unsettled: bool, early: bool
) -> None:
    """Each port is free again now that the cell closed its sockets, or Interference.
    `unsettled`: child owners may still be closing theirs (ownerpool.settle waits for
    that). `early`: none of theirs held a port, so a port is proved before that wait,
    which is needed only if the proof fails: a port proved free is free whoever closed
    what, and a port still held after the wait is held by someone else."""
    when = "after the cell closed its sockets"
    for port in ports:
        if unsettled and not early:
            ownerpool.settle()
            unsettled = False
        try:
            ctx.ports.prove(port, kinds, when)
        except Interference:
            if not unsettled:
                raise
            ownerpool.settle()
            unsettled = False
            ctx.ports.prove(port, kinds, when)


def _children_bound(observation: probe.Observation, planned: list[probe.PlannedSocket]) -> bool:
    """A socket of a child owner did more than exist (bound, listened, connected): it may
    hold a port until its owner's reset. In the usual conflict cell its bind failed."""
    children = {p.name for p in planned if p.owner != "self"}
    return any(
        step["socket"].split(".")[0] in children
        and step["outcome"] == "ok"
        and step["call"].split()[0] not in ("socket", "setsockopt")
        for step in observation.steps
    )


def _unreached(observation: probe.Observation) -> bool:
    """Sent, and no socket of the cell received any of it: a true 'none' happens again on
    another port, a foreign socket that was there for a moment most likely does not."""
    d = observation.delivery
    return d is not None and d["receiver"] == "none" and d["sent"] > 0


def own_ports(
    planned: list[probe.PlannedSocket], ctx: Context, kinds: set[tuple[str, str]]
) -> tuple[int, bool]:
    """The port of the cell's 'port: privileged' sockets (0: it has none), and whether it
    was proven free (an unprivileged run cannot prove it: ports.take_privileged)."""
    if not any(p.port == "privileged" for p in planned):
        return 0, False
    return ctx.ports.take_privileged(kinds)


def ephemeral(observation: probe.Observation, planned: list[probe.PlannedSocket]) -> list[int]:
    """Ports the kernel picked for 'port: 0' sockets: proved free again after the cell,
    like the cell's own port, once a conflict or a delivery makes them matter."""
    return sorted(
        {
            observation.ports[p.name]
            for p in planned
            if p.port == "0" and p.name in observation.ports
        }
    )


def _own_port_conflict(
    observation: probe.Observation, planned: list[probe.PlannedSocket], low: int, proven: bool
) -> str:
    """The first bind on the privileged port meets only foreign sockets, like the first
    bind on the cell's port; an ACCESS there is the privilege rule, not interference."""
    first = next(
        (s for s in observation.steps if s["call"] == "bind" and s.get("port") == low and low),
        None,
    )
    if first is None or first["outcome"] != "INUSE":
        return ""
    how = "proven free just before" if proven else "which this unprivileged run cannot prove free"
    return (
        f"the first bind of the privileged port {low} ({first['socket']}) failed with "
        f"{first['error']} on a port {how}: another process holds or took it"
    )


def _first_bind_conflict(observation: probe.Observation, port: int, host: Host) -> str:
    """On a port proven free, the cell's first bind can only meet someone else's socket."""
    # a factory's bind ('bind (factory X)') too: it binds the same proven port; a bind of
    # a socket's own port (its record says which) is not on the proven port
    first = next(
        (
            s
            for s in observation.steps
            if s["call"].split()[0] == "bind" and s.get("port", port) == port
        ),
        None,
    )
    if first is None or first["outcome"] not in ("INUSE", "ACCESS"):
        return ""
    if first["outcome"] == "ACCESS" and (host.privileged(port) or host.excluded(port)):
        return ""  # the environment, reported as such by environment_finding()
    return (
        f"the cell's first bind ({first['socket']}) failed with {first['error']} on a port "
        "proven free just before: another process took the port meanwhile"
    )


def _kinds(planned: list[probe.PlannedSocket]) -> set[tuple[str, str]]:
    """(family, type) pairs whose foreign sockets could conflict with these sockets."""
    kinds = set()
    for p in planned:
        kinds.add((p.family, p.type))
        if p.family == "inet6" and (p.v6only is not True or p.address.startswith("::ffff:")):
            kinds.add(("inet", p.type))  # a dual-stack or v4-mapped socket also meets IPv4 ones
    return kinds


def _claimed_here(cell: Cell, suite: Suite, host: Host) -> bool:
    """Does an oracle for this host make a claim on the cell? Then no model is needed."""
    here = applicable(suite, host)
    return any(exp.claims and exp.oracle in here for exp in cell.expectations)


_APPLICABLE: Memo[frozenset[str]] = Memo(limit=10_000)


def applicable(suite: Suite, host: Host) -> frozenset[str]:
    """The suite's oracles that apply to this host, worked out once per suite and host."""
    return _APPLICABLE.get(
        (suite, host),
        lambda: frozenset(
            oid
            for oid, oracle in suite.oracles.items()
            if applies(oracle, host.os, host.os_version, host.sysctl)
        ),
    )


def model_prediction(
    cell: Cell, profile: Profile | None, host: Host, observed: str, receiver: str | None
) -> dict[str, Any]:
    """The host OS's executable model, kept apart from documented expectations: it covers
    what no document does (UDP on Windows, three sockets) and never gates a cell."""
    said = _predicted(host.os, cell, profile)
    if said.outcome == "unknown":
        agrees = "no-claim"
    elif (
        said.outcome != observed
        or receiver is not None
        and said.receiver not in ("unknown", receiver)
    ):
        agrees = "disagree"
    else:
        agrees = "agree"
    return {
        "os": host.os,
        "outcome": said.outcome,
        "receiver": said.receiver if receiver is not None else None,
        "verdict": agrees,
        "provenance": f"model:{host.os}",  # pytest_bindconform/models/<os>.py, not a document
    }


_PREDICTED: Memo[Any] = Memo()


def _predicted(os: str, cell: Cell, profile: Profile | None) -> Any:
    """models.cells.predict, once per shape: it reads only the OS, the profile and the
    cell's sockets, steps and step under test, which cells share (cases._shared)."""
    from .models.cells import predict

    shape = (profile, cell.sockets, cell.steps)
    return _PREDICTED.get(shape, lambda: predict(os, cell, profile), os, cell.under_test)


def probe_failure(observation: probe.Observation) -> str:
    """A delivery probe that could not send all it planned names no receiver: an error."""
    delivery = observation.delivery
    if delivery is None or not delivery.get("failure"):
        return ""
    return (
        f"probe failure: the delivery probe sent {delivery['sent']} of {delivery['planned']} "
        f"planned, so who receives is not known: {delivery['failure']}"
    )


def environment_finding(outcome: str, port: int, host: Host) -> str:
    """An ACCESS that the host's configuration explains is a finding, never a verdict."""
    if outcome != "ACCESS":
        return ""
    if host.excluded(port):
        return (
            f"environment: port {port} lies in a range Windows has excluded "
            "(netsh interface ipv4 show excludedportrange); choose --bindconform-ports outside it"
        )
    if host.privileged(port):
        start = host.sysctl.get("net.ipv4.ip_unprivileged_port_start", "1024")
        return (
            f"environment: port {port} is privileged on this host (below {start}) and the run "
            "is unprivileged; choose --bindconform-ports above it or run as root"
        )
    return ""


def unplanned(spec: Any) -> dict[str, Any]:
    return {
        "name": spec.name,
        "family": spec.family,
        "type": spec.type,
        "v6only": spec.v6only,
        "options": [],
        "roles": list(spec.options),
        "address": None,
        "address_role": spec.address,
        "state": "not created",
    }
