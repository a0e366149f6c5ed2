"""Reports from real pytest runs (pytester, real sockets), with and without xdist.

The case file is a 2x2 grid whose second column merges two first-bind options,
so six cells run; its 'doc' oracle is wrong on purpose in one cell (a finding).
Each test gets its own port window (30000+), away from the other test files.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_bindconform.host import os_family
from pytest_bindconform.report import model

ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
OS = os_family()

TINY = """\
format: 1
id: tiny
title: "Tiny grid"
description: "Two rows, two columns; the second column merges two first-bind options."
references: []
profiles: [reuseport]
oracles:
  doc:
    kind: document
    source: "a made-up table, wrong on purpose in one cell"
    table: "Table 0"
    applies: {os: @OS@}
  measured:
    kind: measured
    source: "measured on Linux"
    applies: {os: @OS@}
    profiles: [reuseport]
grid:
  orientation: "rows: second bind; columns: first bind"
  variants: {type: [stream], family: [inet]}
  rows:
    socket: second
    values:
      - {option: default, address: wildcard}
      - {option: reuse, address: wildcard}
  columns:
    socket: first
    values:
      - {option: default, address: wildcard}
      - {option: [default, reuse], address: specific}
  expect:
    - oracle: doc
      table:
        - [INUSE, INUSE]
        - [ok, INUSE|ok]
    - oracle: measured
      table:
        - [INUSE, INUSE]
        - [INUSE, INUSE|ok]
""".replace("@OS@", OS)
CELLS = 6
VICTIM = "first=reuse@specific,second=default@wildcard[reuseport-tcp4]"
OUTPUTS = ("--bindconform-json", "reports/{os}.json", "--bindconform-md", "reports/{os}.md")


def ports(slot: int) -> str:
    lo = 30000 + 250 * slot
    return f"--bindconform-ports={lo}-{lo + 249}"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".bind.yaml", tiny=TINY)
    pytester.makeini(f"[pytest]\nbindconform_gate = {OS}=measured\n")
    return pytester


def report(pytester: pytest.Pytester, name: str = f"reports/{OS}.json") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((pytester.path / name).read_text(encoding="utf-8"))
    assert model.problems(doc) == []
    assert len(doc["results"]) == CELLS, [r["id"] for r in doc["results"]]
    return doc


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in doc["results"]}


def test_three_reports_named_after_the_os(project: pytest.Pytester) -> None:
    ini = f"[pytest]\nbindconform_gate = {OS}=measured\nbindconform_html = out/{{os}}.html\n"
    project.makeini(ini)
    result = project.runpytest_subprocess(*ARGS, ports(0), *OUTPUTS)
    result.assert_outcomes(passed=CELLS)
    doc = report(project)
    assert doc["format"] == model.FORMAT and doc["run_info"]["gate"] == "measured"
    assert doc["run_info"]["host"]["os"] == OS and doc["run_info"]["exit_status"] == 0
    assert set(doc["suites"]) == {"tiny"} and doc["suites"]["tiny"]["grid"]["columns"] == [
        "default, wildcard",
        "default or reuse, specific",
    ]
    for r in doc["results"]:
        assert r["status"] == "pass" and r["observed"]["steps"]
        for sock in r["scenario"]["sockets"]:
            assert sock["address"] in ("0.0.0.0", "127.0.0.1")
        assert set(r["expected"]) == {"doc", "measured"}
    # the summary counts what the results say
    finding = by_name(doc)["first=default@wildcard,second=reuse@wildcard[reuseport-tcp4]"]
    assert finding["verdicts"] == {"doc": "disagree", "measured": "agree"}
    assert doc["summary"]["oracles"]["doc"] == {
        "agree": CELLS - 1,
        "disagree": 1,
        "no-claim": 0,
        "not-run": 0,
    }
    assert doc["summary"]["status"]["pass"] == CELLS
    md = (project.path / f"reports/{OS}.md").read_text(encoding="utf-8")
    assert "## Per oracle" in md and "| doc | 5 | 1 | 0 | 0 |" in md
    assert "## Disagreements (1)" in md and finding["id"] in md
    for r in doc["results"]:  # each provenance text is held once, by the suite's oracle table
        assert {oid: e["provenance"] for oid, e in r["expected"].items()} == {
            "doc": "doc",
            "measured": "measured",
        }
    oracle_table = doc["suites"]["tiny"]["oracles"]
    assert oracle_table["doc"]["provenance"] == (
        "document: a made-up table, wrong on purpose in one cell, Table 0"
    )
    html = (project.path / f"out/{OS}.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "Tiny grid" in html
    assert html.count("<details><summary>") == 1  # full tables for the finding only
    result.stdout.fnmatch_lines(
        [
            "*= bindconform =*",
            f"{CELLS} cells: {CELLS} pass (gate measured)",
            "  doc: 5 agree, 1 disagree, 0 no claim, 0 not run",
            "reports: "
            + ", ".join(
                (project.path / f).as_uri() for f in (f"reports/{OS}.json", f"reports/{OS}.md")
            )
            + f", {(project.path / f'out/{OS}.html').as_uri()}",
        ]
    )


def test_quiet_terminal_summary_is_short(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess(*ARGS, ports(1), "-q", *OUTPUTS)
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if " bindconform " in line)
    assert lines[start + 1 : start + 3] == [
        f"{CELLS} cells: {CELLS} pass (gate measured)",
        "reports: "
        + ", ".join((project.path / f"reports/{OS}.{x}").as_uri() for x in ("json", "md")),
    ]
    assert not any("no claim" in line for line in lines)


def comparable(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Results without what legitimately differs between runs: timings and ports."""
    out = []
    for r in doc["results"]:
        r = json.loads(json.dumps(r))
        r["duration"] = 0
        r["scenario"].pop("port", None)
        out.append(r)
    return out


def test_xdist_and_serial_runs_give_the_same_results(project: pytest.Pytester) -> None:
    serial = project.runpytest_subprocess(
        *ARGS, ports(2), "-n", "0", "--bindconform-json", "serial.json"
    )
    serial.assert_outcomes(passed=CELLS)
    spread = project.runpytest_subprocess(
        *ARGS, ports(3), "-n", "2", "--bindconform-json", "spread.json"
    )
    spread.assert_outcomes(passed=CELLS)
    assert comparable(report(project, "serial.json")) == comparable(report(project, "spread.json"))


def test_killed_worker_leaves_a_complete_report(project: pytest.Pytester) -> None:
    project.makeconftest(f"""
        import os
        def pytest_runtest_call(item):
            if item.name == {VICTIM!r} and os.environ.get("PYTEST_XDIST_WORKER"):
                os._exit(3)
    """)
    result = project.runpytest_subprocess(*ARGS, ports(4), "-n", "2", *OUTPUTS)
    result.assert_outcomes(passed=CELLS - 1, failed=1)
    doc = report(project)
    victim = by_name(doc)[VICTIM]
    assert victim["status"] == "error" and "crashed" in victim["reason"]
    assert victim["observed"] is None and victim["verdicts"] == {
        "doc": "not-run",
        "measured": "not-run",
    }
    assert [s["family"] for s in victim["scenario"]["sockets"]] == ["inet", "inet"]
    assert victim["expected"]["measured"]["outcome"] == "INUSE"
    assert victim["grid"] == {
        "row": 0,
        "column": 1,
        "row_label": "default, wildcard",
        "column_label": "default or reuse, specific",
    }
    assert [r["status"] for r in doc["results"]].count("pass") == CELLS - 1
    assert doc["summary"]["status"]["error"] == 1
    assert "## Errors (1)" in (project.path / f"reports/{OS}.md").read_text(encoding="utf-8")


def test_interrupted_run_writes_whole_reports_only(project: pytest.Pytester) -> None:
    project.makeconftest(f"""
        def pytest_runtest_call(item):
            if item.name == {VICTIM!r}:
                raise KeyboardInterrupt
    """)
    result = project.runpytest_subprocess(*ARGS, ports(5), "-n", "0", *OUTPUTS)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    doc = report(project)
    names = [r["name"] for r in doc["results"]]
    cut = names.index(VICTIM)
    assert cut > 0, "the victim should not be the first cell"
    assert all(r["status"] == "pass" for r in doc["results"][:cut])
    for r in doc["results"][cut:]:
        assert r["status"] == "error" and "interrupted" in r["reason"], r
    assert doc["run_info"]["exit_status"] == pytest.ExitCode.INTERRUPTED
    assert sorted(p.name for p in (project.path / "reports").iterdir()) == [
        f"{OS}.json",
        f"{OS}.md",
    ]  # no temporary file left behind


def test_deselected_cells_are_left_out(project: pytest.Pytester) -> None:
    """-k deselects cells; a report must not call them errors (with or without xdist)."""
    for n, slot in (("0", 6), ("2", 7)):
        result = project.runpytest_subprocess(
            *ARGS, ports(slot), "-n", n, "-k", "not specific", "--bindconform-json", f"k{n}.json"
        )
        result.assert_outcomes(passed=2)  # xdist does not count deselected items
        doc = json.loads((project.path / f"k{n}.json").read_text(encoding="utf-8"))
        assert [r["status"] for r in doc["results"]] == ["pass", "pass"], f"-n {n}"


def test_broken_case_file_is_an_error_result(project: pytest.Pytester) -> None:
    project.makefile(".bind.yaml", broken=TINY.replace("kind: measured", "kind: mesured"))
    result = project.runpytest_subprocess(*ARGS, ports(8), "--bindconform-json", "r.json")
    result.assert_outcomes(passed=CELLS, failed=1)
    doc = json.loads((project.path / "r.json").read_text(encoding="utf-8"))
    assert model.problems(doc) == []
    (broken,) = [r for r in doc["results"] if r["id"] == "broken.bind.yaml::case-file-error"]
    assert broken["status"] == "error" and broken["suite"] is None
    assert "broken.bind.yaml:" in broken["reason"] and "mesured" in broken["reason"]
    assert doc["summary"]["status"] == {
        "pass": CELLS,
        "fail": 0,
        "skip": 0,
        "error": 1,
        "ungated": 0,
    }
