"""Goal suites: situations a candidate setting of "my" socket must turn out as needed.

A suite with a `goal:` block is a goal suite. Each case is a situation: its
sockets marked `candidate: true` are "mine" and take the candidate's options (or
are made by its factory); sockets marked `rival: true` are a second program's
and take each of the goal's rival option sets. A situation runs as one real
cell per candidate (x rival, x variant); its `need` says what the goal needs of
it, and evaluate() turns the cell's record into met / not met / unknown.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

from .candidates import Candidate, parse_set
from .model import Cell, SocketSpec, Step, Suite
from .spread import fairness

TRANSPORT_TYPE = {"tcp": "stream", "udp": "dgram"}
GOAL_ONLY = ("need", "where_possible", "for")
SOCKET_GOAL_ONLY = ("candidate", "rival")


@dataclass(frozen=True)
class Need:
    outcome: str  # ok | fail | any
    else_silent: tuple[str, ...] = ()
    receive: tuple[str, ...] = ()
    receive_all: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = {"ok": "every step succeeds", "fail": "the step under test fails", "any": ""}[
            self.outcome
        ]
        if self.else_silent:
            verb = "receives" if len(self.else_silent) == 1 else "receive"
            text += f", or {' and '.join(self.else_silent)} {verb} none of the traffic"
        if self.receive:
            text += f"; {', '.join(self.receive)} each receive some of the traffic"
        if self.receive_all:
            text += f"; {', '.join(self.receive_all)} each receive every datagram"
        return text.lstrip("; ")


@dataclass(frozen=True)
class Situation:
    """One case of a goal suite, before candidates and rivals are filled in."""

    id: str
    title: str
    line: int
    sockets: tuple[SocketSpec, ...]
    mine: tuple[str, ...]  # candidate sockets
    rivals: tuple[str, ...]  # rival sockets
    steps: tuple[Step, ...]
    under_test: int
    need: Need
    variants: tuple[tuple[tuple[str, str], ...], ...]  # () or variant dicts as items
    where_possible: bool = False
    design: bool | None = None  # for: {v6only: X}: a design only candidates with X use


@dataclass(frozen=True)
class GoalCell:
    goal: str
    transport: str
    situation: Situation
    candidate: Candidate
    rival: str | None  # option set text of the rival sockets


@dataclass
class Goal:
    id: str
    transport: str
    title: str
    probes: int
    candidates: list[Candidate]
    rivals: list[str]
    situations: list[Situation]
    variant_keys: dict[tuple[tuple[str, str], ...], str] = field(default_factory=dict)
    cells: dict[str, GoalCell] = field(default_factory=dict)


def of(suite: Suite, cell: Cell) -> GoalCell | None:
    goal: Goal | None = suite.goal
    return goal.cells.get(cell.name) if goal is not None else None


def expand(goal: Goal, suite: Suite, candidate: Candidate) -> list[Cell]:
    """The cells of one candidate: every situation it uses x rival x variant."""
    if candidate.library and candidate.library.get("transport") not in (None, goal.transport):
        return []
    cells = []
    for situation in goal.situations:
        if situation.design is not None and candidate.v6only not in (None, situation.design):
            continue
        rivals: list[str | None] = list(goal.rivals) if situation.rivals else [None]
        for rival, variant in itertools.product(rivals, situation.variants or ((),)):
            cell = _cell(goal, suite, situation, candidate, rival, variant)
            goal.cells[cell.name] = GoalCell(goal.id, goal.transport, situation, candidate, rival)
            cells.append(cell)
    return cells


def _cell(
    goal: Goal,
    suite: Suite,
    situation: Situation,
    candidate: Candidate,
    rival: str | None,
    variant: tuple[tuple[str, str], ...],
) -> Cell:
    fields = dict(variant)
    specs = []
    for spec in situation.sockets:
        if "family" in fields and not _fixed_family(situation, spec):
            spec = replace(spec, family=fields["family"])
        if spec.name in situation.mine:
            spec = replace(spec, options=candidate.options)
            if candidate.v6only is not None and spec.family == "inet6":
                spec = replace(spec, v6only=candidate.v6only)
        elif spec.name in situation.rivals and rival is not None:
            spec = replace(spec, options=parse_set(rival))
        specs.append(spec)
    vkey = goal.variant_keys.get(variant, "")
    parts = [candidate.id] + ([f"vs-{rival}"] if rival else []) + ([vkey] if vkey else [])
    label = "-".join(parts)
    return Cell(
        suite=suite.id,
        name=f"{situation.id}[{label}]",
        key=situation.id,
        variant=label,
        profile=None,
        sockets=tuple(specs),
        steps=situation.steps,
        under_test=situation.under_test,
        expectations=(),
        line=situation.line,
        variant_fields=variant,
        delivery_probes=goal.probes,
    )


def _fixed_family(situation: Situation, spec: SocketSpec) -> bool:
    """A socket whose family the case wrote (a dual-stack rival) keeps it across variants."""
    return spec.v6only is not None or spec.address.startswith("v4mapped")


def add_candidates(suite: Suite, extra: list[Candidate]) -> list[Cell]:
    """Cells of run-time candidates (servers, libraries) for a loaded goal suite."""
    goal: Goal | None = suite.goal
    if goal is None:
        return []
    cells = []
    for candidate in extra:
        if candidate not in goal.candidates:
            twin = judged_by(candidate, goal.candidates)
            goal.candidates.append(candidate)
            if twin is None:
                cells += expand(goal, suite, candidate)
    suite.cells += cells
    return cells


def judged_by(candidate: Candidate, earlier: list[Candidate]) -> Candidate | None:
    """A library profile only described here (no real call) whose options and V6ONLY equal
    an earlier candidate's is judged by that candidate's cells: same system calls, so no
    cells of its own (recommend.described_rows reports it under its name)."""
    if candidate.kind != "library" or candidate.factory:
        return None
    return next(
        (
            c
            for c in earlier
            if (c.kind == "options" or (c.kind == "library" and not c.factory))
            and (c.options, c.v6only) == (candidate.options, candidate.v6only)
        ),
        None,
    )


# -- running (called by runner.execute) --------------------------------------------


def missing_options(gc: GoalCell, host_options: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(candidate options, rival options) that this OS lacks."""
    mine = [o for o in gc.candidate.options if o not in host_options]
    rival = [o for o in parse_set(gc.rival or "none") if o not in host_options]
    return mine, rival


def factories(gc: GoalCell) -> dict[str, str]:
    return dict.fromkeys(gc.situation.mine, gc.candidate.factory) if gc.candidate.factory else {}


def block(gc: GoalCell) -> dict[str, Any]:
    """A goal cell's goal block before it is judged (met: None): what a record and a
    model's prediction (foretold.py) both carry."""
    situation, candidate = gc.situation, gc.candidate
    out: dict[str, Any] = {
        "goal": gc.goal,
        "transport": gc.transport,
        "situation": situation.id,
        "title": situation.title,
        "candidate": candidate.id,
        "candidate_name": candidate.name,
        "kind": candidate.kind,
        "options": list(candidate.options),
        "v6only": candidate.v6only,
        "rival": gc.rival,
        "need": str(situation.need),
        "design": situation.design,
        "where_possible": situation.where_possible,
        "applies": True,
        "met": None,
        "why": "",
    }
    if candidate.library:
        out["library"] = dict(candidate.library)
    return out


def evaluate(gc: GoalCell, record: dict[str, Any], host_options: tuple[str, ...]) -> dict[str, Any]:
    """The goal block of a record: whether this situation turned out as the goal needs."""
    situation, candidate = gc.situation, gc.candidate
    out = block(gc)
    mine_missing, rival_missing = missing_options(gc, host_options)
    observed = record.get("observed")
    if mine_missing:
        out["why"] = f"{', '.join(mine_missing)} does not exist on this OS: not runnable here"
        return out
    if rival_missing:
        out.update(
            applies=False,
            why=f"{', '.join(rival_missing)} does not exist on this OS: no program can set it, "
            "so the situation does not arise",
        )
        return out
    if record["status"] == "error" or not observed:
        out["why"] = record.get("reason") or "did not run"
        return out
    out["met"], out["why"] = judge_need(situation, observed)
    delivery = observed.get("delivery")
    if delivery and situation.need.receive:
        out["fairness"] = fairness([delivery["received"].get(n, 0) for n in situation.need.receive])
    if candidate.factory:
        made = [s for s in observed["steps"] if s.get("factory")]
        if made:
            out["factory_set"] = made[0].get("set", {})
    return out


def judge_need(situation: Situation, observed: dict[str, Any]) -> tuple[bool, str]:
    need = situation.need
    steps = observed["steps"]
    failed = [s for s in steps if s["outcome"] != "ok"]
    test = str(situation.steps[situation.under_test])
    outcome = observed["outcome"]
    delivery = observed.get("delivery")
    said = _step_text(failed[0]) if failed else "every step succeeded"
    if need.outcome == "ok" and failed:
        return False, f"{said}, but the goal needs every step to succeed"
    if need.outcome == "fail" and outcome != "ok":
        return True, f"'{test}' failed as needed ({outcome}; {said})"
    if need.outcome == "fail":
        if not need.else_silent:
            return False, f"'{test}' succeeded, but the goal needs it to fail"
        got = {n: (delivery or {}).get("received", {}).get(n, 0) for n in need.else_silent}
        sent = (delivery or {}).get("sent", 0)
        if any(got.values()):
            shares = ", ".join(f"{n} received {k} of {sent}" for n, k in got.items())
            return False, f"'{test}' succeeded and {shares} sent to {delivery['target']}"  # type: ignore[index]
        where = f" of {sent} sent to {delivery['target']}" if delivery else ""
        return True, f"'{test}' succeeded, but {', '.join(got)} received none{where}"
    if need.receive or need.receive_all:
        if not delivery:
            return False, "no traffic could be sent: fewer than two sockets were ready"
        received, sent = delivery["received"], delivery["sent"]
        starved = [n for n in need.receive if not received.get(n)]
        short = [n for n in need.receive_all if received.get(n, 0) < sent or not sent]
        counts = ", ".join(f"{n}: {k}" for n, k in received.items())
        if starved or short:
            who = ", ".join(starved + short)
            return (
                False,
                f"{who} did not receive {'every' if short else 'any'} datagram/"
                f"connection ({counts} of {sent} sent to {delivery['target']})",
            )
        return True, f"{counts} of {sent} sent to {delivery['target']}"
    return True, said


def _step_text(step: dict[str, Any]) -> str:
    err = f" ({step['error']})" if step.get("error") else ""
    return f"{step['call']} on {step['socket']} gave {step['outcome']}{err}"


def require_message(record: dict[str, Any]) -> str:
    """bindconform_require: why a declared server misses a goal it must meet."""
    g = record["goal"]
    return (
        f"server {g['candidate_name']!r} misses required goal {g['goal']!r} "
        f"({g['transport']}): situation {g['situation']!r}"
        + (f" ({g['title']})" if g["title"] else "")
        + (f" against a second socket with {g['rival']}" if g["rival"] else "")
        + f": {g['why']}; needed: {g['need']}\n  cell: {record['id']}"
    )


__all__ = ["Goal", "GoalCell", "Need", "Situation", "evaluate", "expand", "of"]
