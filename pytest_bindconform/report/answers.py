"""Answers first: the recommendations, open questions and facts, in every output.

The terminal lines, the first Markdown section and the first HTML section come
from here (renderers call these at the top), so the question a user came with —
which options should my server set on this OS? — is answered before the ledger.
"""

from __future__ import annotations

import contextlib
import html
from dataclasses import dataclass, field
from typing import Any

from ..candidates import Candidate, FactoryProblem, library_candidates, parse_servers, profiles

MEETS = {True: "meets", False: "misses", None: "unknown"}
MARK = {True: "✓", False: "✗", None: "?"}


@dataclass
class RunCandidates:
    """Run-time candidates (declared servers, library profiles) and the goals servers need."""

    extra: list[Candidate] = field(default_factory=list)
    require: tuple[str, ...] = ()

    def missed_requirement(self, record: dict[str, Any]) -> str:
        """Asked of every cell: most have no server goal, and return before the import."""
        g = record.get("goal")
        if not g or g["kind"] != "server" or g["goal"] not in self.require:
            return ""
        from ..goals import require_message

        return require_message(record) if g["met"] is False else ""


def run_candidates(servers: list[str], require: str, os_family: str) -> RunCandidates:
    """Parse --bindconform-server/--bindconform-require; ValueError on malformed input."""
    extra = parse_servers(list(servers or []))
    wanted = tuple(require.replace(",", " ").split()) if require else ()
    if wanted and not extra:
        raise ValueError(
            f"bindconform_require ({' '.join(wanted)}) needs a server to judge: declare one "
            "with --bindconform-server NAME=module:callable"
        )
    with contextlib.suppress(ImportError, FactoryProblem):  # the libraries package is optional
        extra += library_candidates(profiles(), os_family)
    return RunCandidates(extra, wanted)


# -- terminal ------------------------------------------------------------------------


def received_text(delivery: dict[str, Any] | None) -> str:
    if not delivery:
        return "no traffic sent (fewer than two sockets could receive it)"
    counts = ", ".join(f"{n}: {k}" for n, k in delivery["received"].items())
    sent = f"{delivery['sent']} sent to {delivery['target']}"
    return f"{sent}; received {counts} -> {delivery['receiver']}"


def failing_call(record: dict[str, Any]) -> str:
    steps = (record.get("observed") or {}).get("steps", [])
    bad = next((s for s in steps if s["outcome"] not in ("ok", "not-run")), None)
    if bad is None:
        return "every call succeeded"
    err = f" ({bad.get('error')}, errno {bad.get('errno')})" if bad.get("error") else ""
    return f"'{bad['call']}' on {bad['socket']} gave {bad['outcome']}{err}"


def answer_line(record: dict[str, Any]) -> str:
    """One line: what happened in a cell no oracle judges."""
    observed = record.get("observed") or {}
    line = (
        f"observed {observed.get('outcome')} at '{record['scenario']['under_test']}'; "
        f"{failing_call(record)}; {received_text(observed.get('delivery'))}"
    )
    g = record.get("goal")
    if g:
        line = (
            f"{g['goal']} ({g['transport']}) {MEETS[g['met']]} for {g['candidate_name']}: "
            f"{g['why']} — {line}"
        )
    return line


def terminal_text(record: dict[str, Any]) -> str:
    from ..state import explain

    return answer_line(record) + "\n" + explain(record)


def status_word(record: dict[str, Any]) -> str:
    g = record.get("goal")
    if g:
        return f"{MEETS[g['met']].upper()} {g['goal']}"
    return f"OBSERVED {(record.get('observed') or {}).get('outcome')}"


def summary_lines(report: dict[str, Any], quiet: bool) -> list[str]:
    recs = report.get("recommendations")
    if not recs:
        return []
    simulated = report.get("run_info", {}).get("simulated")
    where = "SIMULATED, from a model" if simulated else "measured here"
    lines = [f"recommendations ({recs['os']}, {where}):"]
    for rec in recs["recommended"]:
        lines.append(f"  {rec['text']}")
        if rec["trade_off"]:
            lines.append(f"    trade-off: {rec['trade_off']}")
    servers = [r for r in recs["goals"] if r["kind"] in ("server", "library")]
    for r in [] if quiet else [r for r in servers if r["kind"] == "server"]:
        lines.append(
            f"  server {r['candidate']}: {r['goal']} ({r['transport']}) {MEETS[r['meets']]}"
        )
    libs = [r for r in servers if r["kind"] == "library"]
    if libs and not quiet:
        missed = sorted(
            {
                f"{r['candidate']} ({r['transport']} {r['goal']})"
                for r in libs
                if r["meets"] is False
            }
        )
        lines.append(
            f"  libraries: {len({r['candidate'] for r in libs})} judged; "
            f"{len(missed)} miss a goal" + (f": {', '.join(missed[:6])}" if missed else "")
        )
    return lines


# -- Markdown -------------------------------------------------------------------------


def _md(value: object) -> str:
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|")


def _row(*cells: object) -> str:
    return "| " + " | ".join(_md(c) for c in cells) + " |"


def _meets_md(meets: bool | None) -> str:
    return f"{MARK[meets]} {MEETS[meets]}"


def goal_matrix(goal_rows: list[dict[str, Any]], kind: str) -> tuple[list[str], list[list[Any]]]:
    """Candidates x (goal, transport): one cell per pair. Option sets are one row each: a
    dual-stack cell shows the V6ONLY design that works best."""

    def name(r: dict[str, Any]) -> str:
        return " + ".join(r["options"]) or "no option" if r["kind"] == "options" else r["candidate"]

    cols = list(dict.fromkeys((r["goal"], r["transport"]) for r in goal_rows))
    mine = [r for r in goal_rows if r["kind"] == kind]
    rank = {True: 0, None: 1, False: 2}
    by: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in mine:
        key = (name(r), r["goal"], r["transport"])
        if key not in by or rank[r["meets"]] < rank[by[key]["meets"]]:
            by[key] = r
    cands = list(dict.fromkeys(name(r) for r in mine))
    head = ["candidate", *(f"{g} {t}" for g, t in cols)]
    body = [[c, *(by.get((c, g, t)) for g, t in cols)] for c in cands]
    return head, body


def markdown_lines(report: dict[str, Any]) -> list[str]:
    """The first section of a host report: what to set, then every candidate per goal."""
    recs = report.get("recommendations")
    out: list[str] = []
    if recs:
        out += ["## Recommendations", "", f"Measured on this host ({_md(recs['os'])}).", ""]
        out += [
            f"* **{_md(r['text'])}**"
            + (f" — trade-off: {_md(r['trade_off'])}" if r["trade_off"] else "")
            for r in recs["recommended"]
        ]
        for kind, title in (
            ("options", "Candidates"),
            ("server", "Your servers"),
            ("library", "Libraries (their defaults)"),
        ):
            head, body = goal_matrix(recs["goals"], kind)
            if not body:
                continue
            out += ["", f"### {title} × goal", "", _row(*head), "|" + "---|" * len(head)]
            out += [_row(c, *(_cell_md(x) for x in cells)) for c, *cells in body]
        deciding = [r for r in recs["goals"] if r["meets"] is not True and r["cells"]]
        if deciding:
            out += ["", "<details><summary>Why a candidate misses (deciding cell)</summary>", ""]
            out += [
                f"* {_md(r['candidate'])} — {_md(r['goal'])} {_md(r['transport'])}: "
                f"{_md(r['why'])} (`{_md(r['cells'][0])}`)"
                for r in deciding[:200]
            ]
            out += ["", "</details>"]
    questions = [r for r in report["results"] if r["status"] == "ungated" and not r.get("goal")]
    if questions:
        out += [
            "",
            f"## Open questions answered ({len(questions)})",
            "",
            "Cells no oracle for this OS makes a claim on: what happened here.",
            "",
            _row("cell", "outcome", "failing call", "who received the traffic"),
            "|---|---|---|---|",
        ]
        out += [
            _row(
                r["id"],
                (r.get("observed") or {}).get("outcome"),
                failing_call(r),
                received_text((r.get("observed") or {}).get("delivery")),
            )
            for r in questions[:300]
        ]
        if len(questions) > 300:
            out.append(f"\n{len(questions) - 300} more in the JSON report")
    facts = [(sid, s) for sid, s in report.get("suites", {}).items() if s.get("facts")]
    if facts:
        out += ["", "## Facts, by suite", ""]
        for sid, s in facts:
            out.append(f"* **{_md(s['title'])}** (`{_md(sid)}`)")
            out += [f"  * {_md(f['fact'])} — _{_md(f['source'])}_" for f in s["facts"]]
    return out + ([""] if out else [])


def _cell_md(row: dict[str, Any] | None) -> str:
    if row is None:
        return "—"
    extra = f" ({row['design']})" if row.get("design") and row["meets"] else ""
    fair = f", fairness {row['fairness']}" if row.get("fairness") is not None else ""
    return _meets_md(row["meets"]) + extra + fair


def merged_markdown_lines(merged: dict[str, Any]) -> list[str]:
    recs = merged.get("recommendations")
    if not recs:
        return []
    out = [
        "## Recommended setting per OS",
        "",
        _row("goal", *_oses(recs)),
        "|---|" + "---|" * len(_oses(recs)),
    ]
    for line in _lead_rows(recs):
        out.append(_row(*line))
    out += _sources_md(merged, recs)
    libs = [r for r in recs["goals"] if r["kind"] == "library"]
    if libs:
        oses = _oses(recs)
        out += [
            "",
            "### Libraries × goal per OS",
            "",
            _row("library call", "goal", *oses),
            "|---|---|" + "---|" * len(oses),
        ]
        by = {(r["candidate"], r["goal"], r["transport"], r["os"]): r for r in libs}
        for cand, goal, transport in dict.fromkeys(
            (r["candidate"], r["goal"], r["transport"]) for r in libs
        ):
            cells = [by.get((cand, goal, transport, o)) for o in oses]
            out.append(
                _row(cand, f"{goal} {transport}", *(_cell_md(c) if c else "—" for c in cells))
            )
    return out + [""]


def _unmeasured(recs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """OSes of the lead table no host measured: os -> one of its rows (basis, provenance)."""
    return {t["os"]: t for t in recs["table"] if t["basis"] != "measured"}


def _said_rows(recs: dict[str, Any], os_name: str) -> list[dict[str, Any]]:
    return [r for r in recs["goals"] if r["os"] == os_name and r["basis"] != "measured"]


def _label(merged: dict[str, Any], key: str) -> str:
    return next((h["label"] for h in merged["hosts"] if h["key"] == key), key)


FINDING_HEAD = ("OS (host)", "goal", "candidate", "measured (cells)", "documented/derived (cells)")


def _finding_cells(merged: dict[str, Any], f: dict[str, Any]) -> list[str]:
    yes = {True: "meets", False: "misses"}
    return [
        f"{f['os']} ({_label(merged, f['host'])})",
        f"{f['goal']} {f['transport']}",
        f["candidate"],
        f"{yes[f['measured']]}: {f['why']} ({', '.join(f['cells'][:2])})",
        f"{yes[f['said']]}: {f['said_why']} ({', '.join(f['said_cells'][:2])})",
    ]


def _sources_md(merged: dict[str, Any], recs: dict[str, Any]) -> list[str]:
    """Where a column is documented or derived: its sources, its candidates x goals with
    null where they do not decide; then measured-vs-sources findings."""
    out = []
    for os_name, t in _unmeasured(recs).items():
        out += ["", f"### {os_name}: {t['basis']}, no host measured it", ""]
        out += [f"From {_md(t['provenance'])}. ? = the sources do not decide every situation.", ""]
        head, body = goal_matrix(_said_rows(recs, os_name), "options")
        out += [_row(*head), "|---|" + "---|" * (len(head) - 1)]
        out += [_row(c, *(_cell_md(x) for x in cells)) for c, *cells in body]
    found = recs.get("findings", [])
    if found:
        out += ["", f"### Measured here, said otherwise by documents or models ({len(found)})", ""]
        out += [
            _row(
                "OS (host)", "goal", "candidate", "measured (cells)", "documented/derived (cells)"
            ),
            "|---|---|---|---|---|",
        ]
        out += [_row(*_finding_cells(merged, f)) for f in found]
    return out


def _oses(recs: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(t["os"] for t in recs["table"]))


def _lead_rows(recs: dict[str, Any]) -> list[list[str]]:
    oses = _oses(recs)
    by = {(t["os"], t["transport"]): t for t in recs["table"]}
    lines = []
    for transport in sorted({t["transport"] for t in recs["table"]}):
        wants = next(t["wants"] for t in recs["table"] if t["transport"] == transport)
        cells = []
        for o in oses:
            t = by.get((o, transport))
            if t is None:
                cells.append("—")
                continue
            setting = t["candidate"] or f"none meets all ({t['trade_off'][:80]})"
            design = f"; {t['design']}" if t["design"] else ""
            cells.append(f"{setting}{design} [{t['basis']}]")
        lines.append([f"{transport.upper()}: {' + '.join(wants)}", *cells])
    return lines


# -- HTML ---------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(head: list[str], body: list[list[str]]) -> str:
    top = "".join(f"<th>{_e(h)}</th>" for h in head)
    rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><tr>{top}</tr>{rows}</table>"


def _cell_html(row: dict[str, Any] | None) -> str:
    if row is None:
        return "—"
    cls = {True: "agree", False: "disagree", None: "notrun"}[row["meets"]]
    tip = f"{row['why']} — cells: {', '.join(row['cells'][:5])}"
    return f'<span class="{cls}" title="{_e(tip)}">{_e(_cell_md(row))}</span>'


def html_fragment(report: dict[str, Any]) -> str:
    """The first section of the HTML host report (escaped here)."""
    recs = report.get("recommendations")
    parts: list[str] = []
    if recs:
        items = "".join(
            f"<li><b>{_e(r['text'])}</b>"
            + (f"<br>trade-off: {_e(r['trade_off'])}" if r["trade_off"] else "")
            + "</li>"
            for r in recs["recommended"]
        )
        parts.append(
            f'<section id="recommendations"><h2>Recommendations</h2>'
            f"<p>Measured on this host ({_e(recs['os'])}).</p><ul>{items}</ul>"
        )
        for kind, title in (
            ("options", "Candidates"),
            ("server", "Your servers"),
            ("library", "Libraries (their defaults)"),
        ):
            head, body = goal_matrix(recs["goals"], kind)
            if body:
                parts.append(f"<h3>{_e(title)} × goal</h3>")
                parts.append(
                    _table(head, [[_e(c), *(_cell_html(x) for x in cells)] for c, *cells in body])
                )
        missed = [r for r in recs["goals"] if r["meets"] is not True and r["cells"]]
        if missed:
            lis = "".join(
                f"<li>{_e(r['candidate'])} — {_e(r['goal'])} {_e(r['transport'])}: "
                f"{_e(r['why'])} <code>{_e(r['cells'][0])}</code></li>"
                for r in missed
            )
            parts.append(
                f"<details><summary>Why a candidate misses (deciding cell)</summary>"
                f"<ul>{lis}</ul></details>"
            )
        parts.append("</section>")
    questions = [r for r in report["results"] if r["status"] == "ungated" and not r.get("goal")]
    if questions:
        body = [
            [
                _e(r["id"]),
                _e((r.get("observed") or {}).get("outcome")),
                _e(failing_call(r)),
                _e(received_text((r.get("observed") or {}).get("delivery"))),
            ]
            for r in questions
        ]
        parts.append(
            f'<section id="open-questions"><h2>Open questions answered '
            f"({len(questions)})</h2><p>Cells no oracle for this OS makes a claim on: "
            "what happened here.</p>"
            + _table(["cell", "outcome", "failing call", "who received the traffic"], body)
            + "</section>"
        )
    return "".join(parts)  # facts sit in each suite's own section (facts_html)


def facts_html(suites: dict[str, Any]) -> str:
    """The suites' facts, under each suite's title (html.render calls it per suite)."""
    out = []
    for sid, s in suites.items():
        if s.get("facts"):
            lis = "".join(
                f"<li>{_e(f['fact'])} <i>— {_e(f['source'])}</i></li>" for f in s["facts"]
            )
            out.append(f"<h3>{_e(s['title'])} <code>{_e(sid)}</code></h3><ul>{lis}</ul>")
    return "".join(out)


def merged_html_fragment(merged: dict[str, Any]) -> str:
    recs = merged.get("recommendations")
    if not recs:
        return ""
    oses = _oses(recs)
    parts = [
        '<section id="recommendations"><h2>Recommended setting per OS</h2>',
        _table(["goal", *oses], [[_e(c) for c in line] for line in _lead_rows(recs)]),
    ]
    for os_name, t in _unmeasured(recs).items():
        head, body = goal_matrix(_said_rows(recs, os_name), "options")
        rows = [[_e(c), *(_cell_html(x) for x in cells)] for c, *cells in body]
        parts += [
            f'<h3 id="said-{_e(os_name)}">{_e(os_name)}: {_e(t["basis"])}, no host measured it'
            f'</h3><p class="muted">From {_e(t["provenance"])}. Hover a cell for its deciding '
            "cells; ? = the sources do not decide every situation (never a pass).</p>",
            _table(head, rows),
        ]
    found = recs.get("findings", [])
    if found:
        head = list(FINDING_HEAD)
        parts += [
            f'<h3 id="said-findings">Measured here, said otherwise by documents or models '
            f"({len(found)})</h3>",
            _table(head, [[_e(c) for c in _finding_cells(merged, f)] for f in found]),
        ]
    libs = [r for r in recs["goals"] if r["kind"] == "library"]
    if libs:
        by = {(r["candidate"], r["goal"], r["transport"], r["os"]): r for r in libs}
        body = [
            [_e(c), _e(f"{g} {t}"), *(_cell_html(by.get((c, g, t, o))) for o in oses)]
            for c, g, t in dict.fromkeys((r["candidate"], r["goal"], r["transport"]) for r in libs)
        ]
        parts += ["<h3>Libraries × goal per OS</h3>", _table(["library call", "goal", *oses], body)]
    parts.append("</section>")
    return "".join(parts)
