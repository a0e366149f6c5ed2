"""Every section says the same numbers: terminal summary, Markdown, HTML and JSON.

One real host report (Table 1's first grid, run here with real sockets), whose
summary is then given counts at the edges of rounding: 78.5 % (half up, where
float formatting rounds to even), 78.25 %, 99.9 % (never 100 % while a cell
disagrees), 0.1 % (never 0 % while one agrees), 2/3, all and none; and more
skipped cells than an oracle's 'not run' (the cells it expects nothing of are
said apart). Each output is parsed back and compared with the JSON.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from test_report_files import run_book

from pytest_bindconform.report import html, markdown, model

EDGES = {  # oracle -> (agree, disagree, what every section prints)
    "edge-half-up": (157, 43, "79%"),
    "edge-quarter": (313, 87, "78%"),
    "edge-nearly-all": (999, 1, "99%"),
    "edge-nearly-none": (1, 999, "1%"),
    "edge-two-thirds": (2, 1, "67%"),
    "edge-all": (5, 0, "100%"),
    "edge-none": (0, 5, "0%"),
}


class Tables(HTMLParser):
    """Every table row of a page as its cells' text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def md_rows(text: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|") and not set(line) <= set("|-: ")
    ]


def html_rows(text: str) -> list[list[str]]:
    parser = Tables()
    parser.feed(text)
    return parser.rows


def after(rows: list[list[str]], first: str) -> list[str]:
    """The row after the header row starting with `first` (a one-row table's values)."""
    at = next(i for i, r in enumerate(rows) if r and r[0] == first)
    return rows[at + 1]


def keyed(rows: list[list[str]], keys: list[str]) -> dict[str, list[str]]:
    """Rows whose first cell names one of keys ('x (gate)' names x)."""
    out = {}
    for r in rows:
        name = r[0].removesuffix(" (gate)") if r else ""
        if name in keys and name not in out:
            out[name] = r[1:]
    return out


@pytest.fixture(scope="module")
def edged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    book, doc = run_book(tmp_path_factory.mktemp("consistency"))
    summary = doc["summary"]
    summary["resemblance"] = {oid: {"agree": a, "disagree": d} for oid, (a, d, _) in EDGES.items()}
    summary["status"]["skip"] += 4  # 4 more skipped cells than any oracle's 'not run'
    doc = json.loads(model.dumps(doc))  # what the JSON file holds
    book.report = doc
    return book, doc


def test_percentages_agree_in_every_section_at_the_rounding_edges(
    edged: tuple[Any, dict[str, Any]],
) -> None:
    book, doc = edged
    summary = doc["summary"]
    md = md_rows(markdown.render(doc))
    page = html_rows(html.render(doc))
    for oid, (agree, disagree, shown) in EDGES.items():
        counts = summary["resemblance"][oid]
        assert (counts["agree"], counts["disagree"]) == (agree, disagree)
        assert model.percent(counts) == shown
        assert keyed(md, [oid])[oid] == [str(agree), str(disagree), shown]
        assert keyed(page, [oid])[oid] == [str(agree), str(disagree), shown]
    # the terminal names the four sources closest to this host, in the JSON's order
    line = next(x for x in book.summary_lines(quiet=False) if "closest other sources" in x)
    said = dict(re.findall(r"(edge-[a-z-]+) (\d+%|–)", line))
    assert list(said) == list(summary["resemblance"])[:4]
    assert said == {oid: EDGES[oid][2] for oid in said}


def test_counts_agree_in_every_section(edged: tuple[Any, dict[str, Any]]) -> None:
    book, doc = edged
    summary = doc["summary"]
    status = summary["status"]
    md = md_rows(markdown.render(doc))
    page = html_rows(html.render(doc))
    values = [str(summary["cells"]), *map(str, status.values())]
    assert after(md, "cells") == values
    assert after(page, "cells") == values
    lines = book.summary_lines(quiet=False)
    said = next(x for x in lines if x.startswith(f"{summary['cells']} cells: "))
    assert dict((s, int(n)) for n, s in re.findall(r"(\d+) (\w+)", said.split(":", 1)[1])) == {
        s: n for s, n in status.items() if n
    }
    oracles = list(summary["oracles"])
    assert oracles
    for table in (keyed(md, oracles), keyed(page, oracles)):
        assert table == {o: [str(v) for v in n.values()] for o, n in summary["oracles"].items()}
    for oid, n in summary["oracles"].items():
        text = next(x for x in lines if x.strip().startswith(f"{oid}"))
        found = dict(
            (k, int(v)) for v, k in re.findall(r"(\d+) (agree|disagree|no claim|not run)", text)
        )
        assert found == {
            "agree": n["agree"],
            "disagree": n["disagree"],
            "no claim": n["no-claim"],
            "not run": n["not-run"],
        }
        apart = status["skip"] - n["not-run"]  # never "112 skip" next to "108 not run" alone
        assert apart > 0 and f"(+{apart} skipped cells it expects nothing of)" in text


def test_one_rounding_everywhere() -> None:
    """No output formats a percentage of its own."""
    src = Path(model.__file__).resolve().parent
    for path in [*src.glob("*.py"), *(src / "templates").glob("*.j2")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r":\.\d+f}%|\|\s*round|:\.0%|\* ?100\b", text), path
