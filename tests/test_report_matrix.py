"""The merged matrix as a person reads it, checked in headless Chromium, and the host
report's head: what decides results first, other OSes' disagreeing sources in colour.

The hosts: one real host report of this machine (a grid of Table 1, run here with
real sockets) and hosts made from it by bench/hosts.py (macOS, Windows, Linux as
root), which change only what differs between hosts: OS, Python, privilege and
outcomes.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from test_report_files import REPO, merge, render_in_browser, run_report, save

from pytest_bindconform.report import html, markdown
from pytest_bindconform.report import merge as merging

sys.path.insert(0, str(REPO / "bench"))
from hosts import made_up  # noqa: E402


class Dom(HTMLParser):
    """Tables, cells, ids and links of a page as the browser left it."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.tables: list[str] = []
        self.tds = 0
        self.marks: list[str] = []  # text of each .m span (one mark per host)
        self._in_marks = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "a" and str(a.get("href", "")).startswith("#"):
            self.links.append(str(a["href"])[1:])
        if tag == "table":
            self.tables.append(str(a.get("class") or ""))
        if tag == "td":
            self.tds += 1
        if tag == "span" and a.get("class") == "m":
            self._in_marks = 1
            self.marks.append("")
        elif self._in_marks:
            self._in_marks += 1

    def handle_endtag(self, tag: str) -> None:
        if self._in_marks:
            self._in_marks -= 1

    def handle_data(self, data: str) -> None:
        if self._in_marks:
            self.marks[-1] += data


def hosts(tmp_path: Path) -> tuple[list[str], dict[str, Any]]:
    real = run_report(tmp_path)
    docs = [real, made_up(real, 1), made_up(real, 2), made_up(real, 3)]
    return [save(tmp_path / f"h{n}.json", d) for n, d in enumerate(docs)], real


def test_merged_matrix_reads_as_grids_of_hosts_in_a_browser(tmp_path: Path) -> None:
    paths, real = hosts(tmp_path)
    out = tmp_path / "merged"
    assert merge(*paths, "--json", f"{out}.json", "--html", f"{out}.html") == 0
    merged = json.loads(Path(f"{out}.json").read_text(encoding="utf-8"))
    labels = [h["label"] for h in merged["hosts"]]
    assert labels[1:] == ["macos 14.7 py3.10", "windows-2022 py3.10", "linux 6.8 py3.13 root"]
    dom_text, log = render_in_browser(Path(f"{out}.html"), tmp_path / "profile")
    for problem in ("Uncaught", "Refused to", "ERR_", "CONSOLE"):
        assert problem not in log, log[-2000:]
    dom = Dom()
    dom.feed(dom_text)
    # the overview of suites x hosts comes first, with a column per host
    assert dom.tables.index("ov") < dom.tables.index("grid mx")
    overview = dom_text[dom_text.index('<table class="ov">') :]
    overview = overview[: overview.index("</table>")]
    assert all(html.esc(label) in overview for label in labels)
    # every grid cell holds one mark per host
    cells = len(real["results"])
    assert len(dom.marks) == cells and all(len(m) == len(labels) for m in dom.marks)
    # cells where OSes differ are drawn as such
    differ_os = sum(1 for c in merged["cells"] if c["differ"] == "os")
    assert differ_os and dom_text.count('class="osd"') >= differ_os
    # errata: one row per grid position, each linking to its cell
    positions = [(e["suite"], json.dumps(e["position"])) for e in merged["errata"]]
    assert positions and len(positions) == len(set(positions))
    targets = [link for link in dom.links if re.fullmatch(r"c\d+", link)]
    assert len(targets) == len(positions) and set(targets) <= dom.ids
    # no flat list of cells: the page has about one <td> per grid cell, not one per host
    assert dom.tds < cells + 40 * len(labels) + 200, dom.tds


def test_merged_markdown_groups_by_position_and_leads_with_what_it_is_given(
    tmp_path: Path,
) -> None:
    paths, _ = hosts(tmp_path)
    merged = merging.merge_files([Path(p) for p in paths])
    text = markdown.render_merged(merged, lead=["**Recommendations** go here", ""])
    lines = text.splitlines()
    assert lines[2] == "**Recommendations** go here"
    assert "## Suites × hosts" in text and "## Errata per grid position" in text
    page = html.render_merged(merged, lead="<section id='answers'>A &amp; B</section>")
    assert page.index("<section id='answers'>A &amp; B</section>") < page.index("<h1>")


def test_merge_tells_a_privileged_run_from_an_unprivileged_one(tmp_path: Path) -> None:
    real = run_report(tmp_path)
    root = json.loads(json.dumps(real))
    root["run_info"]["host"]["admin"] = not real["run_info"]["host"]["admin"]
    merged = merging.merge_files(
        [Path(save(tmp_path / "a.json", real)), Path(save(tmp_path / "b.json", root))]
    )
    keys = [h["key"] for h in merged["hosts"]]
    assert len(keys) == 2 and {"privileged" in k.split() for k in keys} == {True, False}
    assert sorted("root" in h["label"].split() for h in merged["hosts"]) == [False, True]


def test_host_report_leads_with_the_fingerprint_and_colours_other_oses(tmp_path: Path) -> None:
    doc = run_report(tmp_path)
    page = html.render(doc, lead="<p id='lead'>first</p>")
    assert page.index("<p id='lead'>first</p>") < page.index("<h1>")
    top = page.index("What decides the results on this host")
    assert top < page.index("Which source does this host follow?")
    for fact in ("V6ONLY default", "privileges", "isolation", "addresses inet"):
        assert page.index(fact) < page.index('class="grid"'), fact
    others = [r for r in doc["results"] if html.others_disagree(r)]
    assert others, "Table 1's Windows document disagrees with this host somewhere"
    assert page.count(" other") >= len(others) and "<em>" in page


def test_the_fast_paths_of_merge_change_nothing(tmp_path: Path, monkeypatch: Any) -> None:
    """orjson and the paused cycle collector against json.loads with it running, and the
    tuple key that groups equal results against grouping by their full JSON text."""
    paths, _ = hosts(tmp_path)
    fast = merging.merge_files([Path(p) for p in paths])
    monkeypatch.setattr(merging, "fast_loads", json.loads)
    monkeypatch.setattr(merging, "acyclic", contextlib.nullcontext)
    slow = merging.merge_files([Path(p) for p in paths])
    fast.pop("created"), slow.pop("created")
    assert fast == slow
    for path in paths:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        by_key: dict[Any, set[str]] = {}
        by_text: dict[str, set[str]] = {}
        for r in doc["results"]:
            key, shown = merging.kept(r)
            by_key.setdefault(key, set()).add(r["id"])
            by_text.setdefault(json.dumps(shown, sort_keys=True), set()).add(r["id"])
        assert sorted(map(sorted, by_key.values())) == sorted(map(sorted, by_text.values()))
        assert len(by_key) >= 2  # the test is not vacuous: results differ
