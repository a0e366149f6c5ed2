"""One self-contained HTML file: each suite as grids in its published orientation.

No script, no external asset: it opens from disk, offline, and every piece of
text from case files or hosts goes through esc() (a title may hold '<script>').
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from .model import STATUSES, VERDICTS, oracle_applies, summarize, token
from .model import errata as errata_of

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em 2em;color:#1d1d1f}
h1{font-size:1.5em;margin:0 0 .3em}h2{margin-top:1.8em;border-bottom:2px solid #ccd}
h3{margin:1.2em 0 .4em;font-size:1.05em}
table{border-collapse:collapse;margin:.4em 0 1em}
th,td{border:1px solid #b9bccb;padding:3px 6px;vertical-align:top;text-align:left}
th{background:#eef0f6;font-weight:600}
table.grid td{padding:0;min-width:8.5em}
table.grid th.corner{font-weight:400;font-size:12px;color:#444}
.rec{padding:3px 6px}.rec+.rec{border-top:1px dashed #888}
.agree{background:#cdeccd}.disagree{background:#f6b8b8}.finding{background:#ffdf9e}
.noclaim{background:#f1f1f1}.error{background:#dcc6f2}
.notrun{background:repeating-linear-gradient(45deg,#f7f7f7 0 5px,#e4e4e4 5px 10px)}
.obs{font:700 13px ui-monospace,Menlo,Consolas,monospace}
.exp{font:12px ui-monospace,Menlo,Consolas,monospace;color:#333}
.exp .na{color:#9a9a9a}.exp .bad{color:#a00000;font-weight:700;text-decoration:underline}
.alt{font-size:11px;color:#555;display:block}
summary{cursor:pointer;list-style:none}summary::-webkit-details-marker{display:none}
details[open]>summary{border-bottom:1px solid #999;margin-bottom:3px}
.more{font-size:12px;min-width:38em}.more table{margin:.2em 0}.more th,.more td{padding:1px 4px}
pre{white-space:pre-wrap;margin:.2em 0;font-size:12px}
.muted{color:#666}.kv th{width:11em}
"""

LEGEND = (  # (css class, mark, label, meaning)
    ("agree", "✓", "agree", "every applicable oracle that makes a claim agrees"),
    ("disagree", "✗", "gate disagrees", "the gate oracle disagrees: the cell fails"),
    ("finding", "!", "finding", "the gate agrees or makes no claim; another oracle disagrees"),
    ("noclaim", "·", "no claim", "ran; no applicable oracle makes a claim"),
    ("notrun", "–", "not run", "skipped on this host; the reason says how to enable it"),
    ("error", "⚠", "error", "interference, crash, or no result"),
)
MARK = {name: mark for name, mark, _, _ in LEGEND}


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def tag(name: str, content: str, **attrs: str) -> str:
    attr = "".join(f' {k.rstrip("_")}="{esc(v)}"' for k, v in attrs.items() if v)
    return f"<{name}{attr}>{content}</{name}>"


def table(head: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    """A table from header texts (escaped here) and row cells (HTML; wrapped unless <td>)."""
    top = "".join(tag("th", esc(h)) for h in head)
    body = "".join(
        tag("tr", "".join(c if c.startswith("<td") else tag("td", c) for c in r)) for r in rows
    )
    return tag("table", tag("tr", top) + body, class_=cls)


def kind(result: dict[str, Any]) -> str:
    """The colour class of a result: how the observation and the oracles line up."""
    fixed = {"error": "error", "fail": "disagree", "skip": "notrun"}
    if result["status"] in fixed:
        return fixed[result["status"]]
    verdicts = set(result["verdicts"].values())
    if "disagree" in verdicts:
        return "finding"
    return "agree" if "agree" in verdicts else "noclaim"


def observed(result: dict[str, Any]) -> str:
    if result["observed"]:
        return str(result["observed"]["outcome"])
    return "not run" if result["status"] == "skip" else result["status"]


def expectations(result: dict[str, Any], letters: dict[str, str]) -> str:
    """'A INUSE B ok*': grey when the oracle does not apply here, red when it disagrees."""
    parts = []
    for oid, exp in result["expected"].items():
        verdict = result["verdicts"].get(oid)
        cls = "na" if verdict is None else "bad" if verdict == "disagree" else ""
        text = f"{letters.get(oid, oid)} {token(exp)}"
        parts.append(
            tag("span", esc(text), class_=cls, title=f"{oid}: {verdict or 'not applicable here'}")
        )
    return " ".join(parts)


def hover(result: dict[str, Any]) -> str:
    """Plain text for the title tooltip: the reason and every call that failed, raw."""
    lines = [f"{result['status']}: {result['reason']}" if result["reason"] else result["status"]]
    for step in (result["observed"] or {}).get("steps", []):
        if step["errno"]:
            lines.append(
                f"{step['socket']} {step['call']}: {step.get('error', '')} (errno {step['errno']})"
            )
    return "\n".join(lines)


def details(result: dict[str, Any], letters: dict[str, str]) -> str:
    """The expanded cell: reason, sockets as created, every call, every expectation."""
    parts = [tag("div", esc(result["id"]), class_="muted")]
    if result["reason"]:
        parts.append(tag("pre", esc(result["reason"])))
    parts.append(
        table(
            ("socket", "family/type", "v6only", "options", "address", "state"),
            (
                [
                    esc(s.get("name", "")),
                    esc(f"{s['family']}/{s['type']}"),
                    esc("OS default" if s["v6only"] is None else plain(s["v6only"])),
                    esc(", ".join(s["options"]) or "none"),
                    esc(s["address"]),
                    esc(s["state"]),
                ]
                for s in result["scenario"]["sockets"]
            ),
        )
    )
    if result["observed"]:
        parts.append(
            table(
                ("socket", "call", "outcome", "errno", "error"),
                (
                    [
                        esc(s["socket"]),
                        esc(s["call"]),
                        esc(s["outcome"]),
                        esc(s["errno"] or ""),
                        esc(s.get("error", "")),
                    ]
                    for s in result["observed"]["steps"]
                ),
            )
        )
    parts.append(
        table(
            ("key", "oracle (provenance: see the suite's table)", "expects", "verdict here"),
            (
                [
                    esc(letters.get(oid, "")),
                    esc(oid + (" (gate)" if oid == result["gate"] else "")),
                    esc(token(exp)),
                    esc(result["verdicts"].get(oid, "does not apply")),
                ]
                for oid, exp in result["expected"].items()
            ),
        )
    )
    return tag("div", "".join(parts), class_="more")


def block(result: dict[str, Any], letters: dict[str, str], label: str = "") -> str:
    """One result inside a table cell: colour, observation, expectations; details on click."""
    k = kind(result)
    head = (
        (tag("span", esc(label), class_="alt") if label else "")
        + tag("span", esc(f"{MARK[k]} {observed(result)}"), class_="obs")
        + "<br>"
        + tag("span", expectations(result, letters), class_="exp")
    )
    inner = tag("details", tag("summary", head) + details(result, letters))
    return tag("div", inner, class_=f"rec {k}", title=hover(result))


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


def cell(group: list[dict[str, Any]], letters: dict[str, str]) -> str:
    """A <td>, coloured whole when its results agree in kind, else part by part."""
    if not group:
        return tag("td", tag("div", "—", class_="rec muted"))
    inner = "".join(
        block(r, letters, label) for r, label in zip(group, alternatives(group), strict=True)
    )
    kinds = {kind(r) for r in group}
    return tag("td", inner, class_=kinds.pop() if len(kinds) == 1 else "")


def oracle_table(
    suite: dict[str, Any],
    letters: dict[str, str],
    host: dict[str, Any] | None = None,
    gate: str | None = None,
    results: list[dict[str, Any]] | None = None,
) -> str:
    """Where each expectation comes from; on a host report, whether it applies and its counts."""
    counts = summarize(results or [])["oracles"]
    head = ["key", "oracle", "kind", "provenance", "applies to", "profiles"]
    if host:
        head += ["applies here", *VERDICTS]
    rows = []
    for oid, o in suite["oracles"].items():
        rng = o["applies"]
        where = (
            rng["os"]
            + (f" ≥ {rng['min_version']}" if rng["min_version"] else "")
            + (f" ≤ {rng['max_version']}" if rng["max_version"] else "")
        )
        row = [
            letters.get(oid, ""),
            oid + (" (gate)" if oid == gate else ""),
            o["kind"],
            o["provenance"],
            where,
            ", ".join(o["profiles"]) if o["profiles"] else "any",
        ]
        if host:
            n = counts.get(oid, {})
            row += ["yes" if oracle_applies(o, host) else "no", *(n.get(v, "") for v in VERDICTS)]
        rows.append([esc(c) for c in row])
    return table(head, rows)


def references(suite: dict[str, Any]) -> str:
    items = []
    for ref in suite["references"]:
        url = str(ref.get("url", ""))
        name = (
            tag("a", esc(ref["title"]), href=url)
            if url.startswith("https://")
            else esc(ref["title"])
        )
        extra = ", ".join(str(ref[k]) for k in ("section", "revision") if ref.get(k))
        items.append(tag("li", name + (f" — {esc(extra)}" if extra else "")))
    return tag("ul", "".join(items)) if items else ""


def grids(
    suite: dict[str, Any] | None, results: list[dict[str, Any]], letters: dict[str, str]
) -> str:
    """Grid cells in page orientation, one table per variant; other cases as a case table."""
    out = []
    grid = (suite or {}).get("grid") or {}
    on_grid = [r for r in results if r["grid"] is not None and grid]
    variants = list(dict.fromkeys(r["variant"] for r in on_grid))
    if grid and on_grid:
        out.append(tag("p", "Orientation: " + esc(grid["orientation"]), class_="muted"))
    for variant in variants:
        where: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for r in on_grid:
            if r["variant"] == variant:
                where.setdefault((r["grid"]["row"], r["grid"]["column"]), []).append(r)
        corner = f"{grid.get('row_socket', 'rows')} ↓ · {grid.get('column_socket', 'columns')} →"
        top = tag("th", esc(corner), class_="corner") + "".join(
            tag("th", esc(c)) for c in grid["columns"]
        )
        body = "".join(
            tag(
                "tr",
                tag("th", esc(label))
                + "".join(
                    cell(where.get((i, j), []), letters) for j in range(len(grid["columns"]))
                ),
            )
            for i, label in enumerate(grid["rows"])
        )
        out.append(
            tag("h3", esc(variant or "all cells"))
            + tag("table", tag("tr", top) + body, class_="grid")
        )
    rest = [r for r in results if r not in on_grid]
    if rest:
        keys = list(dict.fromkeys(r["key"] for r in rest))
        cols = list(dict.fromkeys(r["variant"] for r in rest))
        found = {(r["key"], r["variant"]): r for r in rest}
        top = tag("th", "case ↓ · variant →", class_="corner") + "".join(
            tag("th", esc(c or "all")) for c in cols
        )
        body = "".join(
            tag(
                "tr",
                tag("th", esc(k))
                + "".join(cell([found[(k, c)]] if (k, c) in found else [], letters) for c in cols),
            )
            for k in keys
        )
        out.append(tag("h3", "Cases") + tag("table", tag("tr", top) + body, class_="grid"))
    return "".join(out)


def legend() -> str:
    rows = [
        [tag("td", esc(f"{mark} {label}"), class_=name), esc(meaning)]
        for name, mark, label, meaning in LEGEND
    ]
    note = (
        "Each cell shows the observed outcome of the step under test, then each oracle's "
        "expectation by its key (see the suite's oracle table). Grey key: the oracle does not "
        "apply to this OS; red underlined: it disagrees; * undefined which socket receives "
        "packets. Hover a cell for the reason and the calls; click it for the details."
    )
    return tag(
        "div", table(("colour", "meaning"), rows) + tag("p", note, class_="muted"), class_="legend"
    )


def plain(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "none"
    return "unknown" if value is None else str(value)


def key_values(pairs: Iterable[tuple[str, object]]) -> str:
    rows = "".join(tag("tr", tag("th", esc(k)) + tag("td", esc(plain(v)))) for k, v in pairs)
    return tag("table", rows, class_="kv")


def run_info(info: dict[str, Any]) -> str:
    h = info["host"]
    pairs: list[tuple[str, object]] = [
        (k, v) for k, v in h.items() if k not in ("sysctl", "addresses")
    ]
    pairs += [(f"addresses {fam}", ", ".join(a) or "none") for fam, a in h["addresses"].items()]
    pairs += sorted(h.get("sysctl", {}).items())
    pairs += [("gates", ", ".join(f"{k}={v}" for k, v in info["gates"].items()))]
    pairs += [(k, v) for k, v in info.items() if k not in ("host", "gates", "isolation", "python")]
    return key_values(pairs)


def summary_table(summary: dict[str, Any], gate: str | None) -> str:
    status = table(
        ["cells", *summary["status"]],
        [[esc(summary["cells"]), *(esc(n) for n in summary["status"].values())]],
    )
    per_oracle = table(
        ("oracle", "agree", "disagree", "no claim", "not run"),
        (
            [esc(oid + (" (gate)" if oid == gate else "")), *(esc(v) for v in n.values())]
            for oid, n in summary["oracles"].items()
        ),
    )
    return status + (
        per_oracle
        if summary["oracles"]
        else tag("p", "No oracle of these suites applies to this host.", class_="muted")
    )


def errata_table(entries: list[dict[str, Any]], with_host: bool) -> str:
    fields = ["id", "host", "oracle", "documented", "observed", "provenance"]
    fields = [f for f in fields if with_host or f != "host"]
    head = [{"id": "cell", "oracle": "document"}.get(f, f) for f in fields]
    return table(head, ([esc(e[f]) for f in fields] for e in entries))


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n"
    )


def render(report: dict[str, Any]) -> str:
    info, suites, results = report["run_info"], report["suites"], report["results"]
    host = info["host"]
    title = f"bind() conformance: {host['os']} {host['os_release']}"
    parts = [
        tag("h1", esc(title)),
        tag(
            "p",
            esc(
                f"{host['kernel']}, {host['machine']}, python {host['python']} · "
                f"gate {info['gate']} · {info['started']} → {info['finished']} · "
                f"exit status {info['exit_status']}"
            ),
            class_="muted",
        ),
    ]
    parts.append(summary_table(report["summary"], info["gate"]) + legend())
    for sid, suite in suites.items():
        mine = [r for r in results if r["suite"] == sid]
        letters = letters_of(suite, mine)
        parts.append(
            tag(
                "section",
                "".join(
                    [
                        tag("h2", esc(suite["title"])),
                        tag("p", esc(suite["description"])),
                        tag(
                            "p",
                            f"Suite {tag('code', esc(sid))} from {tag('code', esc(suite['path']))}",
                            class_="muted",
                        ),
                        references(suite),
                        oracle_table(suite, letters, host, info["gate"], mine),
                        "".join(
                            tag("p", f"Profile {tag('b', esc(p))}: {esc(d)}", class_="muted")
                            for p, d in suite["profiles"].items()
                        ),
                        grids(suite, mine, letters),
                    ]
                ),
                id=f"suite-{sid}",
            )
        )
    errata = errata_of((("", r) for r in results), suites)
    documents = [
        f"{oid} ({o['applies']['os']})"
        for s in suites.values()
        for oid, o in s["oracles"].items()
        if o["kind"] == "document"
    ]
    parts.append(tag("h2", "Errata: where a documented table disagrees with this host"))
    parts.append(
        errata_table(errata, with_host=False)
        if errata
        else tag(
            "p",
            esc(
                "None. Documented tables in these suites: "
                + (", ".join(documents) or "none")
                + f"; only those applying to {host['os']} are compared here."
            ),
            class_="muted",
        )
    )
    errors = [r for r in results if r["status"] == "error"]
    if errors:
        parts.append(tag("h2", f"Errors ({len(errors)})"))
        parts.append(
            table(
                ("cell", "reason"), ([esc(r["id"]), tag("pre", esc(r["reason"]))] for r in errors)
            )
        )
    parts.append(tag("h2", "Run") + run_info(info))
    return page(title, "".join(parts))


def render_merged(merged: dict[str, Any]) -> str:
    keys = [h["key"] for h in merged["hosts"]]
    suites = merged["suites"]
    title = f"bind() conformance across {len(keys)} hosts"
    head = ("host (matrix column)", "gate", "started", "plugin", "cells", *STATUSES, "from")
    hosts = []
    for h in merged["hosts"]:
        info, summary = h["run_info"], merged["summary"][h["key"]]
        row = [h["key"], info["gate"], info["started"], info["plugin_version"], summary["cells"]]
        row += [*summary["status"].values(), ", ".join(h["sources"])]
        hosts.append([esc(v) for v in row])
    parts = [tag("h1", esc(title)), table(head, hosts), legend(), tag("h2", "Suites and oracles")]
    for sid, suite in suites.items():
        parts.append(tag("h3", esc(f"{suite['title']} ({sid})")))
        parts.append(oracle_table(suite, letters_of(suite, [])))

    def matrix(cells: list[dict[str, Any]]) -> str:
        rows = []
        for c in cells:
            letters = letters_of(suites.get(c["suite"] or ""), [c])
            rows.append(
                [esc(f"{c['suite']}: {c['name']}")]
                + [cell([c["hosts"][k]] if k in c["hosts"] else [], letters) for k in keys]
            )
        return table(("cell", *keys), rows, cls="grid")

    by_id = {c["id"]: c for c in merged["cells"]}
    differ = [by_id[i] for i in merged["differences"]]
    parts.append(tag("h2", f"Where hosts differ ({len(differ)} cells)"))
    parts.append(
        matrix(differ)
        if differ
        else tag("p", "Every host observed the same outcomes.", class_="muted")
    )
    errata = merged["errata"]
    parts.append(tag("h2", f"Where a documented table is wrong on its host ({len(errata)})"))
    parts.append(
        errata_table(errata, with_host=True) if errata else tag("p", "None.", class_="muted")
    )
    parts.append(tag("h2", "Every cell"))
    for sid in dict.fromkeys(c["suite"] or "" for c in merged["cells"]):
        mine = [c for c in merged["cells"] if (c["suite"] or "") == sid]
        name = suites[sid]["title"] if sid in suites else sid or "case files that do not load"
        summary = tag("summary", tag("b", esc(f"{name} — {len(mine)} cells")))
        parts.append(tag("details", summary + matrix(mine)))
    return page(title, "".join(parts))
