"""The merged HTML's data: what templates/merged.html.j2 draws, as plain values.

Read like wpt.fyi: an overview of suites x hosts, then each suite as its
published grid with every host's outcome in the cell (one coloured mark per
host, in the host table's order), cells where OSes differ marked as such, and
errata grouped per grid position. The page stays small at any number of hosts:
a cell carries one mark per host and its outcomes once, never a host's trace.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .model import token

LEGEND = (  # (kind, mark, label, meaning)
    ("agree", "✓", "agree", "every applicable oracle that makes a claim agrees"),
    ("disagree", "✗", "gate disagrees", "the host's gate oracle disagrees: the cell fails"),
    ("finding", "!", "finding", "the gate agrees or makes no claim; another source disagrees"),
    ("noclaim", "·", "no claim", "ran; no applicable oracle makes a claim"),
    ("notrun", "–", "not run", "skipped on that host; its report says how to enable it"),
    ("error", "⚠", "error", "interference, crash, or no result"),
    ("absent", " ", "absent", "not in that host's report"),
)
MARK = {k: m for k, m, _, _ in LEGEND}


def kind(g: dict[str, Any]) -> str:
    """How one host's result lines up with the oracles (as in the host report)."""
    fixed = {"error": "error", "fail": "disagree", "skip": "notrun"}
    if g["status"] in fixed:
        return fixed[g["status"]]
    verdicts = set(g["verdicts"].values())
    if "disagree" in verdicts:
        return "finding"
    return "agree" if "agree" in verdicts else "noclaim"


def seen(g: dict[str, Any]) -> str:
    if g["outcome"] is None:
        return "not run" if g["status"] == "skip" else g["status"]
    return str(g["outcome"]) + (f"→{g['receiver']}" if g.get("receiver") else "")


def letters_of(suite: dict[str, Any] | None) -> dict[str, str]:
    oids = list((suite or {}).get("oracles", {}))
    return {oid: chr(ord("A") + i) if i < 26 else oid for i, oid in enumerate(oids)}


def expects(row: dict[str, Any], letters: dict[str, str]) -> str:
    """'AB INUSE · C ok*': which oracle (by key) expects what, for the reader to compare."""
    groups: dict[str, list[str]] = {}
    for oid, exp in row["expected"].items():
        if exp["outcome"] == "unknown":
            continue
        text = token(exp) + (f"→{exp['receiver']}" if exp.get("receiver") else "")
        groups.setdefault(text, []).append(letters.get(oid, oid))
    return " · ".join(f"{''.join(keys)} {text}" for text, keys in groups.items())


class View:
    """Per-host lookups shared by every cell of the page."""

    def __init__(self, merged: dict[str, Any]):
        self.merged = merged
        self.hosts = merged["hosts"]
        self.labels = [h["label"] for h in self.hosts]
        self.anchors = {e["cells"][0] for e in merged["errata"]}
        self.index = {c["id"]: i for i, c in enumerate(merged["cells"])}
        self._per_host: dict[str, list[dict[str, Any] | None]] = {}
        self._kinds: dict[str, list[str]] = {}

    def per_host(self, row: dict[str, Any]) -> list[dict[str, Any] | None]:
        """Host number -> its result of the cell (None: not in its report); made once."""
        out = self._per_host.get(row["id"])
        if out is None:
            out = self._per_host[row["id"]] = [None] * len(self.hosts)
            for g in row["results"]:
                for h in g["hosts"]:
                    out[h] = g
        return out

    def kinds(self, row: dict[str, Any]) -> list[str]:
        """Host number -> kind() of its result ('absent'); once per distinct result."""
        out = self._kinds.get(row["id"])
        if out is None:
            of = {id(g): kind(g) for g in row["results"]}
            out = [of[id(g)] if g else "absent" for g in self.per_host(row)]
            self._kinds[row["id"]] = out
        return out

    def cell(self, row: dict[str, Any], letters: dict[str, str], label: str = "") -> dict[str, Any]:
        """One cell row: its marks (runs of one kind), its outcomes once, its hover text."""
        results = self.per_host(row)
        kinds = self.kinds(row)
        runs: list[list[Any]] = []
        for k in kinds:
            if runs and runs[-1][0] == k:
                runs[-1][1] += MARK[k]
            else:
                runs.append([k, MARK[k]])
        counts = Counter(seen(g) for g in results if g)
        outcomes = [(text, n if len(counts) > 1 else 0) for text, n in counts.most_common()]
        hover = []  # only where hosts differ: which host (by number) saw what, and the call
        if row.get("differ"):
            for text in counts:
                who = [str(h + 1) for h, g in enumerate(results) if g and seen(g) == text]
                hover.append(f"{text}: hosts {' '.join(who)}")
            failed: dict[str, list[str]] = {}
            for h, g in enumerate(results):
                if g and g.get("failed"):
                    failed.setdefault(g["failed"], []).append(str(h + 1))
            hover += [f"{call} (hosts {' '.join(who)})" for call, who in failed.items()]
        anchor = f"c{self.index[row['id']]}" if row["id"] in self.anchors else ""
        return {
            "label": label,
            "runs": runs,
            "outcomes": outcomes,
            "expects": expects(row, letters),
            "differ": row.get("differ") or "",
            "title": "\n".join(hover),
            "anchor": anchor,
        }


def alternatives(group: list[dict[str, Any]]) -> list[str]:
    """Labels telling apart cells a published table merged into one ('default or reuse')."""
    if len(group) < 2:
        return [""]
    split = [r["key"].split(",") for r in group]
    differ = [i for i in range(len(split[0])) if len({tuple(s[i : i + 1]) for s in split}) > 1]
    return [",".join(s[i] for i in differ if i < len(s)) for s in split]


def grids(view: View, suite: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The suite's grids, one per variant, in page orientation; other cases as one table."""
    letters = letters_of(suite)
    grid = suite.get("grid") or {}
    out = []
    on_grid = [r for r in rows if r["grid"] is not None and grid]
    for name in dict.fromkeys(r["variant"] for r in on_grid):
        at: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for r in on_grid:
            if r["variant"] == name:
                at.setdefault((r["grid"]["row"], r["grid"]["column"]), []).append(r)
        corner = f"{grid.get('row_socket', 'rows')} ↓ · {grid.get('column_socket', 'columns')} →"
        out.append(table(view, name or "all cells", corner, grid["columns"], grid["rows"], at))
    rest = [r for r in rows if r["grid"] is None or not grid]
    if rest:
        keys = list(dict.fromkeys(r["key"] for r in rest))
        cols = list(dict.fromkeys(r["variant"] for r in rest))
        at = {}
        for r in rest:
            at.setdefault((keys.index(r["key"]), cols.index(r["variant"])), []).append(r)
        columns = [c or "all" for c in cols]
        out.append(table(view, "Cases", "case ↓ · variant →", columns, keys, at))
    for t in out:
        t["letters"] = letters
    return out


def table(
    view: View,
    name: str,
    corner: str,
    columns: list[str],
    row_labels: list[str],
    at: dict[tuple[int, int], list[dict[str, Any]]],
) -> dict[str, Any]:
    letters: dict[str, str] = {}
    cells = [r for group in at.values() for r in group]
    if cells:
        letters = letters_of(view.merged["suites"].get(cells[0]["suite"] or ""))
    body = []
    for i, label in enumerate(row_labels):
        line = []
        for j in range(len(columns)):
            group = at.get((i, j), [])
            line.append(
                spot(
                    [
                        view.cell(r, letters, alt)
                        for r, alt in zip(group, alternatives(group), strict=False)
                    ]
                )
            )
        body.append({"label": label, "cells": line})
    differ = Counter(r.get("differ") for r in cells)
    return {
        "name": name,
        "corner": corner,
        "columns": columns,
        "rows": body,
        "cells": len(cells),
        "differ_os": differ["os"],
        "differ_host": differ["host"],
    }


def spot(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """One grid position (its cells: one per variant a published table merged): the
    outline and anchor of the first cell having one, its hover text when alone."""
    return {
        "cells": cells,
        "differ": next((c["differ"] for c in cells if c["differ"]), ""),
        "anchor": next((c["anchor"] for c in cells if c["anchor"]), ""),
        "title": cells[0]["title"] if len(cells) == 1 else "",
    }


def overview(view: View, by_suite: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Suites x hosts: how many cells agree, disagree, are findings, did not run."""
    out = []
    for sid, rows in by_suite.items():
        counts = [Counter[str]() for _ in view.hosts]
        for r in rows:
            for h, k in enumerate(view.kinds(r)):
                counts[h][k] += 1
        differ = Counter(r.get("differ") for r in rows)
        suite = view.merged["suites"].get(sid, {})
        out.append(
            {
                "id": sid,
                "title": suite.get("title", sid or "case files that do not load"),
                "cells": len(rows),
                "differ_os": differ["os"],
                "differ_host": differ["host"],
                "hosts": [{k: c[k] for k in MARK} for c in counts],
            }
        )
    return out


def resolved(view: View, sid: str, suite: dict[str, Any]) -> list[dict[str, Any]]:
    """Each profile's roles and what they became per host: 'reuse → SO_REUSEPORT'."""
    out = []
    for profile, description in suite.get("profiles", {}).items():
        roles: dict[str, dict[str, list[str]]] = {}
        for h, host in enumerate(view.hosts):
            for role, options in host.get("resolves", {}).get(profile, {}).items():
                roles.setdefault(role, {}).setdefault(options, []).append(view.labels[h])
        out.append({"name": profile, "description": description, "roles": roles})
    return out


def errata(view: View) -> list[dict[str, Any]]:
    out = []
    suites = view.merged["suites"]
    for e in view.merged["errata"]:
        suite = suites.get(e["suite"] or "", {})
        letters = letters_of(suite)
        where = e["position"]
        place = f"{where['row']} × {where['column']}" if "row" in where else where["case"]
        out.append(
            {
                "suite": suite.get("title", e["suite"]),
                "sid": e["suite"],
                "position": place,
                "anchor": f"c{view.index[e['cells'][0]]}",
                "cells": len(e["cells"]),
                "documents": [
                    {
                        **d,
                        "key": letters.get(d["oracle"], ""),
                        "hosts": [view.labels[h] for h in d["hosts"]],
                    }
                    for d in e["documents"]
                ],
            }
        )
    return out


def fingerprint(info: dict[str, Any]) -> list[tuple[str, str]]:
    """The host facts that decide results, first; then the rest of the run."""
    h = info["host"]
    pairs = [
        ("OS", f"{h['os']} {h['os_release']} ({h['os_version']})"),
        ("kernel", f"{h['kernel']}, {h['machine']}"),
        ("python", h["python"]),
        ("privileges", "admin/root" if h.get("admin") else "unprivileged"),
        ("isolation", str(info["isolation"])),
        ("IPv6", "yes" if h.get("ipv6") else "no"),
        ("V6ONLY default", {True: "on", False: "off", None: "unknown"}[h.get("v6only_default")]),
        ("options", ", ".join(h.get("options", [])) or "none"),
    ]
    pairs += [(f"addresses {f}", ", ".join(a) or "none") for f, a in h["addresses"].items()]
    pairs += sorted(h.get("sysctl", {}).items())
    pairs += [("gate", str(info["gate"])), ("plugin", str(info["plugin_version"]))]
    pairs += [("run", f"{info['started']} → {info['finished']}, exit {info['exit_status']}")]
    return pairs


def page(merged: dict[str, Any]) -> dict[str, Any]:
    view = View(merged)
    by_suite: dict[str, list[dict[str, Any]]] = {sid: [] for sid in merged["suites"]}
    for c in merged["cells"]:
        by_suite.setdefault(c["suite"] if c["suite"] in merged["suites"] else "", []).append(c)
    by_suite = {sid: rows for sid, rows in by_suite.items() if rows}
    suites = []
    for sid, rows in by_suite.items():
        suite = merged["suites"].get(sid, {"title": sid, "oracles": {}, "profiles": {}})
        suites.append(
            {
                "id": sid,
                "title": suite.get("title", sid),
                "description": suite.get("description", ""),
                "oracles": [
                    {"key": letters_of(suite)[oid], "id": oid, **o}
                    for oid, o in suite.get("oracles", {}).items()
                ],
                "profiles": resolved(view, sid, suite),
                "grids": grids(view, suite, rows),
            }
        )
    hosts = [
        {
            "n": i + 1,
            "label": h["label"],
            "key": h["key"],
            "gate": h["run_info"]["gate"],
            "sources": h["sources"],
            "summary": h["summary"],
            "fingerprint": fingerprint(h["run_info"]),
            "simulated": bool(h["run_info"].get("simulated")),
        }
        for i, h in enumerate(merged["hosts"])
    ]
    return {
        "title": f"bind() conformance across {len(hosts)} hosts",
        "hosts": hosts,
        "legend": LEGEND[:-1],
        "overview": overview(view, by_suite),
        "suites": suites,
        "errata": errata(view),
        "differences": len(merged["differences"]),
        "created": merged["created"],
    }
