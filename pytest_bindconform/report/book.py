"""Controller-side ledger of records: one per collected cell, written once, atomically."""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import difflib
import os
import uuid
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .. import __version__, atomic, cases, recommend, runner, suitecache
from ..model import Cell, Suite
from ..yamlsrc import CaseFileError
from . import answers, html, markdown, model

BROKEN_FILE = "case-file-error"  # item name plugin.py gives a case file that does not load


def write_atomic(path: Path, text: str) -> None:
    """Temporary file in the same directory, then rename: never a half-written report."""
    if not atomic.write(path, text.encode("utf-8"), mode=0o666 & ~_umask()):
        raise PermissionError(f"{path}: another program keeps it open; the report is not written")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def shown(path: Path, base: Path | None = None) -> str:
    """A path as the user would type it: relative below base (the working directory)."""
    base = base or Path.cwd()
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)


def _is_cell(nodeid: str) -> bool:
    """Only items of case files belong in the report, not ordinary tests of the same run."""
    return nodeid.partition("::")[0].lower().endswith(cases.NEAR_SUFFIXES)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _dist_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def render(report: dict[str, Any], fmt: str, full: str) -> str:
    if fmt == "json":
        return model.dumps(report)
    if fmt == "md":
        return markdown.render(report, full, lead=answers.markdown_lines(report))
    return html.render(report, lead=answers.html_fragment(report))


class Book:
    def __init__(self, rootpath: Path, prepare: Callable[[Suite], object] | None = None):
        self.rootpath = rootpath
        self.prepare = prepare  # what collection does to a loaded suite (run-time candidates)
        self.expected: dict[str, None] = {}  # an ordered set: collection order
        self.records: dict[str, dict[str, Any]] = {}
        self.outcomes: dict[str, tuple[str, str]] = {}
        self.started = _now()
        self.run_id = uuid.uuid4().hex  # in every report of this run: a set is one run's
        self.written: list[Path] = []
        self.report: dict[str, Any] | None = None
        self._suites: dict[str, Suite | str] = {}  # file -> suite, or why it did not load
        self._cells: dict[str, dict[str, tuple[Cell, Suite]] | str] = {}  # by worker's path

    def expect(self, nodeids: Iterable[str]) -> None:
        self.expected.update((n, None) for n in nodeids if _is_cell(n))

    def add(self, nodeid: str, record: dict[str, Any]) -> None:
        self.records[nodeid] = record

    def note_outcome(self, nodeid: str, outcome: str, longrepr: str) -> None:
        if _is_cell(nodeid):
            self.outcomes[nodeid] = (outcome, longrepr)

    def rejoin(self, nodeid: str, travelled: dict[str, Any]) -> dict[str, Any]:
        """A worker's record (runner.travelling, plus the case file's path) made whole again
        from the suite loaded here: descriptions and provenance never cross processes."""
        display, _, name = travelled["id"].partition("::")
        file = travelled["file"]
        if file not in self._cells:
            # one load per case file: the gate check may have loaded it by its display path
            known = self._suites.get(display)
            loaded = known if isinstance(known, Suite) else self._load(Path(file), display)
            self._cells[file] = (
                loaded if isinstance(loaded, str) else {c.name: (c, loaded) for c in loaded.cells}
            )
            self._suites.setdefault(display, loaded)
        cells = self._cells[file]
        found = None if isinstance(cells, str) else cells.get(name)
        if found is None:
            why = cells if isinstance(cells, str) else "the case file has no such cell now"
            return model.orphan_result(
                nodeid,
                "error",
                f"no result: the worker ran it, but here {why} (it changed during the run?)",
            )
        rest = {k: v for k, v in travelled.items() if k != "file"}
        return runner.rejoin(rest, *found)

    # -- building ----------------------------------------------------------
    def suite(self, relpath: str) -> Suite | str:
        """The suite of a case file (loaded once), or the reason it does not load."""
        if relpath not in self._suites:
            self._suites[relpath] = self._load(self.rootpath / relpath, relpath)
        return self._suites[relpath]

    def _load(self, path: Path, display: str) -> Suite | str:
        try:
            suite = suitecache.load(path, display=display)
        except CaseFileError as exc:
            return f"case file does not load on the controller:\n{exc}"
        if self.prepare is not None:
            self.prepare(suite)
        return suite

    def result(self, nodeid: str, state: Any, exitstatus: int) -> dict[str, Any]:
        """The cell's record, or a full error/skip result saying why there is none."""
        if nodeid in self.records:
            return self.records[nodeid]
        outcome, longrepr = self.outcomes.get(nodeid, ("", ""))
        status = "skip" if outcome == "skipped" else "error"
        if status == "skip":
            reason = _skip_reason(longrepr)
        elif longrepr:
            reason = f"no result: {longrepr}"
        else:
            reason = f"{model.NO_RESULT} (pytest exit status {exitstatus})"
        relpath, _, name = nodeid.partition("::")
        if name == BROKEN_FILE:
            return model.orphan_result(nodeid, "error", longrepr or "invalid case file")
        suite = self.suite(relpath)
        if isinstance(suite, str):
            return model.orphan_result(nodeid, status, f"{reason}\n{suite}")
        cell = next((c for c in suite.cells if c.name == name), None)
        if cell is None:
            return model.orphan_result(
                nodeid, status, f"{reason}\n(the case file has no such cell now)"
            )
        gate = state.gates.get(state.host.os, "")
        return model.missing_result(nodeid, cell, suite, state.host, gate, status, reason)

    def results(self, state: Any, exitstatus: int) -> list[dict[str, Any]]:
        order = list(self.expected) + [n for n in self.records if n not in self.expected]
        return [self.result(nodeid, state, exitstatus) for nodeid in order]

    def build(self, state: Any, exitstatus: int, workers: int | None) -> dict[str, Any]:
        results = self.results(state, exitstatus)
        suites: dict[str, dict[str, Any]] = {}
        for result in results:
            loaded = self.suite(result["id"].partition("::")[0]) if result["suite"] else None
            if isinstance(loaded, Suite) and loaded.id not in suites:
                suites[loaded.id] = model.suite_info(loaded)
        run_info = {
            "run_id": self.run_id,
            "host": state.host.to_dict(),
            "plugin_version": __version__,
            "gates": dict(state.gates),
            "gate": state.gates.get(state.host.os),
            "started": self.started,
            "finished": _now(),
            "isolation": state.host.isolation,
            "exit_status": int(exitstatus),
            "python": state.host.python,
            "pytest": _dist_version("pytest"),
            "xdist": _dist_version("pytest-xdist"),
            "workers": workers,
        }
        if state.host.simulated:  # never a conformance result: every output says so
            run_info["simulated"] = state.host.simulated
        return model.build(run_info, suites, results)

    def finish(
        self, state: Any, outputs: dict[str, str], exitstatus: int, workers: int | None = None
    ) -> list[Path]:
        targets = {fmt: self._target(path, state.host.os) for fmt, path in outputs.items() if path}
        if not targets:  # the terminal's summary only: no report document to build
            self.report = terminal_view(self.results(state, exitstatus), state)
            return self.written
        self.report = self.build(state, exitstatus, workers)
        full = targets.get("html") or targets.get("json")
        where = shown(full, self.rootpath) if full else ""
        texts = {fmt: render(self.report, fmt, where) for fmt in targets}  # before any write
        for fmt, path in targets.items():
            atomic.sweep(path.parent, path.name)  # what a killed run left
            write_atomic(path, texts[fmt])
            self.written.append(path)
        return self.written

    def _target(self, path: str, os_name: str) -> Path:
        target = Path(path.replace("{os}", os_name))
        return target if target.is_absolute() else self.rootpath / target

    # -- terminal ------------------------------------------------------------
    def summary_lines(self, quiet: bool) -> list[str]:
        if self.report is None or not (self.report["results"] or self.written):
            return []
        summary = self.report["summary"]
        counts = ", ".join(f"{n} {s}" for s, n in summary["status"].items() if n)
        gate = self.report["run_info"]["gate"]
        lines = answers.summary_lines(self.report, quiet)
        twins = sorted({r["gate"] for r in self.report["results"] if r["gate"]} - {gate})
        also = f"; for this host's settings: {', '.join(twins)}" if twins else ""
        lines.append(f"{summary['cells']} cells: {counts or 'none'} (gate {gate}{also})")
        skipped = summary["status"]["skip"]
        if self.report["run_info"].get("simulated"):
            lines.insert(0, f"SIMULATED ({self.report['run_info']['simulated']}): not a result")
        for oid, verdicts in [] if quiet else summary["oracles"].items():
            mark = " (gate)" if oid == gate else ""
            apart = skipped - verdicts["not-run"]  # skipped cells it has no expectation for
            why = f" (+{apart} skipped cells it expects nothing of)" if apart > 0 else ""
            lines.append(
                f"  {oid}{mark}: {verdicts['agree']} agree, {verdicts['disagree']} disagree, "
                f"{verdicts['no-claim']} no claim, {verdicts['not-run']} not run{why}"
            )
        known = {o for r in self.report["results"] for o in r.get("expected", {})}
        if gate and known and gate not in known:
            close = difflib.get_close_matches(gate, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            lines.append(
                f"  warning: gate oracle {gate!r} appears in no collected suite, so no cell is "
                f"gated{hint} (--bindconform-gate OS=ORACLE)"
            )
        others = {
            o: n for o, n in summary.get("resemblance", {}).items() if o not in summary["oracles"]
        }
        if others and not quiet:
            follows = ", ".join(f"{o} {model.percent(n)}" for o, n in list(others.items())[:4])
            lines.append(f"  closest other sources (findings): {follows}")
        if self.written:
            lines.append("reports: " + ", ".join(p.resolve().as_uri() for p in self.written))
        return lines


def terminal_view(results: list[dict[str, Any]], state: Any) -> dict[str, Any]:
    """What summary_lines reads of a report, from the records as they are (no document)."""
    view: dict[str, Any] = {
        "run_info": {"gate": state.gates.get(state.host.os)},
        "results": results,
        "summary": model.summarize(results),
    }
    if state.host.simulated:
        view["run_info"]["simulated"] = state.host.simulated
    recommendations = recommend.build(results, state.host.os)
    return {**view, "recommendations": recommendations} if recommendations else view


def _skip_reason(longrepr: str) -> str:
    """pytest's skip longrepr is a (file, line, 'Skipped: why') tuple, seen here as its str()."""
    with contextlib.suppress(ValueError, SyntaxError, MemoryError, RecursionError):
        value = ast.literal_eval(longrepr)
        if isinstance(value, tuple) and len(value) == 3:
            return str(value[2])
    return longrepr
