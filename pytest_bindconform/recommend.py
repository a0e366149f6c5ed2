"""From goal cells to answers: which candidates meet each goal here, and what to set.

A candidate meets a goal when every situation that applies turned out as the
goal needs (false as soon as one did not; null when one could not run, e.g. an
option this OS lacks). Situations marked where_possible that this host could not
run are listed as not run instead of making the answer unknown. A dual-stack
design (one [::] socket, or 0.0.0.0 plus [::]) meets the goal when its own
situations all do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

USUAL = ("exclusive", "restart", "dual-stack")  # what the usual server wants
DESIGNS = {False: "one [::] socket with V6ONLY off", True: "0.0.0.0 plus [::] with V6ONLY on"}


def verdict(cells: list[dict[str, Any]]) -> tuple[bool | None, list[dict[str, Any]]]:
    """(meets, deciding cells) of one candidate's situations for one goal."""
    live = [c for c in cells if c["goal"]["applies"]]
    missed = [c for c in live if c["goal"]["met"] is False]
    if missed:
        return False, missed
    unknown = [c for c in live if c["goal"]["met"] is None and not c["goal"]["where_possible"]]
    if unknown:
        return None, unknown
    met = [c for c in live if c["goal"]["met"]]
    return (True, met) if met else (None, live)


def _by_design(cells: list[dict[str, Any]]) -> tuple[bool | None, list[dict[str, Any]], Any]:
    """The best design's verdict: common situations plus those of one design."""
    common = [c for c in cells if c["goal"]["design"] is None]
    designs = sorted({c["goal"]["design"] for c in cells} - {None})
    if not designs:
        return (*verdict(common), None)
    tried = [(verdict(common + [c for c in cells if c["goal"]["design"] == d]), d) for d in designs]
    rank = {True: 0, None: 1, False: 2}
    (meets, deciding), design = min(tried, key=lambda t: rank[t[0][0]])
    return meets, deciding, design


def rows(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in results:
        g = r.get("goal")
        if g:
            groups.setdefault((g["goal"], g["transport"], g["candidate"]), []).append(r)
    out = []
    for (goal, transport, cid), cells in groups.items():
        meets, deciding, design = _by_design(cells)
        first = cells[0]["goal"]
        why = next((c["goal"]["why"] for c in deciding if c["goal"]["why"]), "")
        not_run = [
            c["id"]
            for c in cells
            if c["goal"]["applies"] and c["goal"]["met"] is None and c["goal"]["where_possible"]
        ]
        fair = [c["goal"]["fairness"] for c in cells if c["goal"].get("fairness") is not None]
        row: dict[str, Any] = {
            "goal": goal,
            "transport": transport,
            "candidate": first["candidate_name"],
            "candidate_id": cid,
            "kind": first["kind"],
            "options": first["options"],
            "v6only": first["v6only"],
            "meets": meets,
            "cells": [c["id"] for c in deciding],
            "why": why,
            "basis": "measured",
            "not_run": not_run,
        }
        if design is not None:
            row["design"] = DESIGNS[design]
        if fair:
            row["fairness"] = min(fair)
        if first.get("library"):
            row["library"] = first["library"]
        out.append(row)
    return sorted(out, key=_order)


def _order(row: dict[str, Any]) -> tuple[str, int, tuple[int, int, str]]:
    order = {g: i for i, g in enumerate((*USUAL, "share", "multicast"))}
    return (row["transport"], order.get(row["goal"], 9), _simple(row))


def described_rows(goal_rows: list[dict[str, Any]], host_os: str) -> list[dict[str, Any]]:
    """Rows of library profiles judged by an equal candidate's cells (goals.judged_by):
    the twin's verdict under the library's name, basis 'described' (its cited options)."""
    from .candidates import library_candidates, profiles

    try:
        libs = [c for c in library_candidates(profiles(), host_os) if not c.factory]
    except ImportError:
        return []
    out = []
    for goal, transport in dict.fromkeys((r["goal"], r["transport"]) for r in goal_rows):
        mine = [r for r in goal_rows if (r["goal"], r["transport"]) == (goal, transport)]
        have = {r["candidate_id"] for r in mine}
        for lib in libs:
            if lib.id in have or (lib.library or {}).get("transport") not in (None, transport):
                continue
            twin = next(
                (
                    r
                    for r in mine
                    if (tuple(r["options"]), r["v6only"]) == (lib.options, lib.v6only)
                    and (r["kind"] == "options" or r["kind"] == "library" and "judged_by" not in r)
                ),
                None,
            )
            if twin is not None:
                row = {**twin, "candidate": lib.name, "candidate_id": lib.id, "kind": "library"}
                out.append({**row, "library": lib.library, "judged_by": twin["candidate_id"]})
    return out


def _simple(row: dict[str, Any]) -> tuple[int, int, str]:
    from .candidates import STANDARD_OPTIONS

    base = "+".join(row["options"]) or "none"
    kind = {"options": 0, "server": 1, "library": 2}.get(row["kind"], 3)
    rank = STANDARD_OPTIONS.index(base) if base in STANDARD_OPTIONS else 99
    return (kind, len(row["options"]) if kind == 0 else rank, row["candidate_id"])


def _base(row: dict[str, Any]) -> str:
    """The candidate without its V6ONLY part: what joins goals into one setting."""
    return "+".join(row["options"]) or "none" if row["kind"] == "options" else row["candidate_id"]


def recommend(goal_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per transport: the simplest option set meeting every usual goal measured here."""
    out = []
    for transport in sorted({r["transport"] for r in goal_rows}):
        mine = [r for r in goal_rows if r["transport"] == transport and r["kind"] == "options"]
        wants = [g for g in USUAL if any(r["goal"] == g for r in mine)]
        if not mine:
            continue  # only servers or libraries ran here: their rows are the answer
        bases = list(dict.fromkeys(_base(r) for r in sorted(mine, key=_simple)))
        table = {b: {g: _best(mine, b, g) for g in wants} for b in bases}
        meeting = [b for b in bases if all(table[b][g]["meets"] for g in wants)]
        extra = _others(goal_rows, transport)
        if not wants:  # only share/multicast ran: say which settings meet those
            out.append(
                {
                    "transport": transport,
                    "wants": [],
                    "candidate": None,
                    "options": [],
                    "design": "",
                    "meets": None,
                    "cells": [],
                    "text": f"{transport.upper()}: " + extra.removeprefix(". Other goals — "),
                    "trade_off": "",
                }
            )
            continue
        if meeting:
            best = meeting[0]
            chosen = table[best]
            dual = chosen.get("dual-stack", {})
            setting = best if best != "none" else "no option"
            design = dual.get("design") or ""
            text = f"{transport.upper()}: set {setting}" + (
                f"; dual-stack: {design}" if design else ""
            )
            text += f" — meets {', '.join(wants)} here"
            out.append(
                {
                    "transport": transport,
                    "wants": wants,
                    "candidate": setting,
                    "options": chosen[wants[0]]["options"],
                    "design": design,
                    "meets": True,
                    "cells": [c for g in wants for c in chosen[g]["cells"]][:12],
                    "text": text + extra,
                    "trade_off": "",
                }
            )
            continue
        trade = []
        for b in bases:
            got = [g for g in wants if table[b][g]["meets"]]
            lost = [g for g in wants if table[b][g]["meets"] is False]
            if got and lost:
                why = table[b][lost[0]]
                trade.append(
                    f"{b} meets {', '.join(got)} but not {', '.join(lost)} "
                    f"({why['why']}; {why['cells'][0] if why['cells'] else ''})"
                )
        out.append(
            {
                "transport": transport,
                "wants": wants,
                "candidate": None,
                "options": [],
                "design": "",
                "meets": False,
                "cells": [],
                "text": f"{transport.upper()}: no single setting meets {', '.join(wants)} here"
                + extra,
                "trade_off": "; ".join(trade) or "no candidate meets any of them",
            }
        )
    return out


def _best(rows_: list[dict[str, Any]], base: str, goal: str) -> dict[str, Any]:
    """A base's row for a goal: for dual-stack, its best V6ONLY variant (none: unknown)."""
    found = [r for r in rows_ if _base(r) == base and r["goal"] == goal]
    rank = {True: 0, None: 1, False: 2}
    unknown: dict[str, Any] = {
        "meets": None,
        "cells": [],
        "why": "not run",
        "options": [],
        "design": "",
    }
    return min(found, key=lambda r: rank[r["meets"]]) if found else unknown


def _others(goal_rows: list[dict[str, Any]], transport: str) -> str:
    """Goals beyond the usual ones (share, multicast): which plain settings meet them."""
    parts = []
    for goal in ("share", "multicast"):
        met = [
            r["candidate"]
            for r in goal_rows
            if r["transport"] == transport
            and r["goal"] == goal
            and r["kind"] == "options"
            and r["meets"]
        ]
        if any(r["goal"] == goal and r["transport"] == transport for r in goal_rows):
            parts.append(f"{goal}: {', '.join(met) if met else 'no plain setting'}")
    return f". Other goals — {'; '.join(parts)}" if parts else ""


def build(results: list[dict[str, Any]], host_os: str) -> dict[str, Any] | None:
    """The report's 'recommendations', or None when no goal suite ran."""
    goal_rows = rows(results)
    if not goal_rows:
        return None
    goal_rows = sorted(goal_rows + described_rows(goal_rows, host_os), key=_order)
    return {
        "os": host_os,
        "basis": "measured",
        "goals": goal_rows,
        "recommended": recommend(goal_rows),
    }


def merged(
    leads: list[tuple[str, dict[str, Any] | None]], said: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any] | None:
    """The merged report's lead: goal x OS with the recommended setting per OS, each
    labelled with its basis: a host's measurement, or for an OS no host measured the
    rows its sources give (foretold.foretell: `said`, os -> documented/derived rows).
    Those rows are kept for measured OSes too, and where a measured row and such a row
    of the same OS disagree, that is a finding."""
    per_host: dict[str, Any] = {}
    for key, recs in leads:  # (host key, that report's 'recommendations')
        per_host[key] = per_host.get(key) or recs
    if not any(per_host.values()):
        return None
    table = []
    goal_rows = []
    for key, recs in per_host.items():
        if not recs:
            continue
        for rec in recs["recommended"]:
            table.append({"host": key, "os": recs["os"], "basis": recs["basis"], **rec})
        goal_rows += [{**r, "host": key, "os": recs["os"]} for r in recs["goals"]]
    measured = {t["os"] for t in table}
    for os_name, s in (said or {}).items():
        source = {"os": os_name, "basis": s["basis"], "provenance": s["provenance"]}
        if os_name not in measured:  # a measured row wins
            table += [{**source, **rec} for rec in s["recommended"]]
        goal_rows += [{**r, **source} for r in s["goals"]]
    return {"table": table, "goals": goal_rows, "findings": findings(goal_rows)}


def findings(goal_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where a host measured a goal row one way and its OS's documents or models say the
    other (both true/false: an unknown disagrees with nothing)."""
    said = {
        (r["os"], r["goal"], r["transport"], r["candidate_id"]): r
        for r in goal_rows
        if r["basis"] != "measured"
    }
    out = []
    for r in goal_rows:
        other = said.get((r["os"], r["goal"], r["transport"], r.get("candidate_id", "")))
        if r["basis"] != "measured" or other is None or None in (r["meets"], other["meets"]):
            continue
        if r["meets"] != other["meets"]:
            out.append(
                {
                    "os": r["os"],
                    "host": r["host"],
                    "goal": r["goal"],
                    "transport": r["transport"],
                    "candidate": r["candidate"],
                    "measured": r["meets"],
                    "basis": other["basis"],
                    "said": other["meets"],
                    "why": r["why"],
                    "said_why": other["why"],
                    "cells": r["cells"][:5],
                    "said_cells": other["cells"][:5],
                    "provenance": other["provenance"],
                }
            )
    return out
