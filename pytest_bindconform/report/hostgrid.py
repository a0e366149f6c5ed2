"""The host report's grids as plain values: what templates/grids.html.j2 draws.

Each suite is drawn as its published grids (one per variant) or, for cases off
any grid, as a case x variant table. A drawn result carries its colour classes,
its hover text (every call with its raw error), the keys of the oracles
expecting each outcome, and, where it needs a look, the full tables behind a
click. Only plain values leave here; the template escapes every text. To draw
more of a result (say, a load-spreading distribution), add a field in
`details` and a line in the template's `more` macro.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from . import labels, matrix
from .merge import resolves
from .model import token

LEGEND = (  # (css class, mark, label, meaning)
    ("agree", "✓", "agree", "every applicable oracle that makes a claim agrees"),
    ("disagree", "✗", "gate disagrees", "the gate oracle disagrees: the cell fails"),
    ("finding", "!", "finding", "the gate agrees or makes no claim; another oracle disagrees"),
    ("noclaim", "·", "no claim", "ran; no applicable oracle makes a claim"),
    ("notrun", "–", "not run", "skipped on this host; the reason says how to enable it"),
    ("error", "⚠", "error", "interference, crash, or no result"),
)
MARK = {name: mark for name, mark, _, _ in LEGEND}
OPEN = 200  # cells: a suite's first grid up to this size is drawn open, larger ones on click

kind = matrix.kind  # the colour class of a result: one reading for host and merged pages


def notable(result: dict[str, Any]) -> bool:
    """Worth the full tables: it failed, erred, has no gate, or some oracle disagrees."""
    return result["status"] in ("fail", "error", "ungated") or (
        "disagree" in result["verdicts"].values()
    )


def expects(expectation: dict[str, Any]) -> str:
    receiver = expectation.get("receiver")
    return token(expectation) + (f"→{receiver}" if receiver else "")


def observed(result: dict[str, Any]) -> str:
    seen = result["observed"]
    if not seen:
        return "not run" if result["status"] == "skip" else result["status"]
    delivery = seen.get("delivery")
    named = any(e.get("receiver") for e in result["expected"].values())
    return str(seen["outcome"]) + (f"→{delivery['receiver']}" if named and delivery else "")


def others_disagree(result: dict[str, Any]) -> list[str]:
    """Sources for other OSes (they do not apply here) that claim another outcome than
    this host's: a finding about how portable the behaviour is, drawn in colour."""
    seen = (result.get("observed") or {}).get("outcome")
    if seen is None:
        return []
    return [
        oid
        for oid, exp in result["expected"].items()
        if oid not in result["verdicts"]
        and exp["outcome"] not in ("unknown", "n/a")
        and exp["outcome"] != seen
    ]


def socket_text(s: dict[str, Any]) -> str:
    v6 = "" if s["v6only"] is None else f" v6only={'on' if s['v6only'] else 'off'}"
    owner = f" owned by {s['owner']}" if s.get("owner") not in (None, "self") else ""
    return f"{s.get('name', '')} {s['family']}/{s['type']}{v6}{owner}"


def port_text(step: dict[str, Any]) -> str:
    """The ports a step names: ' port 50523' of a bind with its own port, ' (a 50523,
    b 58635)' of compare-ports, ' (came back 0 of 100)' of rebind."""
    if "came_back" in step:
        return f" (came back {step['came_back']} of {step['tries']})"
    if isinstance(step.get("ports"), dict):
        return " (" + ", ".join(f"{k} {v}" for k, v in step["ports"].items()) + ")"
    if "waited" in step:
        return f" (waited {step['waited']:.1f} s, {step['tries']} tries)"
    return f" port {step['port']}" if "port" in step else ""


def calls_text(result: dict[str, Any]) -> list[str]:
    """The calls as run, one line per run of calls on one socket, each bind with its address.

    'second inet/stream: socket ok, setsockopt SO_REUSEPORT ok, bind 0.0.0.0 INUSE
    (EADDRINUSE 98)': the options and addresses of the sockets read from the calls.
    """
    sockets = {s.get("name", ""): s for s in result["scenario"]["sockets"]}
    runs: list[tuple[str, str, list[str]]] = []  # (socket, how it is shown, calls)
    for step in result["observed"]["steps"]:
        name, call = step["socket"], step["call"]
        if call == "bind" and sockets.get(name, {}).get("address"):
            call += f" {sockets[name]['address']}"
        call += port_text(step)
        raw = f" ({step.get('error') or 'errno'} {step['errno']})" if step["errno"] else ""
        if not runs or runs[-1][0] != name:
            new = name in sockets and all(n != name for n, _, _ in runs)
            runs.append((name, socket_text(sockets[name]) if new else name, []))
        runs[-1][2].append(f"{call} {step['outcome']}{raw}")
    return [f"{shown}: {', '.join(calls)}" for _, shown, calls in runs]


def delivery_text(delivery: dict[str, Any]) -> str:
    got = ", ".join(f"{k} {v}" for k, v in delivery["received"].items())
    return (
        f"delivery: {delivery['sent']} sent to {delivery['target']}; received {got}"
        f" → {delivery['receiver']}"
    )


def model_text(model: dict[str, Any]) -> str:
    """The host OS model's prediction: never an oracle, so said apart and only in words."""
    receiver = f"→{model['receiver']}" if model.get("receiver") else ""
    return f"model {model['os']} predicts {model['outcome']}{receiver}: {model['verdict']}"


def hover(result: dict[str, Any]) -> str:
    """The title tooltip, plain text: the cell, why, and every call with its raw error;
    the OS model's prediction where it does not agree."""
    why = f"{result['status']}: {result['reason']}" if result["reason"] else result["status"]
    lines = [result["name"] or result["id"], why]
    seen = result["observed"]
    if seen:
        lines += calls_text(result)
        if seen.get("delivery"):
            lines.append(delivery_text(seen["delivery"]))
        if result.get("model") and result["model"]["verdict"] != "agree":
            lines.append(model_text(result["model"]))
    else:
        sockets = result["scenario"]["sockets"]
        lines += [f"sockets: {'; '.join(map(socket_text, sockets))}"]
        lines += [f"planned: {', '.join(result['scenario']['steps'])}"]
    return "\n".join(lines)


def letters_of(suite: dict[str, Any] | None, results: list[dict[str, Any]]) -> dict[str, str]:
    oids = list((suite or {}).get("oracles", {}))
    oids += [o for r in results for o in r["expected"] if o not in oids]
    return {oid: chr(ord("A") + i) if i < 26 else oid for i, oid in enumerate(oids)}


def alternatives(group: list[dict[str, Any]]) -> list[str]:
    """Labels telling apart cells a published table merged into one ('default or reuse')."""
    if len(group) < 2:
        return [""]
    split = [r["key"].split(",") for r in group]
    differ = [i for i in range(len(split[0])) if len({tuple(s[i : i + 1]) for s in split}) > 1]
    return [",".join(s[i] for i in differ if i < len(s)) for s in split]


def look(result: dict[str, Any]) -> str:
    """The classes of a drawn result: its kind, and 'other' where another OS's source
    disagrees with what this host did."""
    return kind(result) + (" other" if others_disagree(result) else "")


def tally(results: list[dict[str, Any]]) -> str:
    """'36 cells: ✓ 30 agree · – 6 not run': how a grid or a suite came out, at a glance."""
    counts = Counter(kind(r) for r in results)
    shown = [f"{mark} {counts[name]} {label}" for name, mark, label, _ in LEGEND if counts[name]]
    return f"{len(results)} cell{'s' if len(results) != 1 else ''}: " + " · ".join(shown)


def plain(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "none"
    return "unknown" if value is None else str(value)


def keys(result: dict[str, Any], letters: dict[str, str]) -> dict[str, Any]:
    """'A<i>CD</i> INUSE · <i>B</i> ok*' as data: per expected outcome, the oracles'
    keys as runs of one style (i: does not apply here; u: disagrees; em: another OS's
    source claiming another outcome than this host's). Single letters are joined
    ('ACD'), longer keys spaced ('A CD oracle-27')."""
    order = list(letters)
    oids = sorted(result["expected"], key=lambda o: order.index(o) if o in order else len(order))
    joined = all(len(letters.get(o, o)) == 1 for o in oids)
    style = {None: "i", "disagree": "u"}
    other = set(others_disagree(result))
    groups: dict[str, list[list[str]]] = {}
    for oid in oids:
        how = "em" if oid in other else style.get(result["verdicts"].get(oid), "")
        runs = groups.setdefault(expects(result["expected"][oid]), [])
        if joined and runs and runs[-1][0] == how:
            runs[-1][1] += letters.get(oid, oid)
        else:
            runs.append([how, letters.get(oid, oid)])
    return {
        "sep": "" if joined else " ",
        "groups": [{"runs": runs, "token": tok} for tok, runs in groups.items()],
    }


def details(result: dict[str, Any], letters: dict[str, str]) -> dict[str, Any]:
    """The expanded cell: reason, sockets as created, every call, every expectation."""
    seen = result["observed"]
    model = result.get("model")
    return {
        "id": result["id"],
        "reason": result["reason"],
        "sockets": [
            [
                s.get("name", ""),
                f"{s['family']}/{s['type']}",
                "OS default" if s["v6only"] is None else plain(s["v6only"]),
                ", ".join(s["options"]) or "none",
                s["address"],
                s["state"],
            ]
            for s in result["scenario"]["sockets"]
        ],
        "steps": [
            [s["socket"], s["call"], s["outcome"], s["errno"] or "", s.get("error", "")]
            for s in seen["steps"]
        ]
        if seen
        else None,
        "delivery": delivery_text(seen["delivery"]) if seen and seen.get("delivery") else "",
        "model": f"{model_text(model)} ({model['provenance']})" if model else "",
        "expected": [
            [
                letters.get(oid, ""),
                oid + (" (gate)" if oid == result["gate"] else ""),
                expects(exp),
                result["verdicts"].get(oid, "does not apply"),
            ]
            for oid, exp in result["expected"].items()
        ],
    }


def drawn(result: dict[str, Any], letters: dict[str, str], label: str = "") -> dict[str, Any]:
    """One result in a grid cell; its full tables only where it needs a look."""
    return {
        "label": label,
        "look": look(result),
        "hover": hover(result),
        "head": f"{MARK[kind(result)]} {observed(result)}",
        "expects": keys(result, letters),
        "more": details(result, letters) if notable(result) else None,
    }


def spot(group: list[dict[str, Any]], letters: dict[str, str]) -> list[dict[str, Any]]:
    """A grid position: its result, or the several a published table merged into one."""
    return [drawn(r, letters, label) for r, label in zip(group, alternatives(group), strict=False)]


def table(
    corner: str,
    columns: list[str],
    rows: list[str],
    at: dict[tuple[int, int], list[dict[str, Any]]],
    letters: dict[str, str],
) -> dict[str, Any]:
    """A table.grid; at[i, j] holds the results drawn in row i, column j."""
    return {
        "corner": corner,
        "columns": columns,
        "rows": [
            {
                "label": label,
                "cells": [spot(at.get((i, j), []), letters) for j in range(len(columns))],
            }
            for i, label in enumerate(rows)
        ],
    }


def variant(
    title: str, results: list[dict[str, Any]], grid: dict[str, Any], first: bool
) -> dict[str, Any]:
    """One grid behind its tally line: open when something in it needs a look, or when it is
    the suite's first and small; the browser skips laying out the closed ones."""
    shown = any(map(notable, results)) or (first and len(results) <= OPEN)
    return {"title": title, "tally": tally(results), "open": shown, "grid": grid}


def grids(
    suite: dict[str, Any] | None, results: list[dict[str, Any]], letters: dict[str, str]
) -> dict[str, Any]:
    """Grid cells in page orientation, one table per variant; other cases as a case table."""
    out = []
    grid = (suite or {}).get("grid") or {}
    on_grid = [r for r in results if r["grid"] is not None and grid]
    for n, name in enumerate(dict.fromkeys(r["variant"] for r in on_grid)):
        mine = [r for r in on_grid if r["variant"] == name]
        where: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for r in mine:
            where.setdefault((r["grid"]["row"], r["grid"]["column"]), []).append(r)
        corner = f"{grid.get('row_socket', 'rows')} ↓ · {grid.get('column_socket', 'columns')} →"
        roles: dict[str, dict[str, str]] = {}
        for r in mine:
            resolves(roles, r)
        became = roles.get(mine[0]["profile"] or "", {})
        columns = [labels.with_options(c, became) for c in grid["columns"]]
        rows = [labels.with_options(c, became) for c in grid["rows"]]
        drawn_ = table(corner, columns, rows, where, letters)
        out.append(variant(name or "all cells", mine, drawn_, n == 0))
    rest = [r for r in results if r["grid"] is None or not grid]
    if rest:
        keys_ = list(dict.fromkeys(r["key"] for r in rest))
        cols = list(dict.fromkeys(r["variant"] for r in rest))
        at = {(keys_.index(r["key"]), cols.index(r["variant"])): [r] for r in rest}
        drawn_ = table("case ↓ · variant →", [c or "all" for c in cols], keys_, at, letters)
        out.append(variant("Cases", rest, drawn_, True))
    orientation = grid["orientation"] if grid and on_grid else ""
    return {"orientation": orientation, "variants": out}
