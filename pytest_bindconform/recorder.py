"""Controller side of a run (pytest side, like plugin.py): one record per cell gathered
from the reports (made whole again when a worker sent it), the reports written once, the
terminal's summary, --junitxml properties, and the gate check."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from . import cases, gcpolicy, goals, host, oracles, relay, report
from . import state as run_state
from .items import CANDIDATES, RECORD_ATTR, BadCaseFile, CellItem
from .model import Suite


def gate_problem(host_: host.Host, gates: dict[str, str], suites: Iterable[Suite]) -> str:
    """Why the gate for this OS can gate no cell of these suites ('' if it can): it names an
    oracle they define for another OS or release only. A usage error, or CI goes green."""
    gate = gates.get(host_.os, "")
    defined, here = [], set()
    for suite in suites:
        for oid, oracle in suite.oracles.items():
            if oracles.applies(oracle, host_.os, host_.os_version):
                here.add(oid)
            if oid == gate:
                defined.append(oracle)
    if not defined or gate in here:
        return ""
    where = ", ".join(
        sorted({f"{o.os}{f' >= {o.min_version}' if o.min_version else ''}" for o in defined})
    )
    return (
        f"--bindconform-gate {host_.os}={gate}: oracle {gate!r} is for {where}, not this "
        f"{host_.os} {host_.os_version}, so it could gate no cell and every cell would pass "
        f"as ungated. Oracles of the collected suites that apply here: "
        f"{', '.join(sorted(here)) or 'none'}"
    )


def junit_properties(record: dict[str, Any]) -> list[tuple[str, str]]:
    """--junitxml: what a CI dashboard needs of a cell without opening the report."""
    seen = record["observed"]
    failed = next((s for s in seen["steps"] if s["outcome"] != "ok"), None) if seen else None
    props = [
        ("bindconform_profile", record["profile"] or "raw"),
        ("bindconform_status", record["status"]),
        ("bindconform_outcome", seen["outcome"] if seen else "not run"),
        ("bindconform_gate", record["gate"] or ""),
        ("bindconform_verdicts", " ".join(f"{o}={v}" for o, v in record["verdicts"].items())),
    ]
    if failed:
        props.append(("bindconform_failed_call", f"{failed['call']} {failed['socket']}"))
        props.append(
            ("bindconform_errno", f"{failed.get('error') or ''} {failed['errno']}".strip())
        )
    if seen and seen.get("delivery"):
        props.append(("bindconform_receiver", str(seen["delivery"]["receiver"])))
    return props


class Recorder:
    """Controller-side: gathers one record per cell and writes the reports once."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.state = config.stash[run_state.STATE]
        extra = config.stash[CANDIDATES].extra
        self.book = report.Book(config.rootpath, prepare=lambda s: goals.add_candidates(s, extra))
        self.junit: dict[str, list[tuple[str, str]]] = {}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # after -k/-m deselection: a deselected cell is not part of this run
        self.book.expect(
            item.nodeid for item in session.items if isinstance(item, CellItem | BadCaseFile)
        )
        suites = {item.suite.id: item.suite for item in session.items if isinstance(item, CellItem)}
        self._check_gate(suites.values())

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.book.expect(ids)
        if not getattr(self, "_gate_checked", False):
            self._gate_checked = True
            files = dict.fromkeys(i.partition("::")[0] for i in ids if "::" in i)
            loaded = (self.book.suite(f) for f in files if f.endswith(cases.SUFFIX))
            self._check_gate(s for s in loaded if isinstance(s, Suite))

    def _check_gate(self, suites: Iterable[Suite]) -> None:
        problem = gate_problem(self.state.host, self.state.gates, suites)
        if problem:
            raise pytest.UsageError(problem)

    @pytest.hookimpl(tryfirst=True)  # before junitxml reads the teardown report's properties
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties if report.when == "call" else ():
            if name == "bindconform_explore":
                self.explored = value
        record = getattr(report, RECORD_ATTR, None)
        if record is not None:
            if isinstance(record, str):  # from an xdist worker: describe the cell here
                record = self.book.rejoin(report.nodeid, relay.decode(record))
                setattr(report, RECORD_ATTR, record)
            self.book.add(report.nodeid, record)
            gcpolicy.cell_done(self.config)
            self.junit[report.nodeid] = junit_properties(record)
        elif report.when == "call" or report.outcome != "passed":
            self.book.note_outcome(report.nodeid, report.outcome, str(report.longrepr or ""))
        if report.when == "teardown" and report.nodeid in self.junit:
            report.user_properties = [*report.user_properties, *self.junit.pop(report.nodeid)]

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        if self.config.option.collectonly:
            return  # nothing ran: never overwrite a report with a run that did not happen
        if self.book.records:  # an xdist controller holds records but collected no cells
            self.config.stash[gcpolicy.FROZEN] = True
        workers = getattr(self.config.option, "numprocesses", None) or 0
        self.written = self.book.finish(self.state, self.state.outputs, exitstatus, workers)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.config.option.collectonly:
            return
        verbosity = int(self.config.getoption("verbose", 0))  # get_verbosity(): pytest 8+
        lines = self.book.summary_lines(quiet=verbosity < 0)
        explored = getattr(self, "explored", None)
        if explored:  # what the exploration tried and found: most of a run's time
            lines.append(explored["summary"])
            lines += [f"  {line}" for line in explored["found"]]
        if verbosity > 0 and self.book.report:
            lines += skip_reasons(self.book.report["results"])
        if lines:
            terminalreporter.section("bindconform")
            for line in lines:
                terminalreporter.write_line(line)


def skip_reasons(results: list[dict[str, Any]]) -> list[str]:
    """-v: why cells did not run, most frequent first, each with how to enable them."""
    counts: dict[str, int] = {}
    for r in results:
        if r["status"] == "skip":
            first = r["reason"].splitlines()[0] if r["reason"] else "(no reason)"
            counts[first] = counts.get(first, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])
    return ["not run, by reason:"] + [f"  {n:>5} {why}" for why, n in top[:12]] if top else []
