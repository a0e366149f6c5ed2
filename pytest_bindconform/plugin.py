"""pytest hooks only: collect *.bind.yaml files, run cells, hand records to the report.

Everything with meaning lives in the engine modules; this file adapts them to
pytest and pytest-xdist (host computed once on the controller, records carried
on test reports as builtins, reports written once by the controller).
"""

from __future__ import annotations

import atexit
import gc
import os
import random
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from . import (
    cases,
    goals,
    host,
    isolate,
    library,
    oracles,
    ownerpool,
    plan,
    platforms,
    ports,
    protocol,
    relay,
    report,
    runner,
    simulate,
    slow,
    suitecache,
)
from . import state as run_state
from .model import Cell, Suite
from .report import answers, distribution
from .yamlsrc import CaseError, CaseFileError

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
        "--bindconform-library",
        action="store_true",
        default=False,
        help="run the case library shipped with pytest-bindconform (with no other path "
        "given, only it): `pip install pytest-bindconform && pytest --bindconform-library`",
    )
    group.addoption(
        "--bindconform-simulate",
        choices=("windows", "darwin", "freebsd"),
        default=None,
        metavar="OS",
        help="test harness, not a conformance run: run the pipeline as OS on this machine, with "
        "its host facts from recorded outputs and its socket layer from its model "
        "(pytest_bindconform/models/OS.py); every output says SIMULATED and merge refuses it",
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
    group.addoption(
        "--bindconform-slow",
        action="store_true",
        default=None,
        help="also run the slow cells (marked slow, off by default): a 'bind X until-free' "
        "step waits until the port is free again, e.g. cases/time-wait-duration.bind.yaml. "
        "ini: bindconform_slow",
    )
    group.addoption(
        "--bindconform-slow-ceiling",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"how long a slow cell waits at most (default {slow.DEFAULT_CEILING:.0f}); a bind "
        "still refused then is reported as unknown. ini: bindconform_slow_ceiling",
    )
    parser.addini("bindconform_slow", "run the slow cells", type="bool", default=False)
    parser.addini("bindconform_slow_ceiling", "seconds a slow cell waits at most", default="")
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
    config.add_cleanup(_unfreeze)
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
        ("other_user", "cell has a socket owned by another user (needs root or a second account)"),
        ("slow", "cell waits up to a ceiling for a port to be free (run with --bindconform-slow)"),
    ):
        config.addinivalue_line("markers", f"{name}: {doc}")
    if config.getoption("bindconform_library", False):
        _add_library(config)
    try:
        slow.enable(_slow_ceiling(config))
        gates = oracles.parse_gates(_setting(config, "gate"))
        port_text = _setting(config, "ports")
        port_range = ports.parse_range(port_text) if port_text else None
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    workerinput = getattr(config, "workerinput", None)
    if workerinput and HOST_KEY in workerinput:
        fingerprint = host.Host.from_dict(workerinput[HOST_KEY])
    elif config.getoption("bindconform_simulate"):
        try:
            fingerprint = simulate.simulated_host(config.getoption("bindconform_simulate"))
        except simulate.SimulationUnavailable as exc:
            raise pytest.UsageError(str(exc)) from None
    else:
        collect_only = bool(config.getoption("collectonly", False))
        fingerprint = host.fingerprint(_isolate(config), probe=not collect_only)
    if port_range and workerinput is None:
        _warn_if_ephemeral(config, port_range, ports.ephemeral_range(fingerprint))
    if fingerprint.simulated:
        simulate.install(fingerprint.os)  # models answer instead of sockets, in every process
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
        config.pluginmanager.register(relay.Unfolder(config), "bindconform-unfolder")


def _slow_ceiling(config: pytest.Config) -> float | None:
    """None unless slow cells are on; then how long they wait at most."""
    if not _setting(config, "slow"):
        return None
    raw = _setting(config, "slow_ceiling")
    try:
        return float(raw) if raw not in (None, "") else slow.DEFAULT_CEILING
    except ValueError:
        raise ValueError(f"bindconform_slow_ceiling: {raw!r} is not a number of seconds") from None


def _warn_if_ephemeral(
    config: pytest.Config, chosen: tuple[int, int], ephemeral: tuple[int, int]
) -> None:
    """The OS hands ephemeral ports to any program's outgoing connection: cells would collide."""
    lo, hi = max(chosen[0], ephemeral[0]), min(chosen[1], ephemeral[1])
    if lo > hi:
        return
    config.issue_config_time_warning(
        pytest.PytestWarning(
            f"bindconform: --bindconform-ports {chosen[0]}-{chosen[1]} overlaps this OS's "
            f"ephemeral port range {ephemeral[0]}-{ephemeral[1]} (ports {lo}-{hi}): the OS hands "
            "those ports to other programs' connections, which then interfere with cells; "
            f"choose ports below {ephemeral[0]}"
            + (f" or above {ephemeral[1]}" if ephemeral[1] < 65535 else "")
        ),
        stacklevel=2,
    )


def _add_library(config: pytest.Config) -> None:
    """--bindconform-library: the shipped cases join the paths named, or replace the default
    ones (testpaths, the current directory) when none was named."""
    try:
        where = str(library.directory())
    except FileNotFoundError as exc:
        raise pytest.UsageError(str(exc)) from None
    named = config.args_source == pytest.Config.ArgsSource.ARGS
    config.args = [*config.args, where] if named else [where]


def _isolate(config: pytest.Config) -> str:
    """Enter the private namespace now, before xdist starts workers that inherit it."""
    mode = _setting(config, "isolate") or "host"
    if mode not in ("host", "netns"):
        raise pytest.UsageError(f"bindconform_isolate: {mode!r} is not one of host, netns")
    if mode == "host":
        return "host"
    try:
        platforms.current.enter_isolation()
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


FROZEN = pytest.StashKey[bool]()


def pytest_collection_finish(session: pytest.Session) -> None:
    # thousands of immutable cells live until the end: keep the cyclic GC from rescanning them
    if any(isinstance(item, CellItem) for item in session.items):
        gc.freeze()
        session.config.stash[FROZEN] = True
    _prestart_owners(session)


def _prestart_owners(session: pytest.Session) -> None:
    """Start the socket-owner helpers' starters now, while pytest reports collection, in
    the process that will run the cells (not an xdist controller, not a simulated run)."""
    config = session.config
    controller = config.getoption("dist", "no") != "no" and not hasattr(config, "workerinput")
    if controller or config.option.collectonly or config.stash[run_state.STATE].host.simulated:
        return
    state = config.stash[run_state.STATE]
    cells = (item.cell for item in session.items if isinstance(item, CellItem))
    owners = {spec.owner for cell in cells for spec in cell.sockets}
    if "unprivileged" in owners:  # resolved per host: this process, or other-user when root
        owners.add(plan.unprivileged_owner(state.host))
    ownerpool.prestart(owners - {"self", "unprivileged"})


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """The records and reports are written: freeze them too, so that pytest's own final
    gc.collect() calls (unraisable-exception checks) skip them; _unfreeze undoes it."""
    if config.stash.get(FROZEN, False):
        gc.freeze()
        _freeze_at_exit()


@cache
def _freeze_at_exit() -> None:
    """At interpreter exit, freeze whatever is left: the interpreter's final collections
    would otherwise walk every object of the run again, several times (about 3 s after a
    library run, in each process). Refcounting still frees them; nothing runs after."""
    atexit.register(gc.freeze)


def _unfreeze() -> None:
    """Undo the freeze: a process running several sessions (pytester) would keep each one's
    objects forever. Registered in pytest_configure, before pytest's own plugins register
    theirs, so it runs after their final gc.collect() (cleanups run last first)."""
    gc.unfreeze()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    ownerpool.shutdown()  # every socket-owner helper reaped: none outlives the session


def _under_roots(config: pytest.Config, file_path: Path) -> bool:
    """Collected: files under bindconform_cases, and whatever the command line names (a case
    file, or a directory that holds none of those roots: `pytest mycases/`)."""
    roots = config.getini("bindconform_cases")
    if not roots or any(file_path.is_relative_to(root) for root in roots):
        return True
    for arg in _arg_paths(config):
        if file_path == arg:
            return True
        if file_path.is_relative_to(arg) and not any(Path(r).is_relative_to(arg) for r in roots):
            return True
    return False


def _arg_paths(config: pytest.Config) -> list[Path]:
    """The paths named on the command line (node ids cut to their file), absolute."""
    if not hasattr(config, "_bindconform_args"):
        here = config.invocation_params.dir
        named = [Path(str(a).split("::", 1)[0]) for a in config.invocation_params.args]
        config._bindconform_args = [  # type: ignore[attr-defined]
            Path(os.path.abspath(here / p)) for p in named if not str(p).startswith("-")
        ]
    return config._bindconform_args  # type: ignore[attr-defined,no-any-return]


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


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    if not file_path.name.lower().endswith(cases.NEAR_SUFFIXES):
        return None
    if not _under_roots(parent.config, file_path):
        return None
    display = _display(parent.config, file_path)
    problem = _name_problem(file_path, display)
    if problem is None:
        return CaseFile.from_parent(parent, path=file_path)
    # ids, reports and xdist's messages are UTF-8 text: name the item the way it can be written
    safe = os.fsencode(display).decode("utf-8", "backslashreplace")
    safe = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in safe)
    return MisnamedFile.from_parent(
        parent, path=file_path, name=safe.rsplit("/", 1)[-1], nodeid=safe, problem=problem
    )


def _display(config: pytest.Config, path: Path) -> str:
    """The path relative to the rootdir with '/' on every OS: ids must match across hosts."""
    try:
        return Path(os.path.relpath(path, config.rootpath)).as_posix()
    except ValueError:  # another drive than the rootdir (Windows)
        return path.as_posix()


def _name_problem(path: Path, display: str) -> str | None:
    """Why a file that looks meant as a case file cannot be one, if it cannot."""
    name = path.name
    if not name.endswith(cases.SUFFIX):
        stem = name[: -len(".bind.yml" if name.lower().endswith(".bind.yml") else cases.SUFFIX)]
        return (
            f"{ascii(name)} is not collected: case files end in {cases.SUFFIX!r} (in lower "
            f"case); rename it to {ascii(stem + cases.SUFFIX)}"
        )
    try:
        display.encode("utf-8")
    except UnicodeEncodeError:
        return (
            f"the file name {os.fsencode(name)!r} is not valid UTF-8, which every id and report "
            "is written in; rename the file"
        )
    if not display.isprintable():
        return f"the file name {ascii(display)} holds a control character; rename the file"
    return None


class MisnamedFile(pytest.File):
    """A near miss of a case file's name: one failing item says so, nothing is left out."""

    def __init__(self, *, problem: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.problem = problem

    def collect(self) -> Iterator[pytest.Item]:
        error = CaseFileError([CaseError(self.nodeid, 1, 1, self.problem)])
        yield BadCaseFile.from_parent(self, name="case-file-error", error=error)


class CaseFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        # the library's ids wherever it is installed; else relative to the rootdir
        display = library.display(self.path) or _display(self.config, self.path)
        try:
            suite = suitecache.load(self.path, display=display)
        except CaseFileError as exc:
            yield BadCaseFile.from_parent(self, name="case-file-error", error=exc)
            return
        clash = self.config.stash[run_state.STATE].claim_suite(suite)
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
        if isinstance(excinfo.value, CaseFileProblem):  # file:line:col: error, first: -r shows it
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path | str, int, str]:
        first = self.error.errors[0]
        # a misnamed file's own name may not be writable: xdist sends the location as UTF-8
        where = self.parent.nodeid if isinstance(self.parent, MisnamedFile) else self.path
        return where, first.line - 1, f"{first.file}: invalid case file"


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
        if slow.is_slow(cell):
            self.add_marker(_mark("slow"))
        # --junitxml properties are made from the record on the controller (Recorder):
        # nothing rides on the setup and teardown reports a worker sends

    @property
    def runs_user_code(self) -> bool:
        """A declared server's factory makes a socket of this cell: the user's code runs."""
        situation = goals.of(self.suite, self.cell)
        made_by = situation.candidate.factory if situation else ""
        return bool(made_by) and not made_by.startswith("library:")

    def runtest(self) -> None:
        state = self.config.stash[run_state.STATE]
        record = runner.execute(self.cell, self.suite, state.context())
        if state.host.simulated:
            record = simulate.honest(record, state.host.os)
        if slow.is_slow(self.cell):
            record = slow.label(record)
            self.add_report_section("call", "bindconform", slow.answer(record))
        self.bindconform_record = record
        if record["status"] == "skip":
            pytest.skip(record["reason"])
        required = self.config.stash[CANDIDATES].missed_requirement(record)
        if required:
            record.update(status="fail", reason=required)
            verdict, _, where = required.partition("\n")  # repr_failure shows the last line first
            raise ConformanceFailure(f"{where}\n{verdict}" if where else verdict)
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
        if isinstance(excinfo.value, ConformanceFailure):
            # the verdict first (the -r line shows line one; the id is already on it)
            lines = str(excinfo.value).splitlines()
            return "\n".join([lines[-1].strip(), *lines[:-1]])
        if isinstance(excinfo.value, InterferenceError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.cell.line - 1, f"{self.suite.id}: {self.cell.name}"


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


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """--junitxml: the facts of the host that decide results, as testsuite properties."""
    from _pytest.junitxml import xml_key  # the plugin behind record_testsuite_property

    xml = session.config.stash.get(xml_key, None)
    if xml is None or hasattr(session.config, "workerinput"):
        return
    h = session.config.stash[run_state.STATE].host
    pairs = [
        ("bindconform_os", f"{h.os} {h.os_release}"),
        ("bindconform_os_version", h.os_version),
        ("bindconform_kernel", f"{h.kernel} {h.machine}"),
        ("bindconform_python", h.python),
        ("bindconform_privileged", str(h.admin).lower()),
        ("bindconform_isolation", h.isolation),
        ("bindconform_gate", session.config.stash[run_state.STATE].gates.get(h.os, "")),
        *((f"bindconform_sysctl_{k}", v) for k, v in sorted(h.sysctl.items())),
    ]
    for name, value in pairs:
        xml.add_global_property(name, value)


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
                    "summary": result.summary(),
                    "found": result.found,
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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """A cell runs through the lean protocol (protocol.py) unless it needs pytest's own."""
    return True if isinstance(item, CellItem) and protocol.run(item, nextitem) else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report_ = yield
    record = getattr(item, "bindconform_record", None)
    if record is not None and call.when == "call":
        # builtins only; from a worker only what happened here (the controller adds the rest)
        on_worker = hasattr(item.config, "workerinput")
        travelled = None
        if on_worker and isinstance(item, CellItem):
            # one string, not nested dicts: execnet unpacks objects one by one in Python
            travelled = relay.encode({**runner.travelling(record), "file": str(item.path)})
        setattr(report_, RECORD_ATTR, travelled or record)
    if isinstance(item, CellItem) and report_.skipped and isinstance(report_.longrepr, tuple):
        # point -rs at the cell's line in the case file, not at this plugin
        report_.longrepr = (str(item.path), item.cell.line, report_.longrepr[2])
    return report_


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    """A cell that could not be judged (interference, environment) is an error, not a failure."""
    record = getattr(report, RECORD_ATTR, None)
    if isinstance(record, str):  # an xdist worker's own terminal: the controller decides
        return None
    if report.when == "call" and report.failed and record and record.get("status") == "error":
        return "error", "E", "ERROR"
    if report.when == "call" and report.passed and record and record.get("status") == "ungated":
        word = answers.status_word(record)
        return "passed", "o", distribution.status_word(record, word) or word
    if report.when == "call" and report.passed and record:
        spread = distribution.status_word(record, "PASSED")  # the counts and fairness
        if spread:
            return "passed", ".", spread
    return None


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
            self.junit[report.nodeid] = junit_properties(record)
        elif report.when == "call" or report.outcome != "passed":
            self.book.note_outcome(report.nodeid, report.outcome, str(report.longrepr or ""))
        if report.when == "teardown" and report.nodeid in self.junit:
            report.user_properties = [*report.user_properties, *self.junit.pop(report.nodeid)]

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        if self.config.option.collectonly:
            return  # nothing ran: never overwrite a report with a run that did not happen
        if self.book.records:  # an xdist controller holds records but collected no cells
            self.config.stash[FROZEN] = True
        workers = getattr(self.config.option, "numprocesses", None) or 0
        self.written = self.book.finish(self.state, self.state.outputs, exitstatus, workers)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.config.option.collectonly:
            return
        verbosity = self.config.get_verbosity()
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


__all__ = ["CaseFile", "CellItem", "Recorder", "pytest_addoption", "pytest_collect_file"]
