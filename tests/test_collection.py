"""Collection: one item per cell, stable ids and order, YAML locations, markers, no sockets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_bindconform.host import os_family

ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
OS = os_family()

CASES = f"""\
format: 1
id: tiny
title: tiny suite
references: []
oracles:
  here:
    kind: measured
    source: measured here
    applies: {{os: {OS}}}
cases:
  - id: two-plain
    sockets:
      a: {{address: specific}}
      b: {{address: specific}}
    steps: [bind a, bind b]
    variants: {{family: [inet, inet6], type: [stream, dgram]}}
    expect: {{here: INUSE}}
  - id: listen-then-bind
    sockets:
      a: {{address: specific}}
      b: {{address: specific}}
    steps: [bind a, listen a, bind b]
    expect: {{here: INUSE}}
"""

GRID = f"""\
format: 1
id: tiny-grid
title: tiny grid
references: []
profiles: [reuseport]
oracles:
  here:
    kind: measured
    source: measured here
    applies: {{os: {OS}}}
grid:
  variants: {{type: [stream, dgram], family: [inet]}}
  rows:
    socket: second
    values:
      - {{option: default, address: specific}}
      - {{option: reuse, address: specific}}
  columns:
    socket: first
    values:
      - {{option: default, address: specific}}
      - {{option: reuse, address: specific}}
  expect:
    - oracle: here
      table:
        - [INUSE, INUSE]
        - [INUSE, ok]
"""

CASE_IDS = [
    "two-plain[tcp4]",
    "two-plain[tcp6]",
    "two-plain[udp4]",
    "two-plain[udp6]",
    "listen-then-bind",
]
GRID_IDS = [
    f"first={first}@specific,second={second}@specific[reuseport-{variant}]"
    for variant in ("tcp4", "udp4")
    for second in ("default", "reuse")  # rows: the second bind, as on the page
    for first in ("default", "reuse")
]


@pytest.fixture
def suites(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".bind.yaml", **{"b-tiny": CASES, "a-grid": GRID})
    return pytester


def test_one_item_per_cell_in_file_then_cell_order(suites: pytest.Pytester) -> None:
    items, _ = suites.inline_genitems(*ARGS)
    assert [item.nodeid for item in items] == [
        *(f"a-grid.bind.yaml::{name}" for name in GRID_IDS),
        *(f"b-tiny.bind.yaml::{name}" for name in CASE_IDS),
    ]


def test_collect_only_output_is_identical_across_runs(suites: pytest.Pytester) -> None:
    first, second = (
        [
            line
            for line in suites.runpytest(*ARGS, "--collect-only", "-q").stdout.lines
            if "::" in line
        ]
        for _ in range(2)
    )
    assert len(first) == len(CASE_IDS) + len(GRID_IDS)
    assert first == second


def test_collect_only_shows_the_tree(suites: pytest.Pytester) -> None:
    result = suites.runpytest(*ARGS, "--collect-only")
    result.stdout.fnmatch_lines(
        [
            "*<CaseFile a-grid.bind.yaml>",
            "*<CellItem first=default@specific,second=default@specific[[]reuseport-tcp4[]]>",
            "*<CaseFile b-tiny.bind.yaml>",
            "*<CellItem two-plain[[]tcp4[]]>",
        ]
    )
    assert result.ret == 0


def test_reportinfo_points_at_the_yaml_line_of_the_cell(suites: pytest.Pytester) -> None:
    items, _ = suites.inline_genitems(*ARGS)
    lines = {item.name: item.reportinfo()[1] + 1 for item in items}
    paths = {Path(item.reportinfo()[0]).name for item in items}
    assert paths == {"a-grid.bind.yaml", "b-tiny.bind.yaml"}
    assert lines["two-plain[udp6]"] == 11  # '- id: two-plain'
    assert lines["listen-then-bind"] == 18
    # a grid cell: the row of its expectation table
    assert lines["first=reuse@specific,second=default@specific[reuseport-tcp4]"] == 26
    assert lines["first=reuse@specific,second=reuse@specific[reuseport-udp4]"] == 27
    assert {item.location[1] + 1 for item in items if item.name.startswith("two-plain")} == {11}


def test_skip_location_is_the_yaml_line(pytester: pytest.Pytester) -> None:
    """-rs names where the skipped cell is written, not a line of the plugin."""
    head, tail = CASES.split("  - id: listen-then-bind")
    tail = tail.replace("specific", "192.0.2.7")  # TEST-NET-1: on no host
    pytester.makefile(".bind.yaml", tiny=f"{head}  - id: listen-then-bind{tail}")
    result = pytester.runpytest(*ARGS, "-rs", "-k", "listen")
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] tiny.bind.yaml:18: *192.0.2.7*"])


def test_markers_are_registered_and_strict_markers_accepts_them(suites: pytest.Pytester) -> None:
    result = suites.runpytest(*ARGS, "--markers")
    for name in (
        "bindconform",
        "inet",
        "inet6",
        "stream",
        "dgram",
        "so_reuseaddr",
        "so_reuseport",
        "so_exclusiveaddruse",
        "reuse",
        "exclusive",
    ):
        result.stdout.fnmatch_lines([f"@pytest.mark.{name}: *"])
    strict = suites.runpytest(*ARGS, "--strict-markers", "--collect-only", "-q")
    assert strict.ret == 0, strict.stdout.str()


def test_items_carry_family_type_and_option_markers(suites: pytest.Pytester) -> None:
    items, _ = suites.inline_genitems(*ARGS)
    by_name = {item.name: {m.name for m in item.iter_markers()} for item in items}
    assert {"bindconform", "inet6", "dgram"} <= by_name["two-plain[udp6]"]
    assert not {"inet", "stream"} & by_name["two-plain[udp6]"]
    both_reuse = by_name["first=reuse@specific,second=reuse@specific[reuseport-tcp4]"]
    assert {"inet", "stream", "reuse"} <= both_reuse
    plain = by_name["first=default@specific,second=default@specific[reuseport-tcp4]"]
    assert "reuse" not in plain
    if OS != "windows":  # the reuseport profile sets SO_REUSEPORT for 'reuse' on POSIX
        assert "so_reuseport" in both_reuse
        assert not any(m.startswith("so_") for m in plain)


@pytest.mark.parametrize(
    ("expression", "count"),
    [
        ("inet6 and dgram", 1),
        ("inet and stream", 1 + 1 + 4),  # two-plain[tcp4], listen-then-bind, the tcp4 grid
        ("dgram", 2 + 4),
        ("reuse", 6),  # 3 of the 4 grid cells per variant use the role
        ("bindconform and not reuse", 5 + 2),
    ],
)
def test_dash_m_selects_exactly(suites: pytest.Pytester, expression: str, count: int) -> None:
    result = suites.runpytest(*ARGS, "--collect-only", "-q", "-m", expression)
    result.stdout.fnmatch_lines([f"{count}/{len(CASE_IDS) + len(GRID_IDS)} tests collected *"])


def test_option_marker_selects_cells_that_set_the_option(suites: pytest.Pytester) -> None:
    if OS == "windows":
        pytest.skip("on Windows the reuseport profile sets SO_REUSEADDR for 'reuse'")
    result = suites.runpytest(*ARGS, "--collect-only", "-q", "-m", "so_reuseport")
    selected = [line for line in result.stdout.lines if "::" in line]
    assert len(selected) == 6
    assert all("reuse@" in line for line in selected)


def test_bindconform_cases_ini_restricts_the_roots(pytester: pytest.Pytester) -> None:
    pytester.mkdir("cases")
    pytester.mkdir("elsewhere")
    (pytester.path / "cases" / "tiny.bind.yaml").write_text(CASES)
    (pytester.path / "elsewhere" / "grid.bind.yaml").write_text(GRID)
    pytester.makeini("[pytest]\nbindconform_cases = cases\n")
    items, _ = pytester.inline_genitems(*ARGS)
    assert {Path(item.reportinfo()[0]).name for item in items} == {"tiny.bind.yaml"}
    assert len(items) == len(CASE_IDS)


def test_no_bindconform_leaves_case_files_alone(pytester: pytest.Pytester) -> None:
    pytester.makefile(".bind.yaml", broken="format: [unclosed\n", tiny=CASES)
    result = pytester.runpytest(*ARGS, "-p", "no:bindconform")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert "case-file-error" not in result.stdout.str()
    assert not [line for line in result.stdout.lines if line.startswith("bindconform")]


# An audit hook sees every socket the interpreter creates or binds, whoever asks.
SOCKET_AUDIT = """
import json, os, sys

EVENTS = []


def _hook(event, args):
    if event == "socket.__new__":
        EVENTS.append([event, list(args[1:])])
    elif event in ("socket.bind", "socket.connect"):
        EVENTS.append([event, list(args[1]) if isinstance(args[1], tuple) else repr(args[1])])


sys.addaudithook(_hook)


def pytest_unconfigure(config):
    with open(os.environ["SOCKET_AUDIT_LOG"], "w") as fh:
        json.dump(EVENTS, fh)
"""


def _audited_collect_only(
    suites: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> list[list[object]]:
    suites.makepyfile(socketaudit=SOCKET_AUDIT)
    log = suites.path / "audit.json"
    monkeypatch.setenv("SOCKET_AUDIT_LOG", str(log))
    result = suites.runpytest_subprocess(*ARGS, "-p", "socketaudit", "--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["b-tiny.bind.yaml::two-plain[[]tcp4[]]"])
    events: list[list[object]] = json.loads(log.read_text())
    return events


def test_collect_only_runs_no_cell(
    suites: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _audited_collect_only(suites, monkeypatch)
    binds = [args for event, args in events if event == "socket.bind"]
    assert all(isinstance(a, list) and a[1] == 0 for a in binds), binds  # port 0 only
    assert not [e for e in events if e[0] == "socket.connect"]


def test_collect_only_opens_no_socket_at_all(
    suites: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _audited_collect_only(suites, monkeypatch) == []


@pytest.mark.parametrize("inside", [True, False])
def test_a_port_range_inside_the_ephemeral_range_is_warned_about(
    pytester: pytest.Pytester, inside: bool
) -> None:
    from pytest_bindconform import host, ports

    lo, hi = ports.ephemeral_range(host.fingerprint(probe=False))
    chosen = f"{hi - 50}-{hi + 50 if hi < 65485 else hi}" if inside else f"{lo - 200}-{lo - 101}"
    pytester.makefile(".bind.yaml", tiny=CASES)
    result = pytester.runpytest(*ARGS, "--collect-only", "-q", f"--bindconform-ports={chosen}")
    warned = "overlaps this OS's ephemeral port range" in result.stdout.str()
    assert warned == inside, result.stdout.str()
    if inside:
        result.stdout.fnmatch_lines(
            [f"*--bindconform-ports {chosen} overlaps this OS's ephemeral port range {lo}-{hi}*"]
        )


@pytest.mark.parametrize("name", ["x.bind.yml", "X.BIND.YAML", "y.Bind.Yaml"])
def test_a_near_miss_of_the_suffix_is_said_not_skipped(
    pytester: pytest.Pytester, name: str
) -> None:
    """(With xdist too: tests/test_malformed.py runs such files under -n 2.)"""
    pytester.makefile(".bind.yaml", tiny=CASES)
    (pytester.path / name).write_text(CASES.replace("id: tiny", "id: other"))
    result = pytester.runpytest(*ARGS, "-q", "--collect-only")
    result.stdout.fnmatch_lines([f"{name}::case-file-error"])
    result = pytester.runpytest(*ARGS, "-rf")
    result.stdout.fnmatch_lines(
        [f"{name}:1:1: '{name}' is not collected: case files end in '.bind.yaml' (in lower case)*"]
    )
    assert result.parseoutcomes()["failed"] == 1
