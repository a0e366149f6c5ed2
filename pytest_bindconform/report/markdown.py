"""Markdown for $GITHUB_STEP_SUMMARY: counts per oracle first, then what disagrees.

GitHub rejects a step summary over 1 MiB, so long tables are cut with a line
saying how many rows were left out and where the full report is.
"""

from __future__ import annotations

from typing import Any

from . import answers

LIMIT = 1_000_000  # bytes; GitHub's limit is 1 MiB (1_048_576) per step summary
Section = tuple[str, list[str], list[str]]  # (heading, table header lines, table rows)


def text(value: object, width: int = 300) -> str:
    """One table cell: no line breaks, no HTML, no pipes; long text shortened."""
    out = " ".join(str(value).split())
    if len(out) > width:
        out = out[: width - 1] + "…"
    out = out.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
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


def render(report: dict[str, Any], where: str = "", limit: int = LIMIT) -> str:
    info, summary = report["run_info"], report["summary"]
    gate = info["gate"]
    head = [
        f"# bind() conformance: {text(host_line(info))}",
        "",
        f"Gate **{text(gate)}** · plugin {text(info['plugin_version'])} · "
        f"isolation {text(info['isolation'])} · {text(info['started'])} → "
        f"{text(info['finished'])} · exit status {info['exit_status']}",
        "",
        *answers.markdown_lines(report),
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
            total = n["agree"] + n["disagree"]
            head.append(row(oid, n["agree"], n["disagree"], f"{100 * n['agree'] / total:.0f}%"))
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
    return fit(head, sections, limit, where)


def render_merged(merged: dict[str, Any], where: str = "", limit: int = LIMIT) -> str:
    keys = [h["key"] for h in merged["hosts"]]
    head = [
        f"# bind() conformance across {len(keys)} hosts",
        "",
        *answers.merged_markdown_lines(merged),
        *header("host", "gate", "cells", "pass", "fail", "skip", "error", "ungated"),
    ]
    for h in merged["hosts"]:
        s = merged["summary"][h["key"]]
        head.append(row(h["key"], h["run_info"]["gate"], s["cells"], *s["status"].values()))
    by_id = {c["id"]: c for c in merged["cells"]}
    differ = [
        row(
            cid,
            *(observed(by_id[cid]["hosts"][k]) if k in by_id[cid]["hosts"] else "—" for k in keys),
        )
        for cid in merged["differences"]
    ]
    errata = [
        row(e["id"], e["host"], e["oracle"], e["documented"], e["observed"], e["provenance"])
        for e in merged["errata"]
    ]
    sections: list[Section] = [
        (f"## Where hosts differ ({len(differ)} cells)", header("cell", *keys), differ),
        (
            f"## Where a documented table is wrong on its host ({len(errata)})",
            header("cell", "host", "oracle", "documented", "observed", "provenance"),
            errata,
        ),
    ]
    return fit(head, sections, limit, where)
