"""The measure command turns a real run into expectation blocks a reviewer can commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pytest_bindconform import cases

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the expected outcomes are Linux's")

GRID = """\
format: 1
id: measure-grid
title: measure grid
references: []
oracles:
  linux: {kind: measured, source: here, applies: {os: linux}}
grid:
  variants: {type: [stream, dgram]}
  rows:
    socket: second
    values: [{options: [], address: specific}, {options: [SO_REUSEADDR], address: specific}]
  columns:
    socket: first
    values: [{options: [], address: specific}, {options: [SO_REUSEADDR], address: specific}]
  expect:
    - oracle: linux
      table: [[unknown, unknown], [unknown, unknown]]
"""

CASES = """\
format: 1
id: measure-cases
title: measure cases
references: []
profiles: [reuseaddr, reuseport]
oracles:
  linux: {kind: measured, source: here, applies: {os: linux}}
cases:
  - id: plain-twice
    sockets: {a: {address: specific}, b: {address: specific}}
    steps: [bind a, bind b]
    expect: {linux: unknown}
  - id: reuse-listeners
    sockets: {a: {options: [reuse], address: specific}, b: {options: [reuse], address: specific}}
    steps: [bind a, listen a, bind b, listen b]
    expect: {linux: unknown}
"""


def measure(tmp_path: Path, text: str, *args: str) -> str:
    path = tmp_path / "m.bind.yaml"
    path.write_text(text)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_bindconform",
            "measure",
            str(path),
            "--oracle",
            "linux",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_grid_block_is_valid_yaml_with_the_measured_linux_outcomes(tmp_path: Path) -> None:
    out = measure(tmp_path, GRID)
    assert out.startswith("    # measured on linux")
    blocks = yaml.safe_load("\n".join(line[4:] for line in out.splitlines()[1:]))
    tables = {tuple(sorted(b.get("where", {}).items())): b["table"] for b in blocks}
    # SO_REUSEADDR on both sockets shares the address until one listens; anything less: INUSE.
    # TCP and UDP agree on bound-only sockets, so one block covers both.
    assert tables == {(): [["INUSE", "INUSE"], ["INUSE", "ok"]]}


def test_cases_get_one_line_each_with_profiles_folded_when_equal(tmp_path: Path) -> None:
    out = measure(tmp_path, CASES)
    assert "  plain-twice:  expect: {linux: INUSE}" in out
    # reuse = SO_REUSEADDR: the second listen() fails; reuse = SO_REUSEPORT: both listen
    assert "  reuse-listeners:  expect: {linux: {reuseaddr: INUSE, reuseport: ok}}" in out


# --from-report: the blocks of a report already written (what each CI leg leaves behind)
OUTER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
PORTS = f"--bindconform-ports={14000 + 500 * OUTER}-{14499 + 500 * OUTER}"
RUN = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", PORTS)
# the gate (linux) is wrong on purpose in the top-left cell: both types disagree there
WRONG_GATE = GRID.replace("[[unknown, unknown], [unknown, unknown]]", "[[ok, INUSE], [INUSE, ok]]")


def from_report(path: Path, *reports: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_bindconform", "measure", "--from-report", *reports]
        + ["--out", "reports/measured"],
        cwd=path,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("workers", ["0", "2"])
def test_blocks_from_a_report_reproduce_what_the_host_observed(
    pytester: pytest.Pytester, workers: str
) -> None:
    pytester.makefile(".bind.yaml", m=WRONG_GATE)
    run = pytester.runpytest_subprocess(*RUN, "-n", workers, "--bindconform-json", "r/{os}.json")
    run.assert_outcomes(passed=6, failed=2)
    done = from_report(pytester.path, "r")
    assert done.returncode == 0, done.stderr
    text = (pytester.path / "reports/measured/linux-measure-grid.measured.yaml").read_text()
    doc = yaml.safe_load(text)
    assert doc["measured"]["observed"] == 8 and doc["measured"]["disagreed_with_gate"] == 2
    assert doc["measured"]["reports"] == ["r/linux.json"]
    flagged = [
        line for line in text.splitlines() if "gate linux expects ok, observed INUSE" in line
    ]
    assert len(flagged) == 2 and all(line.startswith("#   first=") for line in flagged)
    # adopting it is pasting two keys: the case file then expects what the host did
    case = yaml.safe_load(WRONG_GATE)
    case["oracles"].update(doc["oracles"])
    case["grid"]["expect"] += doc["expect"]
    adopted = pytester.path / "adopted.bind.yaml"
    adopted.write_text(yaml.safe_dump(case, sort_keys=False))
    observed = {
        r["name"]: r["observed"]["outcome"]
        for r in json.loads((pytester.path / "r/linux.json").read_text())["results"]
    }
    suite = cases.load_suite(adopted)
    claims = {c.name: c.expectation("linux-measured").outcome for c in suite.cells}  # type: ignore[union-attr]
    assert claims == observed


def test_case_suites_get_a_cases_mapping_and_two_passes_that_differ_claim_nothing(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".bind.yaml", m=CASES)
    pytester.runpytest_subprocess(*RUN, "--bindconform-json", "r/{os}.json")
    done = from_report(pytester.path, "r/linux.json")
    assert done.returncode == 0, done.stderr
    out = pytester.path / "reports/measured/linux-measure-cases.measured.yaml"
    doc = yaml.safe_load(out.read_text())
    assert doc["cases"]["plain-twice"] == {"expect": {"linux-measured": "INUSE"}}
    assert doc["cases"]["reuse-listeners"] == {
        "expect": {"linux-measured": {"reuseaddr": "INUSE", "reuseport": "ok"}}
    }
    # a second report of the same OS (e.g. the privileged pass) observing otherwise
    other = json.loads((pytester.path / "r/linux.json").read_text())
    for r in other["results"]:
        if r["key"] == "plain-twice":
            r["observed"]["outcome"] = "ok"
    (pytester.path / "r/linux-privileged.json").write_text(json.dumps(other))
    assert from_report(pytester.path, "r").returncode == 0
    text = out.read_text()
    assert "  plain-twice: {expect: {linux-measured: unknown}}" in text
    assert yaml.safe_load(text)["measured"]["conflicting"] == 2  # one cell per profile
    assert "# observed differently by two reports, left unknown (2):" in text


def test_from_report_refuses_what_is_not_a_host_report(tmp_path: Path) -> None:
    (tmp_path / "merged.json").write_text('{"format": 2, "kind": "merged"}')
    done = from_report(tmp_path, "merged.json")
    assert done.returncode == 2 and "not a host report" in done.stderr
    (tmp_path / "empty").mkdir()
    done = from_report(tmp_path, "empty")
    assert done.returncode == 2 and "no JSON report in empty" in done.stderr
