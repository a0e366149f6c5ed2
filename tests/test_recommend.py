"""Recommendations: from a real run of the shipped goal suites (with and without xdist),
checked against the library's own measured Linux cells; trade-offs; merged reports;
library profiles as candidates."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_bindconform import cases, foretold, goals, recommend
from pytest_bindconform.report import answers, markdown, merge, model

ROOT = Path(__file__).resolve().parent.parent
ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
LINUX = sys.platform.startswith("linux")
OPTIONS = {"none": (), "SO_REUSEADDR": ("SO_REUSEADDR",), "SO_REUSEPORT": ("SO_REUSEPORT",)}


def measured(file: str, pick: Any) -> dict[str, Any]:
    """The library's measured Linux expectation of the cells pick() selects, by option set."""
    suite = cases.load_suite(ROOT / "cases" / file)
    out = {}
    for cell in suite.cells:
        name = pick(cell)
        if name is not None:
            out[name] = cell.expectation("linux")
    return out


def same_pair(kind: str) -> Any:
    def pick(cell: Any) -> str | None:
        a, b = cell.socket("first"), cell.socket("second")
        if a.address == b.address == "127.0.0.1" and a.options == b.options:
            return next((n for n, o in OPTIONS.items() if o == a.options), None)
        return None

    return pick


@pytest.fixture(scope="module")
def linux_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """One real run of every goal suite, without and with xdist (module-scoped: slow)."""
    import subprocess

    out = {}
    base = tmp_path_factory.mktemp("goals")
    (base / "cases").mkdir()
    for path in (ROOT / "cases").glob("goal-*.bind.yaml"):
        shutil.copy(path, base / "cases" / path.name)
    for label, workers in (("no-xdist", []), ("xdist", ["-n", "2"])):
        target = base / f"{label}.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                *ARGS,
                *workers,
                "-q",
                "cases",
                "--bindconform-json",
                str(target),
                "--bindconform-md",
                str(base / f"{label}.md"),
            ],
            cwd=base,
            check=True,
            capture_output=True,
        )
        out[label] = json.loads(target.read_text())
        out[label]["_md"] = (base / f"{label}.md").read_text()
    return out


def row(report: dict[str, Any], goal: str, transport: str, candidate: str) -> dict[str, Any]:
    return next(
        r
        for r in report["recommendations"]["goals"]
        if (r["goal"], r["transport"], r["candidate_id"]) == (goal, transport, candidate)
    )


@pytest.mark.skipif(not LINUX, reason="checks Linux's measured cells")
@pytest.mark.parametrize("label", ["no-xdist", "xdist"])
def test_linux_recommendations_agree_with_the_librarys_measured_cells(
    linux_runs: dict[str, dict[str, Any]], label: str
) -> None:
    report = linux_runs[label]
    assert model.problems({k: v for k, v in report.items() if k != "_md"}) == []
    listening = measured("posix-pairwise-tcp-listening.bind.yaml", same_pair("tcp"))
    udp = measured("posix-pairwise-udp.bind.yaml", same_pair("udp"))
    restart = measured(
        "lifecycle-restart.bind.yaml",
        lambda c: (
            {0: "none", 1: "SO_REUSEADDR"}.get(c.position.row)
            if c.position.row == c.position.column
            and c.profile == "reuseaddr"
            and c.variant.endswith("tcp4-time-wait")
            else None
        ),
    )
    sharing = measured(
        "lifecycle-sharing.bind.yaml",
        lambda c: (
            {"reuseaddr": "SO_REUSEADDR", "reuseport": "SO_REUSEPORT"}[c.profile]
            if c.key == "shared-udp-port"
            else None
        ),
    )
    for name in OPTIONS:
        # exclusive: a same-option second listener on my address is refused (measured INUSE)
        assert row(report, "exclusive", "tcp", name)["meets"] is (listening[name].outcome != "ok")
        assert row(report, "exclusive", "udp", name)["meets"] is (udp[name].outcome != "ok")
    for name, exp in restart.items():
        assert row(report, "restart", "tcp", name)["meets"] is (exp.outcome == "ok")
    for name, exp in sharing.items():  # UDP sharing: who receives unicast
        assert row(report, "share", "udp", name)["meets"] is (exp.receiver == "both")
    for name in ("SO_EXCLUSIVEADDRUSE", "SO_REUSEPORT_LB"):  # not on Linux: unknown, never met
        assert row(report, "exclusive", "tcp", name)["meets"] is None
    tcp, udp_rec = report["recommendations"]["recommended"]
    assert (tcp["transport"], tcp["candidate"], tcp["meets"]) == ("tcp", "SO_REUSEADDR", True)
    assert (udp_rec["transport"], udp_rec["candidate"]) == ("udp", "no option")
    assert tcp["wants"] == ["exclusive", "restart", "dual-stack"]
    share = row(report, "share", "tcp", "SO_REUSEPORT")
    assert share["meets"] is True and 0.34 < share["fairness"] <= 1.0
    assert row(report, "multicast", "udp", "SO_REUSEADDR")["meets"] is True
    assert row(report, "multicast", "udp", "none")["meets"] is False
    md = report["_md"]
    assert md.index("## Recommendations") < md.index("## Per oracle")
    assert "**TCP: set SO_REUSEADDR" in md


def goal_row(goal: str, cid: str, meets: bool | None, transport: str = "tcp") -> dict[str, Any]:
    options = [] if cid == "none" else cid.split(".")[0].split("+")
    v6 = {"dual": False, "v6only": True}.get(cid.split(".")[-1]) if "." in cid else None
    return {
        "goal": goal,
        "transport": transport,
        "candidate": cid,
        "candidate_id": cid,
        "kind": "options",
        "options": options,
        "v6only": v6,
        "meets": meets,
        "cells": [f"c::{goal}[{cid}]"],
        "why": f"{cid} {goal} why",
        "basis": "measured",
        "not_run": [],
    }


def test_the_trade_off_is_said_where_no_candidate_meets_all() -> None:
    rows = [
        goal_row("exclusive", "none", True),
        goal_row("restart", "none", False),
        goal_row("dual-stack", "none.dual", True),
        goal_row("exclusive", "SO_REUSEPORT", False),
        goal_row("restart", "SO_REUSEPORT", True),
        goal_row("dual-stack", "SO_REUSEPORT.dual", True),
        goal_row("exclusive", "SO_EXCLUSIVEADDRUSE", None),
    ]
    (rec,) = recommend.recommend(rows)
    assert rec["candidate"] is None and rec["meets"] is False
    assert (
        "none meets exclusive, dual-stack but not restart (none restart why; c::restart[none])"
        in rec["trade_off"]
    )
    assert "SO_REUSEPORT meets restart, dual-stack but not exclusive" in rec["trade_off"]
    rows.append(goal_row("restart", "SO_EXCLUSIVEADDRUSE", True))
    rows.append(goal_row("dual-stack", "SO_EXCLUSIVEADDRUSE.v6only", True))
    (rec,) = recommend.recommend(rows)
    assert rec["candidate"] is None, "an unknown exclusive never counts as met"


def test_a_candidate_is_unknown_when_a_situation_could_not_run_but_false_wins() -> None:
    def cell(
        met: bool | None, where_possible: bool = False, applies: bool = True
    ) -> dict[str, Any]:
        return {
            "id": f"x{met}{where_possible}{applies}",
            "goal": {
                "met": met,
                "where_possible": where_possible,
                "applies": applies,
                "design": None,
            },
        }

    assert recommend.verdict([cell(True), cell(None)])[0] is None
    assert recommend.verdict([cell(True), cell(None, where_possible=True)])[0] is True
    assert recommend.verdict([cell(False), cell(None)])[0] is False
    assert recommend.verdict([cell(True), cell(False, applies=False)])[0] is True
    assert recommend.verdict([cell(None, where_possible=True)])[0] is None


@pytest.mark.skipif(not LINUX, reason="uses the Linux run")
def test_merged_report_leads_with_goal_by_os(
    linux_runs: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    host = {k: v for k, v in linux_runs["no-xdist"].items() if k != "_md"}
    other = json.loads(json.dumps(host))  # a second host: same cells, another OS label
    other["run_info"]["host"].update(os="freebsd", os_release="FreeBSD 14.1 (simulated)")
    other["recommendations"]["os"] = "freebsd"
    paths = []
    for name, doc in (("linux", host), ("freebsd", other)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(doc))
    merged = merge.merge_files(paths)
    assert model.problems(merged) == []
    lead = merged["recommendations"]["table"]
    assert {(t["os"], t["transport"], t["candidate"], t["basis"]) for t in lead} >= {
        ("linux", "tcp", "SO_REUSEADDR", "measured"),
        ("freebsd", "tcp", "SO_REUSEADDR", "measured"),
    }
    md = markdown.render_merged(merged, lead=answers.merged_markdown_lines(merged))
    assert md.index("## Recommended setting per OS") < md.index("| host | gate")
    assert (
        "| TCP: exclusive + restart + dual-stack "
        "| SO_REUSEADDR; one [::] socket with V6ONLY off [measured] |" in md
    )


LIBRARIES = """
import socket, sys, types
from dataclasses import dataclass

@dataclass(frozen=True)
class LibraryProfile:
    id: str
    name: str
    call: str
    version: str
    transport: str
    options: dict
    v6only: dict
    source: str
    basis: str = "described"

def profiles():
    return [
        LibraryProfile("socket.create_server", "CPython socket", "socket.create_server(addr)",
                       "3.11", "tcp",
                       {"linux": ("SO_REUSEADDR",)}, {"linux": None},
                       "https://github.com/python/cpython/blob/3.11/Lib/socket.py#L905"),
        LibraryProfile("dotnet.reuseaddress", ".NET", "Socket.ReuseAddress = true", "8.0", "tcp",
                       {"linux": ("SO_REUSEADDR", "SO_REUSEPORT")}, {},
                       "https://github.com/dotnet/runtime/blob/v8.0.0/src/native/libs/System.Native/pal_networking.c#L2270"),
        LibraryProfile("windows.only", "W", "w()", "1", "tcp", {"windows": ("SO_REUSEADDR",)}, {}, "https://example.org/w"),
    ]

def factory(profile_id):
    if profile_id != "socket.create_server":
        return None
    def make(family, type, address, port):
        fam = socket.AF_INET6 if family == "inet6" else socket.AF_INET
        return socket.create_server((address, port), family=fam)
    return make

module = types.ModuleType("pytest_bindconform.libraries")
module.LibraryProfile, module.profiles, module.factory = LibraryProfile, profiles, factory
sys.modules["pytest_bindconform.libraries"] = module
"""


@pytest.mark.skipif(not LINUX, reason="the verdicts are Linux's")
def test_library_profiles_are_candidates_called_or_described(pytester: pytest.Pytester) -> None:
    (pytester.path / "cases").mkdir()
    shutil.copy(ROOT / "cases" / "goal-exclusive-tcp.bind.yaml", pytester.path / "cases")
    pytester.makeconftest(LIBRARIES)  # stands in for pytest_bindconform.libraries
    out, md, page = (pytester.path / f"r.{x}" for x in ("json", "md", "html"))
    result = pytester.runpytest_subprocess(
        *ARGS,
        "cases",
        "--bindconform-json",
        str(out),
        "--bindconform-md",
        str(md),
        "--bindconform-html",
        str(page),
    )
    assert result.ret == 0, result.stdout.str()
    report = json.loads(out.read_text())
    assert model.problems(report) == []
    rows = {r["candidate"]: r for r in report["recommendations"]["goals"]}
    called = rows["socket.create_server(addr)"]
    assert called["library"]["basis"] == "called" and called["meets"] is True
    described = rows["Socket.ReuseAddress = true"]
    assert described["library"]["basis"] == "described"
    # it sets what a standard candidate sets: judged by that candidate's cells, none of its own
    assert described["judged_by"] == "SO_REUSEADDR+SO_REUSEPORT"
    assert not any("dotnet" in r["id"] for r in report["results"])
    assert described["options"] == ["SO_REUSEADDR", "SO_REUSEPORT"] and described["meets"] is False
    assert "w()" not in rows  # says nothing of Linux: no candidate here
    text = md.read_text()
    assert "### Libraries (their defaults) × goal" in text
    assert "| Socket.ReuseAddress = true | ✗ misses |" in text
    assert "Libraries (their defaults) × goal" in page.read_text()
    made = [
        r for r in report["results"] if "lib.socket.create_server" in r["name"] and r["observed"]
    ]
    assert made and made[0]["observed"]["steps"][0]["set"]["options"] == ["SO_REUSEADDR"]


def test_summary_lines_lead_with_the_recommendation() -> None:
    report = {
        "recommendations": {
            "os": "linux",
            "goals": [],
            "recommended": [{"text": "TCP: set SO_REUSEADDR — meets exclusive", "trade_off": ""}],
        }
    }
    assert answers.summary_lines(report, quiet=False) == [
        "recommendations (linux, measured here):",
        "  TCP: set SO_REUSEADDR — meets exclusive",
    ]


# -- documented and derived rows: OSes of a merged report that no host measured -------------

GOAL_FILES = ["cases/goal-exclusive-tcp.bind.yaml", "cases/goal-share-tcp.bind.yaml"]


def said_row(said: dict[str, Any], os_name: str, goal: str, cid: str) -> dict[str, Any]:
    return next(r for r in said[os_name]["goals"] if (r["goal"], r["candidate_id"]) == (goal, cid))


def test_documented_and_derived_rows_come_from_each_oss_sources() -> None:
    said = foretold.foretell(GOAL_FILES)
    assert {os: s["basis"] for os, s in said.items()} == {
        "linux": "derived",
        "freebsd": "derived",
        "darwin": "derived",
        "windows": "documented",
    }
    assert "learn.microsoft.com" in said["windows"]["provenance"]
    assert "in_pcb.c" in said["freebsd"]["provenance"]
    # Windows, table C: a default listener on the wildcard lets a default socket take a
    # specific address under it, and that one receives (Wine: specific beats wildcard)
    plain = said_row(said, "windows", "exclusive", "none")
    assert plain["meets"] is False and plain["basis"] == "documented"
    assert plain["cells"][0] == (
        "cases/goal-exclusive-tcp.bind.yaml::rival-on-specific-under-my-wildcard[none-vs-none-tcp4]"
    )
    # Linux: a second plain listener on my address is refused; SO_REUSEPORT spreads
    assert said_row(said, "linux", "exclusive", "none")["meets"] is True
    assert said_row(said, "linux", "share", "SO_REUSEPORT")["meets"] is True
    # an option the OS lacks is no setting there; a model without a claim is unknown
    assert said_row(said, "windows", "share", "SO_REUSEPORT")["meets"] is None
    freebsd = said_row(said, "freebsd", "share", "SO_REUSEPORT")
    assert freebsd["meets"] is None and "no source says" in freebsd["why"]
    for s in said.values():  # never a pass made of unknowns
        for r in s["goals"]:
            assert r["meets"] is not True or "no source" not in r["why"], r


def test_an_unknown_step_is_never_a_pass() -> None:
    (path, suite), *_ = foretold.goal_suites(["cases/goal-exclusive-tcp.bind.yaml"])
    cell = suite.cells[0]
    gc = goals.of(suite, cell)
    assert gc is not None
    assert foretold.judge(gc, cell, ["ok", "ok", "ok", "unknown"], "unknown")[0] is None
    assert foretold.judge(gc, cell, ["ok", "ok", "ok", "ok"], "unknown")[0] is None
    assert foretold.judge(gc, cell, ["ok", "ok", "ok", "ok"], "rival")[0] is False
    assert foretold.judge(gc, cell, ["ok", "ok", "INUSE", "INUSE"], "unknown")[0] is True


def test_a_measured_row_wins_and_a_disagreement_is_a_finding() -> None:
    said = foretold.foretell(GOAL_FILES)
    windows_host = {
        "os": "windows",
        "basis": "measured",
        "goals": [goal_row("exclusive", "none", True)],  # Windows measured otherwise
        "recommended": recommend.recommend([goal_row("exclusive", "none", True)]),
    }
    lead = recommend.merged([("win-host", windows_host)], said)
    assert lead is not None
    assert {t["basis"] for t in lead["table"] if t["os"] == "windows"} == {"measured"}
    assert {t["os"] for t in lead["table"] if t["basis"] != "measured"} == {
        "linux",
        "freebsd",
        "darwin",
    }
    (finding,) = [f for f in lead["findings"] if f["goal"] == "exclusive"]
    assert finding["os"] == "windows" and finding["host"] == "win-host"
    assert (finding["measured"], finding["said"], finding["basis"]) == (True, False, "documented")
    assert "rival-on-specific-under-my-wildcard" in finding["said_cells"][0]
    # an unknown on either side disagrees with nothing
    unknown = {**windows_host, "goals": [goal_row("share", "SO_REUSEPORT", True)]}
    assert recommend.merged([("win-host", unknown)], said)["findings"] == []  # type: ignore[index]


def test_merged_report_shows_documented_and_derived_columns(tmp_path: Path) -> None:
    said = foretold.foretell(GOAL_FILES)
    recs = {
        "os": "linux",
        "basis": "measured",
        "goals": [goal_row("exclusive", "none", False)],  # Linux measured otherwise
        "recommended": recommend.recommend([goal_row("exclusive", "none", False)]),
    }
    merged = {
        "hosts": [{"key": "lin", "label": "linux 6.8 py3.11"}],
        "recommendations": recommend.merged([("lin", recs)], said),
    }
    md = "\n".join(answers.merged_markdown_lines(merged))
    html = answers.merged_html_fragment(merged)
    for text in (md, html):
        assert "windows: documented, no host measured it" in text
        assert "freebsd: derived, no host measured it" in text
        assert "linux: derived" not in text  # measured: its row wins
        assert "Measured here, said otherwise by documents or models (1)" in text
        assert "linux 6.8 py3.11" in text
    assert "[documented]" in md and "[derived]" in md
    assert "rival-on-specific-under-my-wildcard" in html  # deciding cells, on hover
