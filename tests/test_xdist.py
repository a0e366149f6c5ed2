"""Ports and workers: -n 2 gives the results of -n 0; a taken port is never a verdict."""

from __future__ import annotations

import json
import os
import socket
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from edge_cases import fail_and_skip

from pytest_bindconform import probe
from pytest_bindconform.host import fingerprint, os_family
from pytest_bindconform.oracles import DEFAULT_GATES
from pytest_bindconform.ports import worker_slice

ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
OS = os_family()
HOST = fingerprint()
# Below every OS's ephemeral ports (Linux: 32768+), so no outgoing connection takes them,
# and apart from the plugin's default 20000-29999, used by other runs. Runs started by
# different workers of *this* test run get ranges of their own too.
OUTER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
PARITY_PORTS = (30000 + 1000 * OUTER, 30999 + 1000 * OUTER)
TINY = (32600 + 10 * OUTER, 32603 + 10 * OUTER)

SUITE = f"""\
format: 1
id: parity
title: xdist parity
references: []
oracles:
  {DEFAULT_GATES[OS]}:
    kind: measured
    source: measured here
    applies: {{os: {OS}}}
  other:
    kind: derived
    source: a second opinion
    applies: {{os: {OS}}}
cases:
  - id: plain-twice
    sockets: {{a: {{address: specific}}, b: {{address: specific}}}}
    steps: [bind a, bind b]
    variants: {{family: [inet{", inet6" if HOST.ipv6 else ""}], type: [stream, dgram]}}
    expect: {{{DEFAULT_GATES[OS]}: INUSE, other: ok}}
  - id: listen-twice
    sockets: {{a: {{address: specific}}, b: {{address: specific}}}}
    steps: [bind a, listen a, bind b]
    expect: {{{DEFAULT_GATES[OS]}: INUSE, other: INUSE}}
{fail_and_skip()}"""

# Writes what the controller saw of every item, records included (they cross xdist).
RESULTS_PLUGIN = """
import json, os

SEEN = {}


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        record = getattr(report, "bindconform", None) or {}
        SEEN[report.nodeid] = {
            "outcome": report.outcome,
            "status": record.get("status"),
            "observed": (record.get("observed") or {}).get("outcome"),
            "verdicts": record.get("verdicts"),
            "gate": record.get("gate"),
            "port": (record.get("scenario") or {}).get("port"),
            "worker": getattr(report, "worker_id", None),
        }


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):
        with open(os.environ["RESULTS_LOG"], "w") as fh:
            json.dump(SEEN, fh, sort_keys=True)
"""


def run_and_collect(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str
) -> dict[str, dict[str, Any]]:
    log = pytester.path / "results.json"
    log.unlink(missing_ok=True)
    monkeypatch.setenv("RESULTS_LOG", str(log))
    ports = f"--bindconform-ports={PARITY_PORTS[0]}-{PARITY_PORTS[1]}"
    result = pytester.runpytest_subprocess(*ARGS, "-p", "results", ports, *args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    seen: dict[str, dict[str, Any]] = json.loads(log.read_text())
    return seen


def without(results: dict[str, dict[str, Any]], *keys: str) -> dict[str, dict[str, Any]]:
    return {k: {f: v for f, v in r.items() if f not in keys} for k, r in results.items()}


def test_dash_n_2_gives_the_results_of_dash_n_0(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".bind.yaml", parity=SUITE, broken="format: 1\nid: [unclosed\n")
    pytester.makepyfile(results=RESULTS_PLUGIN)
    serial = run_and_collect(pytester, monkeypatch, "-n", "0")
    parallel = run_and_collect(pytester, monkeypatch, "-n", "2")
    no_xdist = run_and_collect(pytester, monkeypatch, "-p", "no:xdist")

    cells = 4 if HOST.ipv6 else 2
    assert len(serial) == cells + 3 + 1  # + the broken file's item
    outcomes = Counter(r["outcome"] for r in serial.values())
    assert outcomes == {"passed": cells + 1, "failed": 2, "skipped": 1}
    assert serial["broken.bind.yaml::case-file-error"]["outcome"] == "failed"
    assert serial["parity.bind.yaml::wrong-on-purpose"]["observed"] == "INUSE"
    assert sorted(parallel) == sorted(serial) == sorted(no_xdist)  # the same ids
    # Ports differ (each worker owns a slice); nothing else may.
    assert without(parallel, "port", "worker") == without(serial, "port", "worker")
    assert without(no_xdist, "port", "worker") == without(serial, "port", "worker")
    assert {r["worker"] for r in parallel.values()} == {"gw0", "gw1"}
    for r in parallel.values():
        if r["port"] is not None:
            index = int(r["worker"].removeprefix("gw"))
            assert r["port"] in worker_slice(*PARITY_PORTS, index, 2), r


# -- interference: another holder of a port never produces a verdict ------------------


@contextmanager
def holding(*ports: int, kinds: tuple[int, ...] = (socket.SOCK_STREAM,)) -> Iterator[None]:
    """Hold ports the way an unrelated server would: bound on the wildcard(s).

    SO_REUSEADDR only lets it bind over a TIME_WAIT left by an earlier run; the plugin's
    exclusive binds still fail against it, as they would against any server.
    """
    families = [(socket.AF_INET, "0.0.0.0")] + ([(socket.AF_INET6, "::")] if HOST.ipv6 else [])
    with ExitStack() as stack:
        for port in ports:
            for kind in kinds:
                for family, wildcard in families:
                    s = stack.enter_context(socket.socket(family, kind))
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if family == socket.AF_INET6:
                        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s.bind((wildcard, port))
                    if kind == socket.SOCK_STREAM:
                        s.listen(1)
        yield


def cell_reports(reprec: pytest.HookRecorder) -> list[pytest.TestReport]:
    return [
        r
        for r in reprec.getreports("pytest_runtest_logreport")
        if r.when == "call" and hasattr(r, "bindconform")
    ]


def test_a_held_port_is_skipped_and_the_cell_still_gets_a_true_verdict(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".bind.yaml", parity=SUITE)
    with holding(TINY[0]):
        reprec = pytester.inline_run(
            *ARGS, f"--bindconform-ports={TINY[0]}-{TINY[1]}", "-k", "plain and tcp"
        )
    reports = cell_reports(reprec)
    assert len(reports) == (2 if HOST.ipv6 else 1)
    for report in reports:
        record = report.bindconform  # type: ignore[attr-defined]
        assert report.passed, report.longreprtext
        assert record["observed"]["outcome"] == "INUSE"
        assert TINY[0] < record["scenario"]["port"] <= TINY[1]


@pytest.mark.parametrize("held", ["tcp", "tcp+udp"])
def test_every_port_held_is_an_interference_error_never_a_verdict(
    pytester: pytest.Pytester, held: str
) -> None:
    """A TCP server cannot confound UDP binds: those still get their true verdict."""
    kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if held == "tcp+udp" else (socket.SOCK_STREAM,)
    pytester.makefile(".bind.yaml", parity=SUITE)
    with holding(*range(TINY[0], TINY[1] + 1), kinds=kinds):
        reprec = pytester.inline_run(
            *ARGS, f"--bindconform-ports={TINY[0]}-{TINY[1]}", "-k", "plain-twice or wrong"
        )
    reports = cell_reports(reprec)
    assert len(reports) == (4 if HOST.ipv6 else 2) + 1
    for report in reports:
        record = report.bindconform  # type: ignore[attr-defined]
        if held == "tcp" and "udp" in report.nodeid:
            assert report.passed, report.longreprtext
            assert record["observed"]["outcome"] == "INUSE"
            continue
        assert not report.passed
        assert record["status"] == "error"
        assert record["observed"] is None  # nothing observed is kept, so nothing was judged
        assert set(record["verdicts"].values()) == {"not-run"}
        text = report.longreprtext
        assert text.startswith("interference: ")
        assert "held by another process" in text and "no verdict is given" in text
        assert "--bindconform-ports" in text


def intrude_on_runs(monkeypatch: pytest.MonkeyPatch, runs: int) -> list[socket.socket]:
    """After each of the first `runs` probe runs, someone else binds the cell's port."""
    real_run = probe.run
    intruders: list[socket.socket] = []

    def run_then_intrude(cell: Any, planned: Any, port: int, *args: Any, **kw: Any) -> Any:
        observation = real_run(cell, planned, port, *args, **kw)
        if len(intruders) < runs:
            intruder = socket.socket()
            intruder.bind(("0.0.0.0", port))  # a real bind, before the runner re-checks
            intruders.append(intruder)
        return observation

    monkeypatch.setattr(probe, "run", run_then_intrude)
    return intruders


@pytest.mark.parametrize("runs", [1, 99])
def test_a_port_taken_around_the_cell_is_never_a_verdict(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, runs: int
) -> None:
    """The cell saw a conflict and its port is not free afterwards: the conflict may be
    someone else's. Rerun on another port, and give up with an error if it keeps happening."""
    intruders = intrude_on_runs(monkeypatch, runs)
    pytester.makefile(".bind.yaml", parity=SUITE)
    try:
        reprec = pytester.inline_run(
            *ARGS, f"--bindconform-ports={TINY[0]}-{TINY[1]}", "-k", "listen-twice"
        )
    finally:
        for s in intruders:
            s.close()
    (report,) = cell_reports(reprec)
    record = report.bindconform  # type: ignore[attr-defined]
    if runs == 1:  # the rerun on the next port is clean: a true verdict there
        assert report.passed, report.longreprtext
        assert record["scenario"]["port"] == TINY[0] + 1
        assert record["observed"]["outcome"] == "INUSE"
    else:
        assert not report.passed
        assert record["status"] == "error"
        assert "were held by another process while this cell ran there" in report.longreprtext


def test_interference_is_counted_as_an_error_not_a_failure(pytester: pytest.Pytester) -> None:
    pytester.makefile(".bind.yaml", parity=SUITE)
    with holding(*range(TINY[0], TINY[1] + 1)):
        result = pytester.runpytest(
            *ARGS, f"--bindconform-ports={TINY[0]}-{TINY[1]}", "-k", "listen-twice"
        )
    result.assert_outcomes(errors=1)
