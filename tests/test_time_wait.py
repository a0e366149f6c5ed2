"""Issue 14 item 11: the TIME_WAIT duration suite is slow and off by default; 'bind X
until-free' retries a refused bind up to a ceiling with real sockets, and a bind still
refused at the ceiling is reported as an unknown, never a pass."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from pytest_bindconform import cases
from pytest_bindconform.host import fingerprint
from pytest_bindconform.ops import Executor
from pytest_bindconform.yamlsrc import CaseFileError

ROOT = Path(__file__).resolve().parent.parent
SUITE = "time-wait-duration"
ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
HOST = fingerprint(probe=False)


def run(pytester: pytest.Pytester, *args: str) -> tuple[Any, dict[str, dict[str, Any]]]:
    shutil.copy(ROOT / "cases" / f"{SUITE}.bind.yaml", pytester.path)
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(*ARGS, "-rs", f"--bindconform-json={report}", *args)
    records = {r["name"]: r for r in json.loads(report.read_text())["results"]}
    return result, records


def test_slow_cells_are_off_by_default_and_say_how_to_turn_them_on(
    pytester: pytest.Pytester,
) -> None:
    result, records = run(pytester, "-n", "0")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*slow cell, off by default*run with --bindconform-slow*"])
    assert {r["status"] for r in records.values()} == {"skip"}
    assert all(r["observed"] is None for r in records.values())  # nothing waited
    # the marker selects them, or leaves them out
    shutil.copy(ROOT / "cases" / f"{SUITE}.bind.yaml", pytester.path)
    pytester.runpytest_subprocess(*ARGS, "-n", "0", "-m", "not slow").assert_outcomes()
    picked = pytester.runpytest_subprocess(*ARGS, "-n", "0", "-m", "slow", "--co", "-q")
    picked.stdout.fnmatch_lines(["*plain-bind-after-server-close[[]inet[]]", "2 tests collected*"])


@pytest.mark.skipif(HOST.os != "linux", reason="Linux keeps TIME_WAIT 60 s, far above 1.5 s")
@pytest.mark.parametrize("workers", [["-n", "0"], ["-n", "2"]])
def test_a_bind_still_refused_at_the_ceiling_is_an_unknown_not_a_pass(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    result, records = run(
        pytester, "--bindconform-slow", "--bindconform-slow-ceiling=1.5", *workers
    )
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*unknown: the bind was still refused (EADDRINUSE) after 1.5*"])
    for record in records.values():
        assert record["status"] == "skip" and record["gate"] is None, record
        assert "agree" not in record["verdicts"].values()
        step = record["observed"]["steps"][-1]
        assert (step["call"], step["outcome"], step["still"]) == (
            "bind (until free)",
            "TIMEOUT",
            "EADDRINUSE",
        )
        assert 1.5 <= step["waited"] < 5 and step["tries"] > 2 and step["timeout"] == 1.5


def test_until_free_succeeds_once_the_holder_lets_go_and_says_how_long_it_waited() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    threading.Timer(0.6, holder.close).start()
    ex = Executor()
    try:
        ex.do({"socket": "n", "op": "socket", "family": "inet", "type": "stream"})
        answer = ex.do(
            {"socket": "n", "op": "bind", "address": "127.0.0.1", "port": port, "until": 10}
        )
    finally:
        ex.close_all()
    assert answer["outcome"] == "ok", answer
    assert 0.5 <= answer["waited"] < 10 and answer["tries"] > 1


def test_until_free_does_not_wait_out_an_error_that_is_not_in_use() -> None:
    ex = Executor()
    try:
        ex.do({"socket": "n", "op": "socket", "family": "inet", "type": "stream"})
        answer = ex.do({"socket": "n", "op": "bind", "address": "192.0.2.1", "port": 0, "until": 5})
    finally:
        ex.close_all()
    assert answer["outcome"] == "ADDRNOTAVAIL" and answer["tries"] == 1, answer


STEPS = """\
format: 1
id: tw
title: tw
references: []
oracles:
  linux: {kind: measured, source: here, applies: {os: linux}}
cases:
  - id: one
    sockets: {s: {address: specific}, n: {address: specific}}
    steps: [bind s, close s, %s]
    expect: {linux: ok}
"""


def errors(tmp_path: Path, step: str) -> list[str]:
    path = tmp_path / "tw.bind.yaml"
    path.write_text(STEPS % step)
    try:
        cases.load_suite(path)
    except CaseFileError as exc:
        return [str(e) for e in exc.errors]
    return []


def test_until_free_is_the_one_argument_a_bind_step_takes(tmp_path: Path) -> None:
    assert errors(tmp_path, "bind n until-free") == []
    (wrong,) = errors(tmp_path, "bind n until_free")
    assert "tw.bind.yaml:10:" in wrong and "did you mean 'until-free'" in wrong, wrong
    (other,) = errors(tmp_path, "listen n until-free")
    assert "listen takes no argument" in other, other


def test_a_ceiling_that_is_not_a_positive_number_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    shutil.copy(ROOT / "cases" / f"{SUITE}.bind.yaml", pytester.path)
    for bad in ("0", "soon"):
        result = pytester.runpytest_subprocess(
            *ARGS, "--bindconform-slow", f"--bindconform-slow-ceiling={bad}"
        )
        assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
        assert "ceiling" in result.stderr.str() and bad in result.stderr.str()
