"""The multicast and load-spreading suites of issue 14 (items 1 and 6): they run green
on this host with and without xdist and observe what their oracles claim; a 'spread'
expectation is judged by the oracle from the per-socket counts (a wrong one fails the
cell, saying the counts and the fairness index), and the reports show the distribution."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_bindconform import cases, spread
from pytest_bindconform.host import fingerprint
from pytest_bindconform.model import Cell, Expectation, Oracle
from pytest_bindconform.oracles import judge, verdict

ROOT = Path(__file__).resolve().parent.parent
SUITES = ("multicast", "load-spreading")
ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
HOST = fingerprint()
OUTER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
# below the ephemeral ports and apart from the other tests' ranges
PORTS = f"--bindconform-ports={18000 + 500 * OUTER}-{18499 + 500 * OUTER}"
linux_only = pytest.mark.skipif(
    HOST.os != "linux", reason="the suites' gate here is measured Linux"
)
SCHEMA = json.loads((ROOT / "pytest_bindconform" / "schema" / "report.schema.json").read_text())


def run(pytester: pytest.Pytester, *args: str) -> tuple[dict[str, dict[str, Any]], str]:
    for name in SUITES:
        shutil.copy(ROOT / "cases" / f"{name}.bind.yaml", pytester.path)
    report = pytester.path / "report.json"
    md, page = pytester.path / "report.md", pytester.path / "report.html"
    result = pytester.runpytest_subprocess(
        *ARGS, PORTS, f"--bindconform-json={report}", f"--bindconform-md={md}",
        f"--bindconform-html={page}", "-v", *args,
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()[-3000:]
    data = json.loads(report.read_text())
    jsonschema.validate(data, SCHEMA)
    assert "## Distribution of the traffic" in md.read_text()
    assert 'id="distribution"' in page.read_text()
    results = {r["id"].split("::", 1)[-1]: r for r in data["results"]}
    return results, result.stdout.str()


@linux_only
@pytest.mark.parametrize("workers", [["-n", "0"], ["-n", "2"], ["-p", "no:xdist"]])
def test_multicast_and_load_spreading_observe_what_linux_was_measured_to_do(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    results, out = run(pytester, *workers)
    assert {r["status"] for r in results.values()} <= {"pass", "skip"}, results

    def delivery(name: str) -> dict[str, Any]:
        return dict(results[name]["observed"]["delivery"])

    # binding the group address itself works; without options a second receiver cannot
    assert results["bind-group-address[reuseaddr-inet]"]["observed"]["outcome"] == "ok"
    assert results["group-address-no-option[reuseport-inet]"]["observed"]["outcome"] == "INUSE"
    # every member gets every datagram, on the group address or the wildcard, either option
    for case in ("group-address-reuse-both", "wildcard-reuse-both", "group-then-wildcard"):
        for profile in ("reuseaddr", "reuseport"):
            got = delivery(f"{case}[{profile}-inet]")
            assert got["sent"] == 100 and set(got["received"].values()) == {100}, got
    # the unicast contrast: SO_REUSEADDR gives all to the socket bound last, SO_REUSEPORT hashes
    assert delivery("unicast-reuse-both[reuseaddr-inet]")["received"] == {"a": 0, "b": 100}
    for name in ("tcp-reuseport-both", "udp-reuseport-both"):
        for family in ("inet", "inet6"):
            got = delivery(f"{name}[{family}]")
            assert got["sent"] == 120 and all(got["received"].values()), got
            assert got["fairness"] >= 0.8
    lb = results["tcp-reuseport-lb-both[inet]"]
    assert lb["status"] == "skip" and "SO_REUSEPORT_LB does not exist" in lb["reason"]
    # the -v line shows the distribution, not only PASSED
    line = next(x for x in out.splitlines() if "tcp-reuseport-both[inet]" in x and "PASSED" in x)
    assert "PASSED (a " in line and " of 120, fairness " in line, line


SUITE = """\
format: 1
id: wrong-spread
title: a spread Linux does not have
references: []
oracles:
  linux:
    kind: measured
    source: a deliberately wrong claim
    applies: {os: linux}
cases:
  - id: tcp-reuseport
    variants: {family: [inet]}
    probes: 100
    sockets:
      a: {options: [SO_REUSEPORT], address: specific}
      b: {options: [SO_REUSEPORT], address: specific}
    steps: [bind a, listen a, bind b, listen b]
    expect: {linux: ok}
    spread: {linux: last-binder}
"""


@linux_only
@pytest.mark.parametrize("workers", [["-n", "0"], ["-n", "2"]])
def test_a_wrong_spread_fails_the_cell_with_the_counts(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    pytester.makefile(".bind.yaml", wrong=SUITE)
    report = pytester.path / "r.json"
    result = pytester.runpytest_subprocess(*ARGS, PORTS, f"--bindconform-json={report}", *workers)
    assert result.ret == 1, result.stdout.str()[-3000:]
    (record,) = json.loads(report.read_text())["results"]
    assert record["status"] == "fail" and record["verdicts"] == {"linux": "disagree"}
    assert record["expected"]["linux"]["spread"] == "last-binder"
    assert record["expected"]["linux"]["receiver"] == "b"  # the socket bound last
    # Linux hashed: the reason says both counts and the fairness, and the cell re-ran once
    assert "expects ok, spread last-binder" in record["reason"], record["reason"]
    assert ", fairness " in record["reason"] and "a " in record["reason"]
    assert len(record["observed"]["delivery_reruns"]) == 1


def _cell(exp: Expectation) -> Cell:
    return Cell("s", "c", "c", "", None, (), (), 0, (exp,), 1)


@pytest.mark.parametrize(
    ("shape", "received", "receiver", "holds"),
    [
        ("even", {"a": 60, "b": 60}, "both", True),
        ("even", {"a": 110, "b": 10}, "both", False),  # fairness 0.59
        ("even", {"a": 120, "b": 0}, "a", False),
        ("one", {"a": 0, "b": 120}, "b", True),
        ("one", {"a": 1, "b": 119}, "both", False),
        ("every", {"a": 120, "b": 120}, "both", True),
        ("every", {"a": 120, "b": 119}, "both", False),
    ],
)
def test_spread_is_judged_from_the_counts(
    shape: str, received: dict[str, int], receiver: str, holds: bool
) -> None:
    delivery = {"target": "127.0.0.1", "sent": 120, "received": received, "receiver": receiver}
    delivery["fairness"] = spread.fairness(list(received.values()))
    assert spread.holds(shape, 0.8, delivery) is holds
    exp = Expectation("linux", "ok", spread=shape)
    assert verdict(exp, "ok", receiver, delivery) == ("agree" if holds else "disagree")
    oracle = Oracle("linux", "measured", "here", "linux")
    judged = judge(
        _cell(exp), "ok", {"linux": oracle}, "linux", "linux", "6.1", receiver, {}, delivery
    )
    assert judged.status == ("pass" if holds else "fail")
    if not holds:
        assert f"of 120, fairness {delivery['fairness']}" in judged.reason


def test_no_delivery_is_never_a_spread() -> None:
    assert not spread.holds("every", 0.8, None)
    assert not spread.holds("one", 0.8, {"sent": 0, "received": {}, "receiver": "none"})
    failed = {"sent": 10, "received": {"a": 10}, "receiver": None, "failure": "x"}
    assert not spread.holds("one", 0.8, failed)


def test_the_loader_reads_spread_probes_fairness_and_join() -> None:
    suite = cases.load_suite(ROOT / "cases" / "multicast.bind.yaml")
    by = {c.name: c for c in suite.cells}
    contrast = by["unicast-reuse-both[reuseaddr-inet]"]
    linux = contrast.expectation("linux")
    assert linux is not None and (linux.spread, linux.receiver) == ("last-binder", "b")
    hashed = by["unicast-reuse-both[reuseport-inet]"].expectation("linux")
    assert hashed is not None and (hashed.spread, hashed.fairness_min) == ("even", 0.8)
    assert contrast.delivery_probes == 100
    assert by["bind-group-address[reuseaddr-inet]"].delivery_probes == 16  # the default
    assert [s.call for s in by["wildcard-reuse-both[reuseport-inet]"].steps].count("join") == 2
    text = (ROOT / "cases" / "load-spreading.bind.yaml").read_text()
    tuned = cases.parse_suite(
        text.replace("    probes: 120\n", "    probes: 120\n    fairness: 0.95\n", 1).encode(),
        "x.bind.yaml",
    )
    first = tuned.cells[0].expectation("linux")
    assert first is not None and first.fairness_min == 0.95 and first.spread == "even"


def test_deliver_and_spread_for_one_oracle_is_an_error() -> None:
    text = SUITE.replace("    spread: {linux: last-binder}\n", "    spread: {linux: even}\n")
    text += "    deliver: {linux: both}\n"
    with pytest.raises(cases.CaseFileError) as info:
        cases.parse_suite(text.encode(), "both.bind.yaml")
    assert "says 'deliver' and 'spread': one" in str(info.value)
