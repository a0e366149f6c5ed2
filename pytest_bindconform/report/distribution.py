"""Where the delivery probe's traffic went, for the reports: per-socket counts and
Jain's fairness index beside what the gate oracle says the distribution should be.

"Received by both" hides what a pre-fork server author needs: an even hash split
(Linux SO_REUSEPORT), everything to the socket bound last (BSD, macOS), or a copy
for every member (multicast). One row per cell whose expectations name a spread.
"""

from __future__ import annotations

from typing import Any

from ..spread import expected_text, text

HEAD = ("cell", "expected (gate)", "observed", "verdict")


def rows(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(cell, expected spread of the gate oracle, observed counts and fairness, verdict)."""
    out = []
    for r in report["results"]:
        spreads = {o: e for o, e in r["expected"].items() if e.get("spread")}
        if not spreads:
            continue
        delivery = (r.get("observed") or {}).get("delivery")
        gate = r.get("gate")
        wanted = (
            f"{gate}: {expected_text(spreads[gate])}"
            if gate in spreads
            else "; ".join(f"{o}: {expected_text(e)}" for o, e in spreads.items())
        )
        seen = text(delivery) if r.get("observed") else r.get("reason") or r["status"]
        verdict = r["verdicts"].get(gate, r["status"]) if gate else r["status"]
        out.append((r["id"], wanted, seen, verdict))
    return out


def status_word(record: dict[str, Any], word: str) -> str:
    """The terminal's -v word with the distribution appended, for cells that name one."""
    if not any(e.get("spread") for e in record.get("expected", {}).values()):
        return ""
    delivery = (record.get("observed") or {}).get("delivery")
    return f"{word} ({text(delivery)})" if delivery else ""


def markdown(report: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    """A Markdown section (heading, header lines, rows) for markdown.fit()."""
    from .markdown import header, row

    found = rows(report)
    return (
        f"## Distribution of the traffic ({len(found)})",
        header(*HEAD) if found else [],
        [row(*r) for r in found],
    )


def html(report: dict[str, Any]) -> str:
    """An HTML section, '' when no cell names a spread."""
    from .html import esc, table, tag

    found = rows(report)
    if not found:
        return ""
    return tag(
        "section",
        tag("h2", "Distribution of the traffic")
        + tag(
            "p",
            esc(
                "Per-socket counts of the delivery probe's connections or datagrams and "
                "Jain's fairness index (1.0: equal shares; 1/n: one socket took all)."
            ),
            class_="muted",
        )
        + table(HEAD, ([esc(c) for c in r] for r in found)),
        id="distribution",
    )
