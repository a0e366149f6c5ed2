"""The scenario suites of issue 14 (cross-process, client-side binds, abortive close):
they run green on this host with and without xdist and observe what their oracles
claim; the SO_LINGER0 step option and the RESET outcome are loaded and refused where
they do not belong."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from pytest_bindconform import cases
from pytest_bindconform.host import fingerprint
from pytest_bindconform.ops import Executor
from pytest_bindconform.yamlsrc import CaseFileError

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("cross-process", "client-binds", "abortive-close")
ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
HOST = fingerprint()
OUTER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
# below the ephemeral ports (Linux: 32768+) and apart from the other tests' ranges
PORTS = f"--bindconform-ports={14000 + 500 * OUTER}-{14499 + 500 * OUTER}"
linux_only = pytest.mark.skipif(
    HOST.os != "linux", reason="the suites' gate here is measured Linux"
)


def run_suites(pytester: pytest.Pytester, *args: str) -> dict[str, dict[str, Any]]:
    for name in SCENARIOS:
        shutil.copy(ROOT / "cases" / f"{name}.bind.yaml", pytester.path)
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(*ARGS, PORTS, f"--bindconform-json={report}", *args)
    assert result.ret == 0, result.stdout.str()[-3000:]
    return {r["id"].split("::", 1)[-1]: r for r in json.loads(report.read_text())["results"]}


@linux_only
@pytest.mark.parametrize("workers", [["-n", "0"], ["-n", "2"], ["-p", "no:xdist"]])
def test_scenario_suites_observe_what_linux_was_measured_to_do(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    results = run_suites(pytester, *workers)
    assert {r["status"] for r in results.values()} <= {"pass", "skip"}, results
    observed = {name: r["observed"]["outcome"] for name, r in results.items() if r["observed"]}
    # the findings the suites exist for, read from real system calls
    assert observed["peer-sees-reset[inet]"] == "RESET"
    assert observed["restart-after-abortive-close[inet]"] == "ok"
    assert observed["restart-after-orderly-close[inet]"] == "INUSE"
    assert observed["duplicate-4-tuple-connect[reuseaddr-tcp]"] == "ADDRNOTAVAIL"
    assert observed["hijack-option-less[reuseport-udp4]"] == "INUSE"
    # the second socket really lived in another process
    cross = results["duplicate-listener-reuse-both[reuseport-inet]"]
    owners = {s["name"]: s["owner"] for s in cross["scenario"]["sockets"]}
    assert owners == {"a": "self", "b": "process"}
    assert cross["observed"]["delivery"]["receiver"] == "both"


def test_an_abortive_close_resets_the_peer_with_real_sockets() -> None:
    server, peer = Executor(), Executor()
    try:
        for ex, name in ((server, "s"), (peer, "p")):
            ex.do({"socket": name, "op": "socket", "family": "inet", "type": "stream"})
        assert (
            server.do({"socket": "s", "op": "bind", "address": "127.0.0.1", "port": 0})["outcome"]
            == "ok"
        )
        server.do({"socket": "s", "op": "listen"})
        port = server.socks["s"].getsockname()[1]
        peer.do({"socket": "p", "op": "connect", "address": "127.0.0.1", "port": port})
        server.do({"socket": "s", "op": "accept", "into": "s.conn"})
        linger = server.do({"socket": "s.conn", "op": "setsockopt", "option": "SO_LINGER0"})
        assert linger["outcome"] == "ok"
        assert server.socks["s.conn"].getsockopt(socket.SOL_SOCKET, socket.SO_LINGER) != 0
        server.do({"socket": "s.conn", "op": "close"})
        answer = peer.do({"socket": "p", "op": "recv"})
        assert (answer["outcome"], answer["error"]) == ("RESET", "ECONNRESET"), answer
    finally:
        server.close_all()
        peer.close_all()


SUITE = """\
format: 1
id: linger
title: linger
references: []
oracles:
  linux: {kind: measured, source: here, applies: {os: linux}}
cases:
  - id: one
    sockets:
      s: {address: specific%s}
      p: {}
    steps: [bind s, listen s, connect p s, accept s, setsockopt s.conn %s, close s.conn, recv p]
    expect: {linux: %s}
"""


def load(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "x.bind.yaml"
    path.write_text(text)
    try:
        cases.load_suite(path)
    except CaseFileError as exc:
        return [str(e) for e in exc.errors]
    return []


def test_so_linger0_is_a_step_option_and_reset_an_outcome(tmp_path: Path) -> None:
    assert load(tmp_path, SUITE % ("", "SO_LINGER0", "RESET")) == []


def test_so_linger0_is_refused_as_a_socket_option(tmp_path: Path) -> None:
    errors = load(tmp_path, SUITE % (", options: [SO_LINGER0]", "SO_LINGER0", "RESET"))
    assert len(errors) == 1 and "'SO_LINGER0' is not allowed" in errors[0], errors
    assert "x.bind.yaml:10:40:" in errors[0], errors  # file:line:column of the token


def test_a_misspelt_step_option_names_so_linger0_among_the_choices(tmp_path: Path) -> None:
    errors = load(tmp_path, SUITE % ("", "SO_LINGER", "RESET"))
    assert len(errors) == 1, errors
    assert "setsockopt needs an option" in errors[0] and "SO_LINGER0" in errors[0], errors


def test_a_misspelt_outcome_lists_reset(tmp_path: Path) -> None:
    errors = load(tmp_path, SUITE % ("", "SO_LINGER0", "RST"))
    assert len(errors) == 1 and "RESET" in errors[0], errors


def test_an_oracle_for_bindv6only_1_hosts_is_beyond_the_models() -> None:
    """The models assume bindv6only=0; claims measured with it at 1 are not held against
    them (they would disagree exactly where the default matters)."""
    from pytest_bindconform.models import agreement

    found = agreement.compare([cases.load_suite(ROOT / "cases" / "v6only.bind.yaml")])
    flipped = [c for c in found.unmodelled if c.expectation.oracle == "linux-bindv6only"]
    assert flipped and not found.disagreements
    assert not [c for c in found.checked if c.expectation.oracle == "linux-bindv6only"]
    # the same cell under bindv6only=0 is compared, and the model agrees
    assert any(
        c.expectation.oracle == "linux" and c.cell.key == "ipv4-wildcard-after-default-wildcard"
        for c in found.checked
    )


def test_an_option_a_setsockopt_step_needs_makes_the_cell_unrunnable_where_missing() -> None:
    """freebsd-reuseport-lb sets SO_REUSEPORT_LB after bind, as FreeBSD's own test does:
    where the OS lacks it the cell is skipped saying so, before any socket is opened."""
    from pytest_bindconform.plan import Unrunnable, plan

    suite = cases.load_suite(ROOT / "cases" / "freebsd-reuseport-lb.bind.yaml")
    cell = next(c for c in suite.cells if c.key == "lb-then-reuseport")
    assert "SO_REUSEPORT_LB" not in cell.socket("a").options  # only the step sets it
    if "SO_REUSEPORT_LB" in HOST.options:
        assert plan(cell, None, HOST)
        return
    with pytest.raises(Unrunnable, match="SO_REUSEPORT_LB does not exist on"):
        plan(cell, None, HOST)
