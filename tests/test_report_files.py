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
from pytest_bindconform.report import html, markdown, model
from pytest_bindconform.report.book import Book, write_atomic
from pytest_bindconform.state import RunState

REPO = Path(__file__).resolve().parents[1]
TABLE1 = "cases/ms-so-exclusiveaddruse-table1.bind.yaml"
DOC = "ms-so-exclusiveaddruse-t1"  # the documented oracle of that suite (Windows)
EVIL = "<script>alert('x')</script> & Table 1"


def run_report(root: Path, title: str | None = None, slot: int = 0) -> dict[str, Any]:
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
    return doc


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
            "steps": [
                {"socket": "second", "call": "bind", "outcome": seen, "errno": 0, "error": ""}
            ],
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


# -- HTML -----------------------------------------------------------------------------------


class Tables(HTMLParser):
    """Header texts and results per cell of every table.grid (not of tables nested in cells)."""

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
        if tag == "th":
            self._in_th = True
            self.grids[-1]["th"].append("")
        elif tag == "td":
            self.grids[-1]["recs"].append(0)
        elif tag == "div" and cls.startswith("rec "):
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
    assert first["th"] == [first["th"][0], *grid["columns"], *grid["rows"]]
    assert len(first["recs"]) == rows * columns
    merged = [i for i, label in enumerate(grid["columns"]) if " or " in label]
    assert merged, "Table 1 merges columns"
    for i, n in enumerate(first["recs"]):  # a merged column shows both of its cells
        assert n == (2 if i % columns in merged else 1)
    assert page.scripts == 0


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
    errata = html.render(win).split("Errata")[1]
    assert odd in errata.replace("&amp;", "&") and "INUSE" in errata


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
    assert len(merged["cells"]) == len(linux["results"])
    assert all(set(c["hosts"]) == set(keys) for c in merged["cells"])
    seen = {r["id"]: r["observed"]["outcome"] for r in linux["results"]}
    other = {r["id"]: r["observed"]["outcome"] for r in win["results"]}
    assert merged["differences"] == [i for i in seen if seen[i] != other[i]]
    assert merged["differences"], "Linux and Table 1 differ somewhere"
    wrong = [(e["id"], e["host"], e["oracle"]) for e in merged["errata"]]
    assert wrong == [(odd, keys[1], DOC)]
    md = Path(f"{out}.md").read_text(encoding="utf-8")
    assert f"## Where hosts differ ({len(merged['differences'])} cells)" in md
    assert "## Where a documented table is wrong on its host (1)" in md
    page = Path(f"{out}.html").read_text(encoding="utf-8")
    assert all(html.esc(k) in page for k in keys) and "<script" not in page


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
    a, b = save(tmp_path / "a.json", first), save(tmp_path / "b.json", second)
    assert merge(a, b, "--json", str(tmp_path / "m.json")) == 0
    merged = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert len(merged["hosts"]) == 1 and merged["hosts"][0]["sources"] == [a, b]
    assert len(merged["cells"]) == len(linux["results"])


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
    newer = dict(win, format=2)
    a, b = save(tmp_path / "a.json", linux), save(tmp_path / "b.json", newer)
    err = refused(capsys, a, b, "--md", str(tmp_path / "m.md"))
    assert f"{b} has report format 2 but {a} has format 1" in err
    both = save(tmp_path / "c.json", newer)
    assert "reads format 1" in refused(capsys, both, "--md", str(tmp_path / "m.md"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": 1, "kind": ', ":1:23: not valid JSON: Expecting value"),
        ("[1, 2]", ": not a bindconform report (no 'format' field)"),
        ('{"format": 1, "kind": "host"}', ": not a valid bindconform host report:\n  (top): "),
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
    assert "Where hosts differ" in dom and 'class="grid"' in dom
    for problem in ("Uncaught", "Refused to", "ERR_", "CONSOLE"):
        assert problem not in log, log[-2000:]
