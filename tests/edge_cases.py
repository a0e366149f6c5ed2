"""Two cells several test suites share (YAML text under `cases:`): one whose gate expects
the opposite of what happens (a failure), one needing an option this OS lacks (a skip)."""

from __future__ import annotations

from pytest_bindconform.host import os_family
from pytest_bindconform.oracles import DEFAULT_GATES

OS = os_family()
MISSING = "SO_REUSEPORT" if OS == "windows" else "SO_EXCLUSIVEADDRUSE"


def fail_and_skip(gate: str = DEFAULT_GATES[OS]) -> str:
    return f"""\
  - id: wrong-on-purpose
    sockets: {{a: {{address: specific}}, b: {{address: specific}}}}
    steps: [bind a, bind b]
    expect: {{{gate}: ok}}
  - id: lacks-an-option
    sockets: {{a: {{options: [{MISSING}]}}}}
    steps: [bind a]
    expect: {{{gate}: ok}}
"""
