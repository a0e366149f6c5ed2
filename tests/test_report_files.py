"""Report files: Markdown size limit, HTML escaping and rendering, atomic writes, merge.

The host report is real: the reference suite's tcp4-bound cells run here with
real sockets through the same Book the plugin uses. The second host of the
merge tests is a hand-made "windows" report, edited from a copy, as the issue
describes; rendering limits are tested on inflated copies of a real report.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_bindconform import cases, host, oracles, runner
from pytest_bindconform.__main__ import main
from pytest_bindconform.report import hostgrid, html, markdown, model
from pytest_bindconform.report.book import Book, write_atomic
from pytest_bindconform.report.merge import result as merged_result
from pytest_bindconform.report.merge import shown
from pytest_bindconform.state import RunState

REPO = Path(__file__).resolve().parents[1]
TABLE1 = "cases/ms-so-exclusiveaddruse-table1.bind.yaml"
DOC = "ms-so-exclusiveaddruse-t1"  # the documented oracle of that suite (Windows)
EVIL = "<script>alert('x')</script> & Table 1"
OS_NAME = host.os_family()


def run_book(root: Path, title: str | None = None, slot: int = 0) -> tuple[Book, dict[str, Any]]:
    """A real host report of the cells of the suite's first variant, copied under root."""
    text = (REPO / TABLE1).read_text(encoding="utf-8")
    if title is not None:
        text = re.sub(r"^title: .*$", "title: " + json.dumps(title), text, count=1, flags=re.M)
    (root / "cases").mkdir(exist_ok=True)
    (root / TABLE1).write_text(text, encoding="utf-8")
    suite = cases.load_suite(root / TABLE1, display=TABLE1)
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    lo = 32300 + 150 * (worker % 3) + 50 * slot  # above test_report.py's, below 32768
    state = RunState(host.fingerprint(), oracles.parse_gates([]), (lo, lo + 49), (0, 1))
    book = Book(root)
    chosen = [c for c in suite.cells if c.variant == suite.cells[0].variant]  # one grid
    book.expect(f"{TABLE1}::{c.name}" for c in chosen)
    for c in chosen:
        book.add(f"{TABLE1}::{c.name}", runner.execute(c, suite, state.context()))
    doc = book.build(state, 0, 0)
    assert model.problems(doc) == [] and doc["results"]
    return book, doc


def run_report(root: Path, title: str | None = None, slot: int = 0) -> dict[str, Any]:
    return run_book(root, title, slot)[1]


@pytest.fixture
def linux(tmp_path: Path) -> dict[str, Any]:
    return run_report(tmp_path)


def as_windows(doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A made-up Windows host that does what Table 1 documents, except in one cell."""
    win = copy.deepcopy(doc)
    win["run_info"]["host"].update(
        os="windows", os_release="11", os_version="10.0.22631", kernel="Windows 10", machine="AMD64"
    )
    win["run_info"]["gate"] = win["run_info"]["gates"]["windows"]
    oracle_info = win["suites"]["ms-so-exclusiveaddruse-table1"]["oracles"]
    odd = ""
    for r in win["results"]:
        documented = r["expected"][DOC]["outcome"]
        seen = documented if documented in ("ok", "INUSE", "ACCESS") else "INUSE"
        if not odd and seen == "INUSE":
            seen, odd = "ok", r["id"]
        r["observed"] = {
            "outcome": seen,
            "steps": [{"socket": "second", "call": "bind", "outcome": seen, "errno": 0}],
            "delivery": None,
        }
        r["verdicts"] = {
            oid: "no-claim"
            if e["outcome"] in ("n/a", "?")
            else "agree"
            if e["outcome"] == seen
            else "disagree"
            for oid, e in r["expected"].items()
            if model.oracle_applies(oracle_info[oid], win["run_info"]["host"])
        }
        r.update(status="ungated", gate=None, reason="gate makes no claim")
    win["summary"] = model.summarize(win["results"])
    assert model.problems(win) == [] and odd
    return win, odd


def save(path: Path, doc: Any) -> str:
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return str(path)


def merge(*args: str) -> int:
    return main(["merge", *args])


# -- Markdown ---------------------------------------------------------------------------


def test_markdown_stays_under_the_step_summary_limit(linux: dict[str, Any]) -> None:
    big = copy.deepcopy(linux)
    template = big["results"][0]
    big["results"] = []
    for i in range(20000):
        r = copy.deepcopy(template)
        r["id"] = f"{template['id']}-{i:05d}-" + "x" * 80
        r["verdicts"] = {"linux": "disagree"}
        big["results"].append(r)
    big["summary"] = model.summarize(big["results"])
    text = markdown.render(big, "reports/linux.html")
    assert len(text.encode()) <= markdown.LIMIT < 1024 * 1024
    shown = sum(1 for line in text.splitlines() if "x" * 80 in line)
    (more,) = re.findall(r"^(\d+) more — see the full report \(reports/linux\.html\)$", text, re.M)
    assert shown > 1000 and shown + int(more) == 20000
    assert "## Errors (0)" in text  # the sections after the cut keep their heading
    small = markdown.render(big, "", limit=6000)
    assert len(small.encode()) <= 6000 and "## Errors (0)" in small


def test_markdown_cells_cannot_break_the_table(linux: dict[str, Any]) -> None:
    doc = copy.deepcopy(linux)
    doc["results"][0].update(status="error", reason="a | b\n<b>c</b>")
    text = markdown.render(doc)
    (line,) = [x for x in text.splitlines() if "a \\| b" in x]
    assert "&lt;b&gt;c&lt;/b&gt;" in line and line.count(" | ") == 1


# -- JSON -------------------------------------------------------------------------------


def test_json_holds_each_provenance_once_and_loses_nothing(tmp_path: Path) -> None:
    book, doc = run_book(tmp_path)
    text = model.dumps(doc)
    oracle_table = doc["suites"]["ms-so-exclusiveaddruse-table1"]["oracles"]
    for oid, oracle in oracle_table.items():
        assert text.count(json.dumps(oracle["provenance"], ensure_ascii=False)) == 1, oid
    for r in doc["results"]:
        record = book.records[r["id"]]  # what the runner wrote, untouched by the report
        for oid, e in r["expected"].items():
            assert e["provenance"] == oid and set(e) == set(record["expected"][oid])
            assert oracle_table[oid]["provenance"] == record["expected"][oid]["provenance"]
            assert {**e, "provenance": record["expected"][oid]["provenance"]} == (
                record["expected"][oid]
            )
        if r["observed"] is None:
            assert record["observed"] is None
            continue
        steps = r["observed"]["steps"]
        assert [{"error": "", **step} for step in steps] == record["observed"]["steps"]
        assert all(step.get("error") != "" for step in steps)
        for key in r.keys() - {"expected", "observed"}:
            assert r[key] == record[key], key
    failed = [s for r in doc["results"] if r["observed"] for s in r["observed"]["steps"]]
    assert any(s["errno"] and s["error"] == "EADDRINUSE" for s in failed), "raw errors kept"
    unshared = model.dumps({**doc, "results": [book.records[r["id"]] for r in doc["results"]]})
    assert len(text) < 0.8 * len(unshared)


def test_oracles_apply_only_where_their_host_settings_hold(linux: dict[str, Any]) -> None:
    oracle = copy.deepcopy(linux["suites"]["ms-so-exclusiveaddruse-table1"]["oracles"]["linux"])
    host_info = dict(linux["run_info"]["host"], sysctl={"net.ipv6.bindv6only": "0"})
    assert oracle["applies"]["sysctl"] == {} and model.oracle_applies(oracle, host_info)
    oracle["applies"]["sysctl"] = {"net.ipv6.bindv6only": "1"}
    assert not model.oracle_applies(oracle, host_info)


# -- HTML -----------------------------------------------------------------------------------


class Tables(HTMLParser):
    """Header texts and results per cell of every table.grid (not of tables nested in cells).

    A result is an element of class 'rec': the <td> itself, or one <div> per result
    where a published table merged several cells into one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.grids: list[dict[str, list[Any]]] = []
        self.scripts = 0
        self._tables: list[bool] = []  # open tables: is it a grid?
        self._in_th = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        cls = dict(attrs).get("class") or ""
        if tag == "table":
            self._tables.append(cls == "grid")
            if cls == "grid":
                self.grids.append({"th": [], "recs": []})
        if not (self._tables and self._tables[-1]):
            return
        rec = "rec" in cls.split()
        if tag == "th":
            self._in_th = True
            self.grids[-1]["th"].append("")
        elif tag == "td":
            self.grids[-1]["recs"].append(int(rec))
        elif tag == "div" and rec:
            self.grids[-1]["recs"][-1] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._tables.pop()
        self._in_th = self._in_th and tag != "th"

    def handle_data(self, data: str) -> None:
        if self._in_th:
            self.grids[-1]["th"][-1] += data


def test_html_draws_grids_in_page_orientation(linux: dict[str, Any]) -> None:
    page = Tables()
    page.feed(html.render(linux))
    grid = linux["suites"]["ms-so-exclusiveaddruse-table1"]["grid"]
    first = page.grids[0]
    columns, rows = len(grid["columns"]), len(grid["rows"])
    roles = [re.sub(r" \([^()]*\)", "", th) for th in first["th"]]  # 'reuse (SO_REUSEPORT)'
    assert roles == [first["th"][0], *grid["columns"], *grid["rows"]]
    assert any(" (SO_" in th for th in first["th"]), "a role says what it became here"
    assert len(first["recs"]) == rows * columns
    merged = [i for i, label in enumerate(grid["columns"]) if " or " in label]
    assert merged, "Table 1 merges columns"
    for i, n in enumerate(first["recs"]):  # a merged column shows both of its cells
        assert n == (2 if i % columns in merged else 1)
    assert page.scripts == 0


class Recs(HTMLParser):
    """Every result drawn in a table: its classes, its hover text, the tags inside it."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.recs: list[dict[str, Any]] = []
        self._open: list[tuple[str, int | None]] = []  # open tags, with their rec's index
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        index = None
        if "rec" in (a.get("class") or "").split():
            index = len(self.recs)
            self.recs.append({"class": a["class"], "title": a.get("title") or "", "holds": []})
        for _, i in self._open:
            if i is not None:
                self.recs[i]["holds"].append(tag)
        if tag not in ("br", "meta"):
            self._open.append((tag, index))

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop()[0] != tag:
            pass


def test_html_cell_names_the_oracles_behind_each_outcome() -> None:
    def exp(outcome: str, *flags: str) -> dict[str, Any]:
        return {"outcome": outcome, "flags": list(flags), "provenance": "x"}

    r = {
        "expected": {"d": exp("INUSE"), "b": exp("ok", "undefined-delivery"), "a": exp("INUSE")},
        "verdicts": {"a": "agree", "d": "disagree"},  # b does not apply to this host
    }
    r["expected"]["c"] = exp("INUSE")
    r["verdicts"]["c"] = "no-claim"
    letters = {"a": "A", "b": "B", "c": "C", "d": "D"}
    assert html.expectations(r, letters) == "AC<u>D</u> INUSE · <i>B</i> ok*"
    r["expected"]["e"] = exp("<b>")
    assert html.expectations(r, {**letters, "e": "oracle-27"}).endswith(
        " · <i>oracle-27</i> &lt;b&gt;"
    )


def test_html_opens_full_tables_only_where_they_matter(linux: dict[str, Any]) -> None:
    doc = copy.deepcopy(linux)
    ran = [r for r in doc["results"] if r["observed"]]
    ran[0].update(status="fail", verdicts={"linux": "disagree"})
    ran[1].update(verdicts={"linux": "agree", DOC: "disagree"})
    ran[2].update(status="error", reason="interference: port held by pid 7")
    kinds = {ran[0]["name"]: "disagree", ran[1]["name"]: "finding", ran[2]["name"]: "error"}
    modelled = ran[3:4]  # as if no document covered it: the OS model's prediction, disagreeing
    modelled[0]["model"] = {
        "os": "linux",
        "outcome": "ACCESS",
        "receiver": None,
        "verdict": "disagree",
        "provenance": "model:linux",
    }
    recs = {rec["title"].splitlines()[0]: rec for rec in Recs(html.render(doc)).recs}
    assert set(recs) == {r["name"] for r in doc["results"]}
    for r in doc["results"]:
        rec = recs[r["name"]]
        assert ("details" in rec["holds"] and "table" in rec["holds"]) == (r["name"] in kinds)
        assert rec["class"].split()[1] == kinds.get(r["name"], html.kind(r)), r["name"]
        assert (r["reason"] or r["status"]) in rec["title"]
        for step in (r["observed"] or {}).get("steps", []):
            assert step["call"] in rec["title"]
            if step["errno"]:  # the raw error, on hover
                assert f"{step['outcome']} ({step['error']} {step['errno']})" in rec["title"]
        for sock in r["scenario"]["sockets"]:
            assert f"{sock['name']} {sock['family']}/{sock['type']}" in rec["title"]
            if r["observed"] and any(s["call"] == "bind" for s in r["observed"]["steps"]):
                assert f"bind {sock['address']}" in rec["title"]
    assert "interference: port held by pid 7" in recs[ran[2]["name"]]["title"]
    models = [r["name"] for r in doc["results"] if "model " in recs[r["name"]]["title"]]
    wrong = [
        r["name"]
        for r in doc["results"]
        if (r.get("model") or {}).get("verdict", "agree") != "agree"
    ]
    assert modelled[0]["name"] in models == wrong  # named where it does not agree, only there
    assert f"model {OS_NAME} predicts ACCESS: disagree" in recs[modelled[0]["name"]]["title"]


def test_html_grows_little_per_cell_and_folds_further_grids(
    linux: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = copy.deepcopy(linux)
    copies = copy.deepcopy(linux["results"])
    for r in copies:
        r.update(id=r["id"] + "-copy", name=r["name"] + "-copy", variant="copy")
    doc["results"] += copies
    one, two = html.render(linux), html.render(doc)
    per_cell = (len(two.encode()) - len(one.encode())) / len(copies)
    assert per_cell < 450, per_cell  # 1,900 before titles replaced nested tables
    first = linux["results"][0]["variant"]

    def drawn(page: str) -> dict[str, bool]:
        found = re.findall(r'<details class="variant"( open="open")?><summary><h3>([^<]*)', page)
        return {name: bool(is_open) for is_open, name in found}

    assert drawn(two) == {first: True, "copy": False}
    assert f'<h3>copy</h3> <span class="muted">{len(copies)} cells: ' in two
    copies[-1].update(status="error", reason="crashed")
    assert drawn(html.render(doc)) == {first: True, "copy": True}
    monkeypatch.setattr(hostgrid, "OPEN", len(copies) - 1)  # a large first grid opens on click
    assert drawn(html.render(linux)) == {first: False}
    assert html.tally(copies[-3:]).startswith("3 cells: ")
    assert html.tally(copies[-1:]) == "1 cell: ⚠ 1 error"


def section(page: str, name: str) -> str:
    start = page.index(f'<section id="{name}">')
    return page[start : page.index("</section>", start)]


def test_html_escapes_every_text(tmp_path: Path) -> None:
    doc = run_report(tmp_path, title=EVIL, slot=1)
    doc["results"][0].update(status="error", reason='"><img src=x onerror=alert(1)>')
    text = html.render(doc)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; Table 1" in text
    assert "<script" not in text.lower() and "<img" not in text.lower()
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert not re.search(r"""(src|@import|url\()\s*=?\s*["']?https?:""", text)


def test_html_names_errata_and_provenance(tmp_path: Path, linux: dict[str, Any]) -> None:
    text = html.render(linux)
    assert "Errata" in text and DOC in text
    assert linux["suites"]["ms-so-exclusiveaddruse-table1"]["oracles"][DOC]["provenance"] in (
        text.replace("&#x27;", "'")
    )
    win, odd = as_windows(linux)
    errata = section(html.render(win), "errata")
    assert odd in errata.replace("&amp;", "&") and "INUSE" in errata
    assert odd not in section(html.render(linux), "errata").replace("&amp;", "&")


# -- atomic writes ------------------------------------------------------------------------


def test_failed_write_keeps_the_old_report_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "linux.json"
    write_atomic(target, "old\n")
    with pytest.raises(UnicodeEncodeError):  # fails after the first megabytes are on disk
        write_atomic(target, "x" * 3_000_000 + "\ud800")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["linux.json"]
    assert target.stat().st_mode & 0o044 == 0o044  # readable by others, not 0600


# -- schema -------------------------------------------------------------------------------


def test_schema_rejects_what_is_not_a_report(linux: dict[str, Any]) -> None:
    bad = copy.deepcopy(linux)
    bad["results"][2]["status"] = "passed"
    del bad["run_info"]["gate"]
    found = model.problems(bad)
    assert any(p.startswith("results/2/status: 'passed' is not one of") for p in found), found
    assert any(p.startswith("run_info: 'gate' is a required property") for p in found), found


# -- merge --------------------------------------------------------------------------------


def test_merge_builds_the_cross_host_matrix(
    tmp_path: Path, linux: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    win, odd = as_windows(linux)
    a, b = save(tmp_path / "linux.json", linux), save(tmp_path / "windows.json", win)
    out = tmp_path / "merged"
    assert merge(a, b, "--json", f"{out}.json", "--md", f"{out}.md", "--html", f"{out}.html") == 0
    assert "2 hosts" in capsys.readouterr().out
    merged = json.loads(Path(f"{out}.json").read_text(encoding="utf-8"))
    assert model.problems(merged) == []
    keys = [h["key"] for h in merged["hosts"]]
    assert [k.split()[0] for k in keys] == ["linux", "windows"]
    assert [h["label"].split()[0] for h in merged["hosts"]] == [OS_NAME, "windows"]
    assert len(merged["cells"]) == len(linux["results"])
    assert all(
        sorted(h for g in c["results"] for h in g["hosts"]) == [0, 1] for c in merged["cells"]
    )
    seen = {r["id"]: r["observed"]["outcome"] for r in linux["results"]}
    other = {r["id"]: r["observed"]["outcome"] for r in win["results"]}
    assert merged["differences"] == [i for i in seen if seen[i] != other[i]]
    assert merged["differences"], "Linux and Table 1 differ somewhere"
    assert {c["differ"] for c in merged["cells"] if c["id"] in merged["differences"]} == {"os"}
    wrong = [
        (e["cells"], [(d["oracle"], d["hosts"]) for d in e["documents"]]) for e in merged["errata"]
    ]
    assert wrong == [([odd], [(DOC, [1])])]
    md = Path(f"{out}.md").read_text(encoding="utf-8")
    assert f"## Where hosts differ ({len(merged['differences'])} cells, " in md
    assert "## Errata per grid position (1 positions)" in md
    page = Path(f"{out}.html").read_text(encoding="utf-8")
    assert all(html.esc(h["label"]) in page for h in merged["hosts"]) and "<script" not in page


def test_merge_takes_one_host_under_two_gates(tmp_path: Path, linux: dict[str, Any]) -> None:
    other = copy.deepcopy(linux)
    other["run_info"]["gate"] = other["run_info"]["gates"]["linux"] = "linux-other"
    a, b = save(tmp_path / "a.json", linux), save(tmp_path / "b.json", other)
    assert merge(a, b, "--json", str(tmp_path / "m.json")) == 0
    merged = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert len(merged["hosts"]) == 2 and merged["differences"] == []


def test_merge_joins_disjoint_reports_of_one_host(tmp_path: Path, linux: dict[str, Any]) -> None:
    half = len(linux["results"]) // 2
    first, second = copy.deepcopy(linux), copy.deepcopy(linux)
    first["results"], second["results"] = linux["results"][:half], linux["results"][half:]
    first["summary"], second["summary"] = map(
        model.summarize, (first["results"], second["results"])
    )
    a, b = save(tmp_path / "a.json", first), save(tmp_path / "b.json", second)
    assert merge(a, b, "--json", str(tmp_path / "m.json")) == 0
    merged = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert len(merged["hosts"]) == 1 and merged["hosts"][0]["sources"] == [a, b]
    assert merged["hosts"][0]["summary"] == linux["summary"]  # the halves add up to the whole
    assert len(merged["cells"]) == len(linux["results"])


def test_merge_stores_what_hosts_share_once_and_what_each_host_saw(
    tmp_path: Path, linux: dict[str, Any]
) -> None:
    win, _ = as_windows(linux)
    twin = copy.deepcopy(linux)  # the same OS under another Python: the same results
    twin["run_info"]["host"]["python"] = twin["run_info"]["python"] = "3.99.0"
    paths = [save(tmp_path / f"{n}.json", d) for n, d in (("l", linux), ("w", win), ("t", twin))]
    assert merge(*paths, "--json", str(tmp_path / "m.json")) == 0
    text = (tmp_path / "m.json").read_text(encoding="utf-8")
    merged = json.loads(text)
    rows = {c["id"]: c for c in merged["cells"]}
    for index, doc in enumerate((linux, win, twin)):
        for r in doc["results"]:
            kept = merged_result(rows[r["id"]], index)
            assert kept is not None and {k: v for k, v in kept.items() if k != "hosts"} == shown(r)
    shared = {"id", "suite", "name", "key", "variant", "grid", "expected"}
    assert all(not shared & set(g) for c in rows.values() for g in c["results"])
    assert all(merged_result(c, 0) is merged_result(c, 2) for c in rows.values()), "stored once"
    provenance = linux["suites"]["ms-so-exclusiveaddruse-table1"]["oracles"][DOC]["provenance"]
    assert text.count(json.dumps(provenance, ensure_ascii=False)) == 1
    inputs = len(model.dumps(linux)) + len(model.dumps(win)) + len(model.dumps(twin))
    assert len(text) < 0.5 * inputs, (len(text), inputs)


def test_merge_refuses_reports_whose_oracles_say_other_things(
    tmp_path: Path, linux: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    win, _ = as_windows(linux)
    oracle = win["suites"]["ms-so-exclusiveaddruse-table1"]["oracles"]["linux"]
    oracle["provenance"] = oracle["provenance"].replace("measured on", "guessed on")
    a, b = save(tmp_path / "a.json", linux), save(tmp_path / "b.json", win)
    err = refused(capsys, a, b, "--json", str(tmp_path / "m.json"))
    assert "(their provenance) differ" in err and "different case files" in err
    assert f"{b}: the oracles of suite 'ms-so-exclusiveaddruse-table1'" in err and a in err


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert merge(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("merge: ")
    return err


def test_merge_refuses_one_cell_twice_for_one_host(
    tmp_path: Path, linux: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = save(tmp_path / "a.json", linux), save(tmp_path / "b.json", linux)
    err = refused(capsys, a, b, "--json", str(tmp_path / "m.json"))
    assert f"{a} and {b} both hold cell '{linux['results'][0]['id']}' for host 'linux" in err
    assert not (tmp_path / "m.json").exists()


def test_merge_refuses_other_format_versions(
    tmp_path: Path, linux: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    win, _ = as_windows(linux)
    newer = dict(win, format=model.FORMAT + 1)
    a, b = save(tmp_path / "a.json", linux), save(tmp_path / "b.json", newer)
    err = refused(capsys, a, b, "--md", str(tmp_path / "m.md"))
    assert f"{b} has report format {model.FORMAT + 1} but {a} has format {model.FORMAT}" in err
    both = save(tmp_path / "c.json", newer)
    assert f"reads format {model.FORMAT}" in refused(capsys, both, "--md", str(tmp_path / "m.md"))
    old = save(tmp_path / "d.json", dict(linux, format=model.FORMAT - 1))
    assert f"reads format {model.FORMAT}" in refused(capsys, old, "--md", str(tmp_path / "m.md"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": 1, "kind": ', ":1:23: not valid JSON: Expecting value"),
        ("[1, 2]", ": not a bindconform report (no 'format' field)"),
        (
            f'{{"format": {model.FORMAT}, "kind": "host"}}',
            ": not a valid bindconform host report:\n  (top): ",
        ),
    ],
)
def test_merge_names_the_malformed_file(
    tmp_path: Path,
    linux: dict[str, Any],
    content: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good, bad = save(tmp_path / "good.json", linux), save(tmp_path / "bad.json", content)
    assert bad + message in refused(capsys, good, bad, "--json", str(tmp_path / "m.json"))


def test_merge_refuses_reports_of_other_case_files(
    tmp_path: Path, linux: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    win, _ = as_windows(linux)
    win["results"][0]["expected"]["linux"]["outcome"] = "ACCESS"
    a, b = save(tmp_path / "a.json", linux), save(tmp_path / "b.json", win)
    err = refused(capsys, a, b, "--json", str(tmp_path / "m.json"))
    assert "different case files" in err and b in err and a in err


def test_merge_needs_an_output(
    tmp_path: Path, linux: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert "--json, --md, --html" in refused(capsys, save(tmp_path / "a.json", linux))


# -- a real browser ------------------------------------------------------------------------

BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


def browser() -> str | None:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def render_in_browser(path: Path, profile: Path) -> tuple[str, str]:
    exe = browser()
    if exe is None:
        pytest.skip("no Chromium on PATH: install it (apt-get install chromium) or set CHROMIUM")
    done = subprocess.run(
        [exe, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--dump-dom", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def test_reports_render_in_a_real_browser(tmp_path: Path) -> None:
    doc = run_report(tmp_path, title=EVIL, slot=2)
    win, _ = as_windows(doc)
    page = tmp_path / "linux.html"
    page.write_text(html.render(doc), encoding="utf-8")
    dom, log = render_in_browser(page, tmp_path / "profile")
    assert dom.count('<table class="grid">') == 1  # one variant, one grid
    assert "&lt;script&gt;alert('x')&lt;/script&gt; &amp; Table 1" in dom
    assert "<script" not in dom.lower()
    for problem in ("Uncaught", "Refused to", "ERR_", "CONSOLE"):
        assert problem not in log, log[-2000:]
    save(tmp_path / "a.json", doc)
    save(tmp_path / "b.json", win)
    assert (
        merge(
            str(tmp_path / "a.json"),
            str(tmp_path / "b.json"),
            "--html",
            str(tmp_path / "merged.html"),
        )
        == 0
    )
    dom, log = render_in_browser(tmp_path / "merged.html", tmp_path / "profile2")
    assert "Overview: suites × hosts" in dom and 'class="grid mx"' in dom
    for problem in ("Uncaught", "Refused to", "ERR_", "CONSOLE"):
        assert problem not in log, log[-2000:]
