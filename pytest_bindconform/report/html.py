"""One self-contained HTML file: each suite as grids in its published orientation.

No script, no external asset: it opens from disk, offline. The page shell, the
fingerprint and the whole merged matrix are Jinja2 templates with autoescaping
(templates/); the host report's grids are still built here, every piece of text
from case files or hosts going through esc() (a title may hold '<script>').
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable
from typing import Any

from . import answers, labels, matrix, templates
from .merge import resolves
from .model import VERDICTS, oracle_applies, token, verdict_counts
from .model import errata as errata_of

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


def expectations(result: dict[str, Any], letters: dict[str, str]) -> str:
    """'A<i>CD</i> INUSE · <i>B</i> ok*': the oracles that expect each outcome, by key.

    A grey key does not apply to this host; a red underlined one disagrees.
    """
    order = list(letters)
    oids = sorted(result["expected"], key=lambda o: order.index(o) if o in order else len(order))
    joined = all(len(letters.get(o, o)) == 1 for o in oids)  # 'ACD', else 'A CD oracle-27'
    look = {None: "<i>{}</i>", "disagree": "<u>{}</u>"}  # does not apply here; disagrees
    other = set(others_disagree(result))
    groups: dict[str, list[str]] = {}
    for oid in oids:
        how = "<em>{}</em>" if oid in other else look.get(result["verdicts"].get(oid), "{}")
        mark = how.format(esc(letters.get(oid, oid)))
        groups.setdefault(expects(result["expected"][oid]), []).append(mark)
    parts = [("" if joined else " ").join(keys) + " " + esc(tok) for tok, keys in groups.items()]
    text = " · ".join(parts)
    if joined:
        text = text.replace("</i><i>", "").replace("</u><u>", "").replace("</em><em>", "")
    return text


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
        if result["observed"].get("delivery"):
            parts.append(tag("p", esc(delivery_text(result["observed"]["delivery"]))))
    if result.get("model"):
        model = result["model"]
        parts.append(tag("p", esc(f"{model_text(model)} ({model['provenance']})")))
    parts.append(
        table(
            ("key", "oracle (provenance: see the suite's table)", "expects", "verdict here"),
            (
                [
                    esc(letters.get(oid, "")),
                    esc(oid + (" (gate)" if oid == result["gate"] else "")),
                    esc(expects(exp)),
                    esc(result["verdicts"].get(oid, "does not apply")),
                ]
                for oid, exp in result["expected"].items()
            ),
        )
    )
    return tag("div", "".join(parts), class_="more")


def block(result: dict[str, Any], letters: dict[str, str], label: str = "") -> str:
    """One result's content in a table cell; the full tables only where it needs a look."""
    k = kind(result)
    head = (
        (tag("span", esc(label), class_="alt") if label else "")
        + tag("b", esc(f"{MARK[k]} {observed(result)}"))
        + tag("span", expectations(result, letters), class_="x")
    )
    if notable(result):
        return tag("details", tag("summary", head) + details(result, letters))
    return head


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
    """A <td> of one result, or of the several a published table merged into one cell.

    Each result (class rec) carries its colour and its hover text; one <td> per
    result keeps the page light, as there are thousands.
    """
    if not group:
        return tag("td", "—", class_="muted")
    if len(group) == 1:
        (r,) = group
        return tag("td", block(r, letters), class_=f"rec {look(r)}", title=hover(r))
    inner = "".join(
        tag("div", block(r, letters, label), class_=f"rec {look(r)}", title=hover(r))
        for r, label in zip(group, alternatives(group), strict=True)
    )
    return tag("td", inner, class_="multi")


def look(result: dict[str, Any]) -> str:
    """The classes of a drawn result: its kind, and 'other' where another OS's source
    disagrees with what this host did."""
    return kind(result) + (" other" if others_disagree(result) else "")


def tally(results: list[dict[str, Any]]) -> str:
    """'36 cells: ✓ 30 agree · – 6 not run': how a grid or a suite came out, at a glance."""
    counts = Counter(kind(r) for r in results)
    shown = [f"{mark} {counts[name]} {label}" for name, mark, label, _ in LEGEND if counts[name]]
    return f"{len(results)} cell{'s' if len(results) != 1 else ''}: " + " · ".join(shown)


def oracle_table(
    suite: dict[str, Any],
    letters: dict[str, str],
    host: dict[str, Any] | None = None,
    gate: str | None = None,
    results: list[dict[str, Any]] | None = None,
) -> str:
    """Where each expectation comes from; on a host report, whether it applies and its counts."""
    counts = verdict_counts(results or [])
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
            + "".join(f", {k}={v}" for k, v in rng.get("sysctl", {}).items())
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


OPEN = 200  # cells: a suite's first grid up to this size is drawn open, larger ones on click


def variant(title: str, results: list[dict[str, Any]], grid: str, first: bool) -> str:
    """One grid behind its tally line: open when something in it needs a look, or when it is
    the suite's first and small; the browser skips laying out the closed ones."""
    head = tag("h3", esc(title)) + " " + tag("span", esc(tally(results)), class_="muted")
    shown = any(map(notable, results)) or (first and len(results) <= OPEN)
    return tag(
        "details",
        tag("summary", head) + tag("div", grid, class_="scroll"),
        class_="variant",
        open="open" if shown else "",
    )


def grid_table(
    corner: str,
    columns: list[str],
    rows: list[str],
    at: dict[tuple[int, int], list[dict[str, Any]]],
    letters: dict[str, str],
) -> str:
    """A table.grid; at[i, j] holds the results drawn in row i, column j."""
    top = tag("th", esc(corner), class_="corner") + "".join(tag("th", esc(c)) for c in columns)
    cols = range(len(columns))
    body = "".join(
        tag("tr", tag("th", esc(label)) + "".join(cell(at.get((i, j), []), letters) for j in cols))
        for i, label in enumerate(rows)
    )
    return tag("table", tag("tr", top) + body, class_="grid")


def grids(
    suite: dict[str, Any] | None, results: list[dict[str, Any]], letters: dict[str, str]
) -> str:
    """Grid cells in page orientation, one table per variant; other cases as a case table."""
    out = []
    grid = (suite or {}).get("grid") or {}
    on_grid = [r for r in results if r["grid"] is not None and grid]
    if grid and on_grid:
        out.append(tag("p", "Orientation: " + esc(grid["orientation"]), class_="muted"))
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
        table_ = grid_table(corner, columns, rows, where, letters)
        out.append(variant(name or "all cells", mine, table_, n == 0))
    rest = [r for r in results if r["grid"] is None or not grid]
    if rest:
        keys = list(dict.fromkeys(r["key"] for r in rest))
        cols = list(dict.fromkeys(r["variant"] for r in rest))
        at = {(keys.index(r["key"]), cols.index(r["variant"])): [r] for r in rest}
        table_ = grid_table("case ↓ · variant →", [c or "all" for c in cols], keys, at, letters)
        out.append(variant("Cases", rest, table_, True))
    return "".join(out)


def legend() -> str:
    rows = [
        [tag("td", esc(f"{mark} {label}"), class_=name), esc(meaning)]
        for name, mark, label, meaning in LEGEND
    ]
    note = (
        "Each cell shows the observed outcome of the step under test, then the oracles "
        "expecting each outcome, by their keys in the suite's oracle table: "
        "<code class='key'>A<i>CD</i> INUSE · <i>B</i> ok*</code> says A, C and D expect "
        "INUSE and B expects ok. A grey key does not apply to this OS; a red one "
        "disagrees; a purple one is another OS's source claiming another outcome than this "
        "host's (the cell is outlined in purple); * undefined which socket receives "
        "packets; →b names the socket that receives them. Hover a cell "
        "for the sockets, every call with its raw error, the reason, and the OS model's "
        "prediction where it does not agree; cells marked ⋯ "
        "(failures, errors, disagreements, no gate) open on click with the full tables."
    )
    return tag(
        "div",
        table(("colour", "meaning"), rows) + tag("p", note, class_="muted"),
        class_="legend",
    )


def contents(suites: dict[str, Any], results: list[dict[str, Any]], errata: int) -> str:
    rows = [
        [tag("a", esc(suites[sid]["title"]), href=f"#suite-{sid}"), esc(tally(mine))]
        for sid, mine in by_suite(suites, results).items()
        if sid in suites
    ]
    rows.append([tag("a", "Errata", href="#errata"), esc(f"{errata} entries")])
    return table(("suite", "cells"), rows)


def by_suite(suites: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Results per suite id, in the suites' order; '' holds those of no known suite."""
    out: dict[str, list[Any]] = {sid: [] for sid in suites}
    for r in results:
        out.setdefault(r["suite"] if r["suite"] in suites else "", []).append(r)
    return out


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
    follows = table(
        ("oracle", "agree", "disagree", "agreement"),
        (
            [
                esc(oid),
                esc(n["agree"]),
                esc(n["disagree"]),
                esc(f"{100 * n['agree'] / max(1, n['agree'] + n['disagree']):.0f}%"),
            ]
            for oid, n in summary.get("resemblance", {}).items()
        ),
    )
    return (
        status
        + (
            per_oracle
            if summary["oracles"]
            else tag("p", "No oracle of these suites applies to this host.", class_="muted")
        )
        + (
            tag("h3", "Which source does this host follow?")
            + tag(
                "p",
                "Every expectation source, whatever OS it is for (another OS's table through the "
                "cell's profile), against the cells that ran here. A finding, not a verdict.",
                class_="muted",
            )
            + follows
            if summary.get("resemblance")
            else ""
        )
    )


def errata_table(entries: list[dict[str, Any]], with_host: bool) -> str:
    fields = ["id", "host", "oracle", "documented", "observed", "provenance"]
    fields = [f for f in fields if with_host or f != "host"]
    head = [{"id": "cell", "oracle": "document"}.get(f, f) for f in fields]
    return table(head, ([esc(e[f]) for f in fields] for e in entries))


def simulated(info: dict[str, Any]) -> str:
    """The banner of a run whose sockets were a stand-in: never a conformance result."""
    if not info.get("simulated"):
        return ""
    return (
        f"SIMULATED — not a conformance result: {info['simulated']} (the socket layer was a "
        f"stand-in for {info['host']['os']}; the merge refuses it)"
    )


def page(title: str, body: str, lead: str = "", banner: str = "") -> str:
    return templates.render(
        "host.html.j2",
        title=title,
        body=templates.markup(body),
        lead=templates.markup(lead),
        simulated=banner,
    )


def decisive(info: dict[str, Any]) -> str:
    """The fingerprint that decides results, at the top of the host report."""
    pairs = matrix.fingerprint(info)[:-3]
    return tag(
        "table",
        tag("caption", "What decides the results on this host")
        + "".join(tag("tr", tag("th", esc(k)) + tag("td", esc(v))) for k, v in pairs),
        class_="fp kv",
    )


def render(report: dict[str, Any], lead: str = "") -> str:
    """The host report; lead (already escaped HTML) comes first in the body."""
    info, suites, results = report["run_info"], report["suites"], report["results"]
    host = info["host"]
    title = f"bind() conformance: {host['os']} {host['os_release']}"
    errata = errata_of((("", r) for r in results), suites)
    parts = [
        tag("h1", esc(title)),
        tag(
            "p",
            esc(
                f"{host['kernel']}, {host['machine']}, python {host['python']} · "
                f"gate {info['gate']} · {info['started']} → {info['finished']} · "
                f"exit status {info['exit_status']}"
                + (f" · run id {info['run_id']}" if info.get("run_id") else "")
            ),
            class_="muted",
        ),
        decisive(info),
        summary_table(report["summary"], info["gate"]),
        legend(),
        contents(suites, results, len(errata)),
    ]
    documents = [
        f"{oid} ({o['applies']['os']})"
        for s in suites.values()
        for oid, o in s["oracles"].items()
        if o["kind"] == "document"
    ]
    parts.append(
        tag(
            "section",
            tag("h2", "Errata: where a documented table disagrees with this host")
            + (
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
            ),
            id="errata",
        )
    )
    for sid, mine in by_suite(suites, results).items():
        suite = suites.get(sid)
        letters = letters_of(suite, mine)
        if suite is None:
            if mine:
                parts.append(tag("h2", "Results of no known suite") + grids(None, mine, letters))
            continue
        parts.append(
            tag(
                "section",
                "".join(
                    [
                        tag("h2", esc(suite["title"])),
                        tag("p", esc(suite["description"])),
                        tag(
                            "p",
                            f"Suite {tag('code', esc(sid))} from {tag('code', esc(suite['path']))}"
                            f" · {esc(tally(mine))}",
                            class_="muted",
                        ),
                        references(suite),
                        answers.facts_html({sid: suite}),
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
    errors = [r for r in results if r["status"] == "error"]
    if errors:
        parts.append(tag("h2", f"Errors ({len(errors)})"))
        parts.append(
            table(
                ("cell", "reason"), ([esc(r["id"]), tag("pre", esc(r["reason"]))] for r in errors)
            )
        )
    parts.append(tag("h2", "Run") + run_info(info))
    return page(title, "".join(parts), lead, simulated(info))


def render_merged(merged: dict[str, Any], lead: str = "") -> str:
    """The cross-host matrix (templates/merged.html.j2); lead (escaped HTML) comes first."""
    banners = [simulated(h["run_info"]) for h in merged["hosts"]]
    return templates.render(
        "merged.html.j2",
        **matrix.page(merged),
        lead=templates.markup(lead),
        simulated=" ".join(b for b in banners if b),
    )
