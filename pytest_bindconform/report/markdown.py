"""Markdown for $GITHUB_STEP_SUMMARY: counts per oracle first, then what disagrees.

GitHub rejects a step summary over 1 MiB, so long tables are cut with a line
saying how many rows were left out and where the full report is.
"""

from __future__ import annotations

import re
from typing import Any

from . import distribution
from .model import percent

LIMIT = 1_000_000  # bytes; GitHub's limit is 1 MiB (1_048_576) per step summary
Section = tuple[str, list[str], list[str]]  # (heading, table header lines, table rows)


# Link syntax that survives HTML escaping: an inline link or image '](', a bare URL
# or 'www.' (GitHub autolinks those) and an e-mail address. A backslash before the
# punctuation mark defuses each (CommonMark: it makes the mark literal text).
_LIVE = re.compile(r"\](?=\()|(?i:(?<=[a-z0-9+.-]):(?=//)|(?<=\bwww)\.)|@(?=[\w-]+\.[\w-])")


def text(value: object, width: int = 300) -> str:
    """One table cell: no line breaks, no HTML, no pipes, no live link; long text shortened.

    Any text may come from a case file: '[x](javascript:...)' must stay text."""
    out = " ".join(str(value).split())
    if len(out) > width:
        out = out[: width - 1] + "…"
    out = out.replace("\\", "\\\\")  # first: an escape of the author's must not undo ours
    out = out.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = _LIVE.sub(lambda m: "\\" + m.group(), out)
    return out.replace("|", "\\|").replace("`", "\\`")


def row(*cells: object) -> str:
    return "| " + " | ".join(text(c) for c in cells) + " |"


def header(*names: str) -> list[str]:
    return [row(*names), "|" + "---|" * len(names)]


def fit(head: list[str], sections: list[Section], limit: int, where: str) -> str:
    """Join head and sections, cutting rows so that the whole stays under limit bytes."""

    def size(lines: list[str]) -> int:
        return sum(len(line.encode()) + 1 for line in lines)

    more = " — see the full report" + (f" ({text(where)})" if where else "")
    intros = [["", heading, "", *(top if rows else ["None."])] for heading, top, rows in sections]
    used = size(head) + sum(size(intro) + len(more.encode()) + 40 for intro in intros)
    if used > limit:
        raise ValueError(f"a Markdown limit of {limit} bytes cannot hold even the headings")
    out = list(head)
    for intro, (_, _, rows) in zip(intros, sections, strict=True):
        out += intro
        for i, line in enumerate(rows):
            if used + len(line.encode()) + 1 > limit:
                out += ["", f"{len(rows) - i} more{more}"]
                break
            out.append(line)
            used += len(line.encode()) + 1
    return "\n".join(out) + "\n"


def observed(result: dict[str, Any]) -> str:
    return str(result["observed"]["outcome"]) if result["observed"] else f"({result['status']})"


def host_line(info: dict[str, Any]) -> str:
    h = info["host"]
    return f"{h['os']} — {h['os_release']}, {h['kernel']}, {h['machine']}, python {h['python']}"


def simulated_banner(simulated: str | None) -> list[str]:
    """A simulated run's outcomes come from a model: the report says so before anything else."""
    return [f"**SIMULATED — not a conformance result: {text(simulated)}**", ""] if simulated else []


def run_line(info: dict[str, Any]) -> list[str]:
    """The run's id: a JSON, Markdown and HTML report with the same id come from one run."""
    return [f"Run id {text(info['run_id'])}", ""] if info.get("run_id") else []


def render(
    report: dict[str, Any], where: str = "", limit: int = LIMIT, lead: list[str] | None = None
) -> str:
    """The host report; lead (Markdown lines) comes right after the title."""
    info, summary = report["run_info"], report["summary"]
    gate = info["gate"]
    head = [
        f"# bind() conformance: {text(host_line(info))}",
        "",
        *simulated_banner(info.get("simulated")),
        *(lead or []),
        f"Gate **{text(gate)}** · plugin {text(info['plugin_version'])} · "
        f"isolation {text(info['isolation'])} · {text(info['started'])} → "
        f"{text(info['finished'])} · exit status {info['exit_status']}",
        "",
        *run_line(info),
        *header("cells", *summary["status"]),
        row(summary["cells"], *summary["status"].values()),
        "",
        "## Per oracle",
        "",
        *header("oracle", "agree", "disagree", "no claim", "not run"),
    ]
    for oid, n in summary["oracles"].items():
        name = f"{oid} (gate)" if oid == gate else oid
        head.append(row(name, n["agree"], n["disagree"], n["no-claim"], n["not-run"]))
    if not summary["oracles"]:
        head.append(row("(no oracle of these suites applies to this host)", "", "", "", ""))
    if summary.get("resemblance"):
        head += [
            "",
            "## Which source does this host follow?",
            "",
            "Every expectation source, whatever OS it is for (another OS's table through the "
            "cell's profile), against the cells that ran here. A finding, not a verdict.",
            "",
            *header("oracle", "agree", "disagree", "agreement"),
        ]
        for oid, n in summary["resemblance"].items():
            head.append(row(oid, n["agree"], n["disagree"], percent(n)))
    disagree = [
        row(
            r["id"],
            observed(r),
            r["status"],
            ", ".join(
                f"{o}: {r['expected'][o]['outcome']}"
                for o, v in r["verdicts"].items()
                if v == "disagree"
            ),
        )
        for r in report["results"]
        if "disagree" in r["verdicts"].values()
    ]
    errors = [row(r["id"], r["reason"]) for r in report["results"] if r["status"] == "error"]
    sections: list[Section] = [
        (
            f"## Disagreements ({len(disagree)})",
            header("cell", "observed", "status", "disagreeing oracle: expected"),
            disagree,
        ),
        (f"## Errors ({len(errors)})", header("cell", "reason"), errors),
    ]
    spread = distribution.markdown(report)
    if spread[2]:
        sections.append(spread)
    return fit(head, sections, limit, where)


MARKS = {"agree": "✓", "disagree": "✗", "finding": "!", "notrun": "–", "error": "⚠"}


def render_merged(
    merged: dict[str, Any], where: str = "", limit: int = LIMIT, lead: list[str] | None = None
) -> str:
    """The matrix in brief: hosts, suites x hosts, errata and differences per grid position."""
    from .matrix import View, seen  # the HTML's reading of a cell, shared

    view = View(merged)
    hosts = merged["hosts"]
    head = [f"# bind() conformance across {len(hosts)} hosts", ""]
    head += [*simulated_banner(merged.get("simulated")), *(lead or [])]
    head += header("#", "host", "gate", "cells", "pass", "fail", "skip", "error", "ungated")
    for n, h in enumerate(hosts, 1):
        s = h["summary"]
        head.append(row(n, h["label"], h["run_info"]["gate"], s["cells"], *s["status"].values()))
    names = ", ".join(f"{mark} {k}" for k, mark in MARKS.items())
    head += ["", "## Suites × hosts", "", f"Cells per host: {names}.", ""]
    head += header(
        "suite", "cells", "OSes differ", *(f"{n} {h['label']}" for n, h in enumerate(hosts, 1))
    )
    per: dict[str, list[dict[str, Any]]] = {}
    for c in merged["cells"]:
        per.setdefault(c["suite"] or "", []).append(c)
    for sid, cells in per.items():
        counts: list[dict[str, int]] = [{} for _ in hosts]
        for c in cells:
            for i, k in enumerate(view.kinds(c)):
                if k != "absent":
                    counts[i][k] = counts[i].get(k, 0) + 1
        tallies = [" ".join(f"{MARKS[k]}{n}" for k, n in c.items() if k in MARKS) for c in counts]
        os_differ = sum(1 for c in cells if c.get("differ") == "os")
        title = merged["suites"].get(sid, {}).get("title", sid or "case files that do not load")
        head.append(row(title, len(cells), os_differ, *tallies))
    errata = []
    for e in merged["errata"]:
        w = e["position"]
        place = f"{w['row']} × {w['column']}" if "row" in w else w["case"]
        for d in e["documents"]:
            who = ", ".join(hosts[h]["label"] for h in d["hosts"])
            errata.append(
                row(
                    e["suite"],
                    place,
                    f"{d['oracle']}: {d['documented']}",
                    d["observed"],
                    who,
                    d["cells"],
                )
            )
    differ: dict[tuple[str, str, str], int] = {}
    for c in merged["cells"]:
        if not c.get("differ"):
            continue
        w = c.get("grid") or {}
        place = f"{w['row_label']} × {w['column_label']}" if w else c["key"]
        split: dict[str, list[str]] = {}
        for i, g in enumerate(view.per_host(c), 1):
            if g and g["outcome"] is not None:
                split.setdefault(seen(g), []).append(str(i))
        said = " · ".join(f"{o}: {' '.join(h)}" for o, h in split.items())
        key = (c["suite"] or "", place, said)
        differ[key] = differ.get(key, 0) + 1
    differ_rows = [row(s, p, said, n) for (s, p, said), n in differ.items()]
    measured = [
        row(m["file"], m["os"], m["suite"], m["observed"], m["disagreed_with_gate"])
        for m in merged.get("measured", [])
    ]
    sections: list[Section] = [
        (
            f"## Errata per grid position ({len(merged['errata'])} positions)",
            header("suite", "position", "document: says", "observed", "hosts", "cells"),
            errata,
        ),
        (
            f"## Where hosts differ ({len(merged['differences'])} cells, "
            f"{len(differ_rows)} positions)",
            header("suite", "position", "outcome: hosts (by #)", "cells"),
            differ_rows,
        ),
    ]
    if "measured" in merged:  # merge --measured: blocks to review and commit as measured oracles
        sections.append(
            (
                f"## Measured expectation blocks ({len(measured)} files)",
                header("file", "os", "suite", "cells observed", "disagreed with gate"),
                measured,
            )
        )
    return fit(head, sections, limit, where)
