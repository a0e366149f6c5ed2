"""pytest hooks only: collect *.bind.yaml files, run cells, hand records to the report.

Everything with meaning lives in the engine modules; this file adapts them to
pytest and pytest-xdist (host computed once on the controller, records carried
on test reports as builtins, reports written once by the controller).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest

from . import (
    cases,
    completions,
    gcpolicy,
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
    runner,
    simulate,
    slow,
)
from . import state as run_state
from .items import (
    CANDIDATES,
    RECORD_ATTR,
    CaseFile,
    CellItem,
    ExploreItem,
    MisnamedFile,
    _display,
    _name_problem,
)
from .model import Cell
from .recorder import Recorder
from .report import answers, distribution

HOST_KEY = "bindconform_host"
EXPLORE_KEY = "bindconform_explore"


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
    gcpolicy.configure(config)
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
    if workerinput is not None:
        done = completions.Worker(config)
        config.pluginmanager.register(done, completions.WORKER)
        config.pluginmanager.register(relay.Holder(config, done), relay.HOLDER)
    if workerinput is None:
        state.outputs = {fmt: _setting(config, fmt) for fmt in ("json", "md", "html")}
        config.pluginmanager.register(Recorder(config), "bindconform-recorder")
        config.pluginmanager.register(relay.Unfolder(config), "bindconform-unfolder")
        config.pluginmanager.register(completions.Controller(), "bindconform-crashes")


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


def pytest_collection_finish(session: pytest.Session) -> None:
    cells = any(isinstance(item, CellItem) for item in session.items)
    gcpolicy.after_collection(session.config, cells)


def pytest_itemcollected(item: pytest.Item) -> None:
    """The first cell that holds a socket in another process starts that owner's starter
    while collection goes on: a zygote takes half a second to be ready (a cell
    deselected later may have started one for nothing; it is reaped at session end)."""
    if isinstance(item, CellItem) and any(spec.owner != "self" for spec in item.cell.sockets):
        _prestart_owners(item.config, item.cell)


def _prestart_owners(config: pytest.Config, cell: Cell) -> None:
    """In the process that will run the cells: not an xdist controller, not a simulated
    run, not --collect-only (ownerpool.prestart starts each kind once)."""
    controller = config.getoption("dist", "no") != "no" and not hasattr(config, "workerinput")
    state = config.stash[run_state.STATE]
    if controller or config.option.collectonly or state.host.simulated:
        return
    owners = {spec.owner for spec in cell.sockets}
    if "unprivileged" in owners:  # resolved per host: this process, or other-user when root
        owners.add(plan.unprivileged_owner(state.host))
    ownerpool.prestart(owners - {"self", "unprivileged"})


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    gcpolicy.at_unconfigure(config)


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
            travelled = {**runner.travelling(record), "file": str(item.path)}
        setattr(report_, RECORD_ATTR, travelled or record)
    if isinstance(item, CellItem) and report_.skipped and isinstance(report_.longrepr, tuple):
        # point -rs at the cell's line in the case file, not at this plugin
        report_.longrepr = (str(item.path), item.cell.line, report_.longrepr[2])
    return report_


@pytest.hookimpl(wrapper=True)
def pytest_report_to_serializable(config: pytest.Config, report: Any) -> Any:
    """On a worker, a cell's record crosses as one JSON string (relay.py says why)."""
    data = yield
    if hasattr(config, "workerinput") and isinstance(data, dict):
        record = data.get(RECORD_ATTR)
        if isinstance(record, dict):
            data[RECORD_ATTR] = relay.encode(record)
    return data


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    """A cell that could not be judged (interference, environment) is an error, not a failure."""
    record = getattr(report, RECORD_ATTR, None)
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


__all__ = ["CaseFile", "CellItem", "Recorder", "pytest_addoption", "pytest_collect_file"]
