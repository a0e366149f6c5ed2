"""Goal rows for an OS from its sources instead of a host: 'documented' or 'derived'.

A merged report leads with goal x OS. An OS no merged host measured still gets
its rows: every goal cell of the hosts' goal suites is replayed through that
OS's executable model (pytest_bindconform/models/<os>.py), which encodes the
OS's sources and which tests/test_models.py holds to every documented,
measured and derived oracle of the case library. Windows' model rests on
Microsoft's documented tables and Wine's tests that pass on real Windows, so
its rows are 'documented'; FreeBSD's and macOS's rest on their kernel sources
and Linux's on rules measured by this project, so theirs are 'derived'. Where
a model makes no claim on a step, or does not say who receives the traffic,
the situation is unknown and the candidate's answer null: an unknown is never
a pass. A measured row of the same OS wins (recommend.merged), and where the
two disagree the merged report shows it as a finding.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from . import cases, goals, library, recommend
from .model import Cell, Step
from .models import OS_FAMILIES
from .models.base import OS_OPTIONS, UNKNOWN, endpoints
from .models.cells import Port, predict
from .yamlsrc import CaseFileError

WINDOWS_PAGE = (
    "https://learn.microsoft.com/windows/win32/winsock/"
    "using-so-reuseaddr-and-so-exclusiveaddruse (ms.date 05/31/2018)"
)
SOURCES: dict[str, tuple[str, str]] = {  # os -> (basis, provenance)
    "windows": (
        "documented",
        "pytest_bindconform/models/windows.py: tables C and D and the dual-stack paragraph "
        f"of Microsoft's 'Using SO_REUSEADDR and SO_EXCLUSIVEADDRUSE' ({WINDOWS_PAGE}) and "
        "Wine's dlls/ws2_32/tests/sock.c test_reuseaddr()/test_ipv6only(), assertions that "
        "pass on real Windows (docs/reference/windows-tables.md)",
    ),
    "freebsd": (
        "derived",
        "pytest_bindconform/models/freebsd.py and bsd.py: derived from FreeBSD "
        "sys/netinet/in_pcb.c in_pcbbind() and sys/netinet6/in6_pcb.c, never run "
        "(docs/reference/posix-semantics.md, column 'FreeBSD 14/15 (derived)')",
    ),
    "darwin": (
        "derived",
        "pytest_bindconform/models/darwin.py and bsd.py: derived from xnu "
        "bsd/netinet/in_pcb.c in_pcbbind(), never run "
        "(docs/reference/posix-semantics.md, column 'macOS / xnu (derived)')",
    ),
    "linux": (
        "derived",
        "pytest_bindconform/models/linux.py: rules measured by this project on Linux 6.18 "
        "and the kernel functions named at each rule, not a host of this merge "
        "(docs/reference/posix-semantics.md, column 'Linux >= 3.9 (measured)')",
    ),
}


class Reaching(Port):
    """A port that also answers a TCP client's connect to an address of its family
    ('connect c4 specific'): it reaches the listener receiving at that address (its
    own address before a wildcard covering it, a dual-stack [::] covering IPv4:
    models.base.endpoints), and is refused where none does, as on any loopback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reached: dict[str, str] = {}  # client -> the listener its connect reached

    def expect(self, model: Any, step: Step) -> str:
        client = self.socks.get(step.socket)
        if (
            step.call != "connect"
            or step.argument != "specific"
            or client is None
            or client.type != "stream"
            or client.state == "bound"
        ):
            return super().expect(model, step)
        to = self.host.specific(client.family, 0)
        stack = "v4" if client.family == "inet" else "v6"
        best: tuple[int, str] | None = None
        for name, sock in self.socks.items():
            if sock.type != "stream" or sock.state != "listening":
                continue
            for e in endpoints(sock):
                if e.stack == stack and e.address in (None, to):
                    score = 2 if e.address == to else 1
                    best = max(best or (0, ""), (score, name), key=lambda b: b[0])
        if best is None:
            return "REFUSED"
        self.reached[step.socket] = best[1]
        return "ok"

    def apply(self, step: Step, outcome: str) -> None:
        if step.call == "connect" and step.socket in self.reached:
            step = replace(step, argument=self.reached.pop(step.socket))
        super().apply(step, outcome)


def case_file(path: str) -> Path:
    """A suite's file as a report names it: 'cases/<file>' is the shipped library's."""
    if path.startswith("cases/"):
        try:
            shipped = library.directory() / path.removeprefix("cases/")
        except FileNotFoundError:
            shipped = Path(path)
        if shipped.is_file():
            return shipped
    return Path(path)


def judge(gc: goals.GoalCell, cell: Cell, said: list[str], receiver: str) -> tuple[Any, str]:
    """(met, why) of one situation from a model's step outcomes and receiver."""
    need = gc.situation.need
    steps = [str(s) for s in cell.steps]
    test = steps[cell.under_test]
    outcome = said[cell.under_test] if len(said) > cell.under_test else UNKNOWN
    failed = next((i for i, o in enumerate(said) if o not in ("ok", UNKNOWN)), None)
    silent = f"no source decides '{steps[len(said) - 1]}'" if UNKNOWN in said else ""
    if need.outcome == "fail":
        if outcome not in ("ok", UNKNOWN):
            return True, f"'{test}' fails as needed ({outcome})"
        if outcome == UNKNOWN:
            return None, silent or f"no source decides '{test}'"
        if not need.else_silent:
            return False, f"'{test}' succeeds, but the goal needs it to fail"
        if receiver == UNKNOWN:
            return None, f"'{test}' succeeds; no source says who receives the traffic"
        if receiver in need.else_silent or receiver in ("both", "shared"):
            return False, f"'{test}' succeeds and {receiver} receives traffic sent to my address"
        return True, f"'{test}' succeeds, but {', '.join(need.else_silent)} receives none"
    if failed is not None:
        return False, f"'{steps[failed]}' gives {said[failed]}, but the goal needs every step"
    if silent or len(said) < len(steps):
        return None, silent or "no source decides every step"
    if need.receive_all:
        return None, "no source says whether each receiver gets every datagram"
    if need.receive:
        if receiver == UNKNOWN:
            return None, "no source says who receives the traffic"
        many = receiver == "shared" or (receiver == "both" and len(need.receive) <= 2)
        if not many:
            return False, f"only {receiver} receives: the traffic is not spread"
        return True, f"{receiver} receive the traffic"
    return True, "every step succeeds"


def block(gc: goals.GoalCell, cell: Cell, os_family: str) -> dict[str, Any]:
    """The goal block a host of os_family would have, as its model foretells it."""
    out = goals.block(gc)
    mine, rival = goals.missing_options(gc, tuple(sorted(OS_OPTIONS[os_family])))
    if mine:
        out["why"] = f"{', '.join(mine)} does not exist on {os_family}: no such setting there"
        return out
    if rival:
        out.update(applies=False, why=f"{', '.join(rival)} does not exist on {os_family}")
        return out
    said: list[str] = []
    p = predict(os_family, cell, None, outcomes=said, port_type=Reaching)
    out["met"], out["why"] = judge(gc, cell, said, p.receiver)
    return out


def goal_suites(paths: list[str]) -> list[tuple[str, Any]]:
    """(path as reports name it, loaded goal suite) for the case files that load."""
    out = []
    for path in dict.fromkeys(paths):
        try:
            suite = cases.load_suite(case_file(path), display=path)
        except (OSError, CaseFileError):
            continue  # not here: that OS's rows are absent, never made up
        if suite.goal is not None:
            out.append((path, suite))
    return out


def foretell(paths: list[str], oses: tuple[str, ...] = OS_FAMILIES) -> dict[str, dict[str, Any]]:
    """os -> {basis, provenance, goals, recommended} for the goal suites at paths (the
    case files the hosts ran: the part before '::' of their goal cells' ids)."""
    suites = goal_suites(paths)
    out: dict[str, dict[str, Any]] = {}
    for os_family in oses:
        basis, provenance = SOURCES[os_family]
        results = []
        for path, suite in suites:
            for cell in suite.cells:
                gc = goals.of(suite, cell)
                if gc is not None and gc.candidate.kind == "options":
                    results.append(
                        {"id": f"{path}::{cell.name}", "goal": block(gc, cell, os_family)}
                    )
        rows = [{**r, "basis": basis} for r in recommend.rows(results)]
        if rows:
            out[os_family] = {
                "basis": basis,
                "provenance": provenance,
                "goals": rows,
                "recommended": recommend.recommend(rows),
            }
    return out
