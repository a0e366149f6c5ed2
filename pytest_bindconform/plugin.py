"""pytest hooks only: collect *.bind.yaml files, run cells, hand records to the report.

Everything with meaning lives in the engine modules; this file adapts them to
pytest and pytest-xdist (host computed once on the controller, records carried
on test reports as builtins, reports written once by the controller).
"""

from __future__ import annotations

import gc
import os
import random
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from . import cases, goals, host, isolate, oracles, ports, report, runner, suitecache
from . import state as run_state
from .model import Cell, Suite
from .report import answers
from .yamlsrc import CaseFileError

RECORD_ATTR = "bindconform"
HOST_KEY = "bindconform_host"
EXPLORE_KEY = "bindconform_explore"
CANDIDATES = pytest.StashKey["answers.RunCandidates"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bindconform", "bind() conformance cases (pytest-bindconform)")
    group.addoption(
        "--bindconform-gate",
        action="append",
        default=[],
        metavar="OS=ORACLE",
        help="oracle whose expectations decide pass/fail on OS (windows, linux, darwin, "
        "freebsd); repeatable. Default: windows=ms-using-2003-same-user, linux=linux, "
        "darwin=darwin, freebsd=freebsd. ini: bindconform_gate",
    )
    group.addoption(
        "--bindconform-ports",
        default=None,
        metavar="LOW-HIGH",
        help="port range the cells may use, split between xdist workers; default: "
        "20000-29999 or a range just below the OS's ephemeral ports. ini: bindconform_ports",
    )
    for fmt in ("json", "md", "html"):
        group.addoption(
            f"--bindconform-{fmt}",
            default=None,
            metavar="PATH",
            help=f"write the {fmt.upper()} conformance report to PATH "
            f"(OS name substituted for {{os}}). ini: bindconform_{fmt}",
        )
    group.addoption(
        "--bindconform-isolate",
        choices=("host", "netns"),
        default=None,
        help="netns (Linux): run every cell inside a private network namespace made for this "
        "run, with extra loopback addresses; falls back to the host, saying why, where "
        "namespaces are not permitted. Default: host. ini: bindconform_isolate",
    )
    group.addoption(
        "--bindconform-explore",
        type=int,
        default=None,
        metavar="N",
        help="also explore N random socket sequences with Hypothesis against this OS's model; "
        "shrunk divergences are written as ready-to-commit cases under "
        "reports/counterexamples/. ini: bindconform_explore",
    )
    group.addoption(
        "--bindconform-explore-seed",
        type=int,
        default=None,
        metavar="SEED",
        help="Hypothesis seed for --bindconform-explore (shown in the header); with CI=true "
        "the exploration is derandomised unless a seed is given",
    )
    group.addoption(
        "--bindconform-server",
        action="append",
        default=[],
        metavar="NAME=module:callable",
        help="your server's listener as a goal candidate: callable(family, type, address, port) "
        "returns the bound socket your code makes; repeatable. ini: bindconform_server",
    )
    group.addoption(
        "--bindconform-require",
        default=None,
        metavar="GOALS",
        help="fail the run when a declared server misses one of these goals (space- or "
        "comma-separated, e.g. 'exclusive restart'). ini: bindconform_require",
    )
    parser.addini("bindconform_server", "NAME=module:callable servers", type="linelist", default=[])
    parser.addini("bindconform_require", "goals a declared server must meet", default="")
    parser.addini("bindconform_gate", "OS=ORACLE gate entries", type="linelist", default=[])
    parser.addini("bindconform_explore", "examples for the Hypothesis exploration", default="0")
    parser.addini("bindconform_isolate", "host or netns", default="host")
    parser.addini("bindconform_ports", "port range LOW-HIGH for cells", default="")
    parser.addini(
        "bindconform_cases",
        "directories (relative to rootdir) whose *.bind.yaml files are collected",
        type="paths",
        default=[],
    )
    for fmt in ("json", "md", "html"):
        parser.addini(f"bindconform_{fmt}", f"path of the {fmt.upper()} report", default="")


def _setting(config: pytest.Config, name: str) -> Any:
    value = config.getoption(f"bindconform_{name}")
    return value if value not in (None, []) else config.getini(f"bindconform_{name}")


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in (
        ("bindconform", "a bind() conformance cell from a *.bind.yaml file"),
        ("inet", "cell uses an IPv4 socket"),
        ("inet6", "cell uses an IPv6 socket"),
        ("stream", "cell uses a TCP (SOCK_STREAM) socket"),
        ("dgram", "cell uses a UDP (SOCK_DGRAM) socket"),
        ("so_reuseaddr", "cell sets SO_REUSEADDR on this host"),
        ("so_reuseport", "cell sets SO_REUSEPORT on this host"),
        ("so_reuseport_lb", "cell sets SO_REUSEPORT_LB on this host"),
        ("so_exclusiveaddruse", "cell sets SO_EXCLUSIVEADDRUSE on this host"),
        ("reuse", "cell uses the portable 'reuse' option role"),
        ("exclusive", "cell uses the portable 'exclusive' option role"),
    ):
        config.addinivalue_line("markers", f"{name}: {doc}")
    try:
        gates = oracles.parse_gates(_setting(config, "gate"))
        port_text = _setting(config, "ports")
        port_range = ports.parse_range(port_text) if port_text else None
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    workerinput = getattr(config, "workerinput", None)
    if workerinput and HOST_KEY in workerinput:
        fingerprint = host.Host.from_dict(workerinput[HOST_KEY])
    else:
        collect_only = bool(config.getoption("collectonly", False))
        fingerprint = host.fingerprint(_isolate(config), probe=not collect_only)
    state = run_state.RunState(fingerprint, gates, port_range, _worker_index(config))
    state.explore = _explore_settings(config, workerinput)
    config.stash[run_state.STATE] = state
    try:
        config.stash[CANDIDATES] = answers.run_candidates(
            _setting(config, "server"), _setting(config, "require"), fingerprint.os
        )
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if workerinput is None:
        state.outputs = {fmt: _setting(config, fmt) for fmt in ("json", "md", "html")}
        config.pluginmanager.register(Recorder(config), "bindconform-recorder")


def _isolate(config: pytest.Config) -> str:
    """Enter the private namespace now, before xdist starts workers that inherit it."""
    mode = _setting(config, "isolate") or "host"
    if mode not in ("host", "netns"):
        raise pytest.UsageError(f"bindconform_isolate: {mode!r} is not one of host, netns")
    if mode == "host":
        return "host"
    try:
        isolate.enter_netns()
    except isolate.IsolationUnavailable as exc:
        config.issue_config_time_warning(
            pytest.PytestWarning(
                f"bindconform: netns isolation unavailable, running on the host: {exc}"
            ),
            stacklevel=2,
        )
        return f"host (netns unavailable: {exc})"
    return "netns"


def _explore_settings(config: pytest.Config, workerinput: Any) -> tuple[int, int | None, bool]:
    """(examples, seed, derandomize), decided once on the controller."""
    if workerinput and EXPLORE_KEY in workerinput:
        examples, seed, derandomize = workerinput[EXPLORE_KEY]
        return int(examples), seed, bool(derandomize)
    raw = config.getoption("bindconform_explore")
    try:
        examples = int(raw if raw is not None else config.getini("bindconform_explore") or 0)
    except ValueError:
        raise pytest.UsageError("bindconform_explore must be a whole number") from None
    seed = config.getoption("bindconform_explore_seed")
    derandomize = seed is None and os.environ.get("CI", "").lower() in ("1", "true", "yes")
    if seed is None and not derandomize:
        seed = random.SystemRandom().getrandbits(32)
    return examples, seed, derandomize


def _worker_index(config: pytest.Config) -> tuple[int, int]:
    workerinput = getattr(config, "workerinput", None)
    if not workerinput:
        return 0, 1
    wid = str(workerinput.get("workerid", "gw0"))
    count = int(workerinput.get("workercount", os.environ.get("PYTEST_XDIST_WORKER_COUNT", 1)))
    return int(wid.removeprefix("gw") or 0), count


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: give workers the host fingerprint computed once here."""
    state = node.config.stash[run_state.STATE]
    node.workerinput[HOST_KEY] = state.host.to_dict()
    node.workerinput[EXPLORE_KEY] = list(state.explore)


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[run_state.STATE]
    gate = state.gates.get(state.host.os, "-")
    lines = [f"{state.host.header()}, gate {state.host.os}={gate}"]
    examples, seed, derandomize = state.explore
    if examples:
        how = (
            "derandomised (CI)"
            if derandomize
            else f"seed {seed} (rerun: --bindconform-explore-seed {seed})"
        )
        lines.append(f"bindconform explore: {examples} examples, {how}")
    return lines


def pytest_collection_modifyitems(session: pytest.Session, items: list[pytest.Item]) -> None:
    if session.config.stash[run_state.STATE].explore[0] > 0:
        items.append(ExploreItem.from_parent(session, name="bindconform-explore"))


def pytest_collection_finish(session: pytest.Session) -> None:
    # thousands of immutable cells live until the end: keep the cyclic GC from rescanning them
    gc.freeze()


def _under_roots(config: pytest.Config, file_path: Path) -> bool:
    roots = config.getini("bindconform_cases")
    if not roots:
        return True
    return any(file_path.is_relative_to(root) for root in roots)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> CaseFile | None:
    if file_path.name.endswith(cases.SUFFIX) and _under_roots(parent.config, file_path):
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        try:  # '/' on every OS: record ids must match across hosts for the merge
            display = Path(os.path.relpath(self.path, self.config.rootpath)).as_posix()
        except ValueError:  # another drive than the rootdir (Windows)
            display = self.path.as_posix()
        try:
            suite = suitecache.load(self.path, display=display)
        except CaseFileError as exc:
            yield BadCaseFile.from_parent(self, name="case-file-error", error=exc)
            return
        clash = self.config.stash[run_state.STATE].claim_suite(suite.id, display, suite.cells)
        if clash:
            yield BadCaseFile.from_parent(self, name="case-file-error", error=clash)
            return
        goals.add_candidates(suite, self.config.stash[CANDIDATES].extra)
        for cell in suite.cells:
            yield CellItem.from_parent(self, name=cell.name, cell=cell, suite=suite)


class CaseFileProblem(Exception):
    pass


class BadCaseFile(pytest.Item):
    """Stands in for a broken case file so the run fails loudly and the rest still run."""

    def __init__(self, *, error: CaseFileError, **kwargs: Any):
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise CaseFileProblem(str(self.error))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFileProblem):
            return f"invalid case file:\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        first = self.error.errors[0]
        return self.path, first.line - 1, f"{first.file}: invalid case file"


class ConformanceFailure(Exception):
    pass


class InterferenceError(Exception):
    pass


@cache
def _mark(name: str) -> pytest.MarkDecorator:
    """One decorator per marker name: thousands of cells share a handful of markers."""
    return getattr(pytest.mark, name)  # type: ignore[no-any-return]


class CellItem(pytest.Item):
    def __init__(self, *, cell: Cell, suite: Suite, **kwargs: Any):
        super().__init__(**kwargs)
        self.cell = cell
        self.suite = suite
        state = self.config.stash[run_state.STATE]
        for name in ("bindconform", *run_state.markers(cell, suite, state.host)):
            self.add_marker(_mark(name))
        self.user_properties.append(("bindconform_profile", cell.profile or "raw"))

    def runtest(self) -> None:
        state = self.config.stash[run_state.STATE]
        record = runner.execute(self.cell, self.suite, state.context())
        self.bindconform_record = record
        if record["status"] == "skip":
            pytest.skip(record["reason"])
        required = self.config.stash[CANDIDATES].missed_requirement(record)
        if required:
            record.update(status="fail", reason=required)
            raise ConformanceFailure(required)
        if record["status"] == "ungated" and not self._open_question(state, record):
            pytest.skip(f"ungated: {record['reason']}")  # a gate this suite does not know
        if record["status"] == "ungated":  # an open question: answered, not skipped
            self.add_report_section("call", "bindconform", answers.terminal_text(record))
        if record["status"] == "error":
            raise InterferenceError(record["reason"])
        if record["status"] == "fail":
            raise ConformanceFailure(run_state.explain(record))

    def _open_question(self, state: run_state.RunState, record: dict[str, Any]) -> bool:
        """The gate makes no claim here, or no oracle for this OS does: what happened is the
        answer. A gate the suite does not know, where another oracle claims, still skips."""
        gate = state.gates.get(state.host.os, "")
        return gate in self.suite.oracles or all(
            v == oracles.NO_CLAIM for v in record["verdicts"].values()
        )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure | InterferenceError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.cell.line - 1, f"{self.suite.id}: {self.cell.name}"


class ExploreItem(pytest.Item):
    """Hypothesis hunts for socket sequences where this host and its OS's model disagree."""

    def runtest(self) -> None:
        from . import explore

        state = self.config.stash[run_state.STATE]
        examples, seed, derandomize = state.explore
        result = explore.run(
            state.host,
            examples,
            seed,
            derandomize,
            out_dir=self.config.rootpath / "reports" / "counterexamples",
            ports=state.context().ports.ports,
            say=None,
        )
        self.user_properties.append(
            (
                "bindconform_explore",
                {
                    "examples": result.examples,
                    "seconds": round(result.seconds, 3),
                    "seed": result.seed,
                    "divergences": [str(p) for p in result.divergences],
                },
            )
        )
        if result.divergences or result.unreproduced:
            lines = [
                f"{len(result.divergences)} divergence(s) between this host and the "
                f"{state.host.os} model (seed {result.seed}); ready-to-commit cases:"
            ]
            lines += [f"  {path}" for path in result.divergences]
            lines += [f"  {line}" for line in result.found]
            lines += [f"  not reproduced on rerun: {line}" for line in result.unreproduced]
            raise ExploreDivergence("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ExploreDivergence):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int, str]:
        return "bindconform-explore", 0, "bindconform: Hypothesis exploration"


class ExploreDivergence(Exception):
    pass


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report_ = yield
    record = getattr(item, "bindconform_record", None)
    if record is not None and call.when == "call":
        setattr(report_, RECORD_ATTR, record)  # builtins only: crosses xdist as is
    if isinstance(item, CellItem) and report_.skipped and isinstance(report_.longrepr, tuple):
        # point -rs at the cell's line in the case file, not at this plugin
        report_.longrepr = (str(item.path), item.cell.line, report_.longrepr[2])
    return report_


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    """A cell that could not be judged (interference, environment) is an error, not a failure."""
    record = getattr(report, RECORD_ATTR, None)
    if report.when == "call" and report.failed and record and record.get("status") == "error":
        return "error", "E", "ERROR"
    if report.when == "call" and report.passed and record and record.get("status") == "ungated":
        return "passed", "o", answers.status_word(record)
    return None


class Recorder:
    """Controller-side: gathers one record per cell and writes the reports once."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.state = config.stash[run_state.STATE]
        self.book = report.Book(config.rootpath)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # after -k/-m deselection: a deselected cell is not part of this run
        self.book.expect(
            item.nodeid for item in session.items if isinstance(item, CellItem | BadCaseFile)
        )

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.book.expect(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, RECORD_ATTR, None)
        if record is not None:
            self.book.add(report.nodeid, record)
        elif report.when == "call" or report.outcome != "passed":
            self.book.note_outcome(report.nodeid, report.outcome, str(report.longrepr or ""))

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        if self.config.option.collectonly:
            return  # nothing ran: never overwrite a report with a run that did not happen
        workers = getattr(self.config.option, "numprocesses", None) or 0
        self.written = self.book.finish(self.state, self.state.outputs, exitstatus, workers)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.config.option.collectonly:
            return
        lines = self.book.summary_lines(quiet=self.config.get_verbosity() < 0)
        if lines:
            terminalreporter.section("bindconform")
            for line in lines:
                terminalreporter.write_line(line)


__all__ = ["CaseFile", "CellItem", "Recorder", "pytest_addoption", "pytest_collect_file"]
