"""One self-contained HTML file: each suite as grids in its published orientation.

No script, no external asset: it opens from disk, offline. The page shell, the
fingerprint and the whole merged matrix are Jinja2 templates with autoescaping
(templates/), and so are the host report's grids (grids.html.j2, from the values of
hostgrid.py); the rest of the host page is built here, every piece of text from
case files or hosts going through esc() (a title may hold '<script>').
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from . import answers, distribution, hostgrid, matrix, templates
from .hostgrid import (  # noqa: F401  # noqa: F401
    LEGEND,
    MARK,
    delivery_text,
    kind,
    letters_of,
    model_text,
    others_disagree,
    plain,
    tally,
)
from .model import VERDICTS, oracle_applies, percent, verdict_counts
from .model import errata as errata_of


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


def grids(
    suite: dict[str, Any] | None, results: list[dict[str, Any]], letters: dict[str, str]
) -> str:
    """A suite's grids (templates/grids.html.j2, autoescaped) as a fragment of the page."""
    return str(templates.macros("grids.html.j2").grids(hostgrid.grids(suite, results, letters)))


def expectations(result: dict[str, Any], letters: dict[str, str]) -> str:
    """'A<i>CD</i> INUSE · <i>B</i> ok*': the oracles that expect each outcome, by key;
    a grey key does not apply to this host, a red underlined one disagrees."""
    return str(templates.macros("grids.html.j2").keys(hostgrid.keys(result, letters)))


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
                esc(percent(n)),
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
        distribution.html(report),
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
