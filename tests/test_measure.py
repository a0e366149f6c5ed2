"""The measure command turns a real run into expectation blocks a reviewer can commit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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
    assert "  plain-twice: {expect: {linux: INUSE}}" in out
    # reuse = SO_REUSEADDR: the second listen() fails; reuse = SO_REUSEPORT: both listen
    assert "  reuse-listeners: {expect: {linux: {reuseaddr: INUSE, reuseport: ok}}}" in out
    lines = yaml.safe_load("\n".join(out.splitlines()[1:]))
    assert lines["reuse-listeners"] == {
        "expect": {"linux": {"reuseaddr": "INUSE", "reuseport": "ok"}}
    }
