"""A cell's run protocol (protocol.py) and xdist relay (relay.py): every plugin on the
controller sees what pytest's own protocol shows it, in the same order, with and without
xdist; whatever a cell might need pytest for still gets pytest's protocol."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from edge_cases import fail_and_skip

from pytest_bindconform import relay
from pytest_bindconform.host import fingerprint, os_family
from pytest_bindconform.oracles import DEFAULT_GATES

ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "events")
OS = os_family()
GATE = DEFAULT_GATES[OS]
HOST = fingerprint()
OUTER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
PORTS = f"--bindconform-ports={14000 + 250 * OUTER}-{14249 + 250 * OUTER}"
MANY = 2 * relay.BUNDLE + 11  # each of two workers fills a bundle and sends a part one

# Every event the controller's plugins see, in order (workers see nothing of it).
EVENTS_PLUGIN = """
import json, os
EVENTS = []

def pytest_runtest_logstart(nodeid, location):
    EVENTS.append(["start", nodeid])

def pytest_runtest_logreport(report):
    record = getattr(report, "bindconform", None)
    EVENTS.append([report.when, report.nodeid, report.outcome,
                   record.get("status") if isinstance(record, dict) else None,
                   getattr(report, "worker_id", None)])

def pytest_runtest_logfinish(nodeid, location):
    EVENTS.append(["finish", nodeid])

def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):
        with open(os.environ["EVENTS_LOG"], "w") as fh:
            json.dump(EVENTS, fh)
"""


def suite(cells: int) -> str:
    plain = "".join(
        f"  - id: alone-{i}\n    sockets: {{a: {{address: specific}}}}\n"
        f"    steps: [bind a]\n    expect: {{{GATE}: ok}}\n"
        for i in range(cells)
    )
    return f"""\
format: 1
id: protocol
title: run protocol
references: []
oracles:
  {GATE}: {{kind: measured, source: measured here, applies: {{os: {OS}}}}}
cases:
{plain}  - id: with-a-variant
    sockets: {{a: {{address: specific}}}}
    steps: [bind a]
    variants: {{type: [stream]}}
    expect: {{{GATE}: ok}}
{fail_and_skip()}"""


@pytest.fixture(autouse=True)
def events_log(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTS_LOG", str(pytester.path / "events.json"))


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, list[list[Any]]]:
    log = pytester.path / "events.json"
    log.unlink(missing_ok=True)
    result = pytester.runpytest_subprocess(*ARGS, PORTS, "-q", *args)
    return result, json.loads(log.read_text())


def per_cell(events: list[list[Any]], together: bool = True) -> dict[str, list[list[Any]]]:
    """Each cell's events; asserts they came together, as a -n 0 run gives them (xdist
    interleaves the events of items that take pytest's protocol on different workers)."""
    out: dict[str, list[list[Any]]] = {}
    last = None
    for event in events:
        nodeid = event[1]
        if nodeid != last:
            assert not together or nodeid not in out, f"{nodeid}'s events are split"
            out.setdefault(nodeid, [])
            last = nodeid
        out[nodeid].append(event)
    return out


@pytest.mark.parametrize("workers", ["0", "2"])
def test_each_cell_gives_the_five_events_of_pytests_protocol(
    pytester: pytest.Pytester, workers: str
) -> None:
    pytester.makefile(".bind.yaml", protocol=suite(MANY))
    pytester.makepyfile(events=EVENTS_PLUGIN)
    result, events = run(pytester, "-n", workers, "--junitxml=junit.xml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    cells = per_cell(events)
    assert len(cells) == MANY + 3
    outcomes = {"wrong-on-purpose": ("failed", "fail"), "lacks-an-option": ("skipped", "skip")}
    for nodeid, seen in cells.items():
        name = nodeid.rpartition("::")[2]
        outcome, status = outcomes.get(name, ("passed", "pass"))
        worker = seen[1][4]
        assert [e[0] for e in seen] == ["start", "setup", "call", "teardown", "finish"], seen
        assert seen[1][2:] == ["passed", None, worker] == seen[3][2:]
        assert seen[2][2:] == [outcome, status, worker]  # the record, rejoined on the controller
    workers_seen = {seen[2][4] for seen in cells.values()}
    assert workers_seen == ({"gw0", "gw1"} if workers == "2" else {None})
    # --junitxml: one testcase per cell, its properties from the synthesised teardown
    cases = list(ET.parse(pytester.path / "junit.xml").getroot().iter("testcase"))
    assert len(cases) == MANY + 3  # one each, a cell whose id has [brackets] too
    props = {
        c.get("name", ""): {p.get("name"): p.get("value") for p in c.iter("property")}
        for c in cases
    }
    (variant,) = [n for n in props if n.startswith("with-a-variant[")]
    assert props[variant]["bindconform_status"] == "pass"
    assert props["wrong-on-purpose"]["bindconform_status"] == "fail"
    assert all(p["bindconform_status"] == "pass" for n, p in props.items() if "alone" in n)
    result.stdout.fnmatch_lines(["*1 failed, *passed, 1 skipped*"])


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_skipped_cell_held_back_on_a_worker_reports_as_a_skip(
    pytester: pytest.Pytester, workers: str
) -> None:
    """A skip's report crosses from a worker inside a bundle (JSON, which has no tuples):
    --junitxml and -rs still get its (path, line, reason), as from pytest's own protocol."""
    skips = fail_and_skip().split("  - id: lacks-an-option")[1]
    text = suite(MANY).replace("cases:\n", "cases:\n  - id: lacks-an-option" + skips, 1)
    text = text.replace(fail_and_skip(), "")
    pytester.makefile(".bind.yaml", protocol=text)
    pytester.makepyfile(events=EVENTS_PLUGIN)
    result, _ = run(pytester, "-n", workers, "--junitxml=junit.xml", "-rs")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["SKIPPED *protocol.bind.yaml:*", "*passed, 1 skipped*"])
    cases = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    (skipped,) = [c for c in cases if c.get("name") == "lacks-an-option"]
    (element,) = skipped.iter("skipped")
    assert element.get("message"), "the skip's reason is missing"


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_failure_stops_a_dash_x_run_at_once(pytester: pytest.Pytester, workers: str) -> None:
    """The failing cell comes first; its report is never held back in a bundle."""
    text = suite(MANY).replace("cases:\n", "cases:\n" + _first_failure(), 1)
    pytester.makefile(".bind.yaml", protocol=text)
    pytester.makepyfile(events=EVENTS_PLUGIN)
    result, events = run(pytester, "-n", workers, "-x", "-p", "no:randomly")
    # xdist ends a stopped run as interrupted, whatever the items are
    stopped = pytest.ExitCode.INTERRUPTED if workers == "2" else pytest.ExitCode.TESTS_FAILED
    assert result.ret == stopped, result.stdout.str()
    calls = [e for e in events if e[0] == "call"]
    assert [e[1] for e in calls if e[2] == "failed"][0].endswith("::first-failure")
    assert len(calls) < MANY  # stopped: most cells never ran
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])


def _first_failure() -> str:
    return (
        "  - id: first-failure\n    sockets: {a: {address: specific}, b: {address: specific}}\n"
        f"    steps: [bind a, bind b]\n    expect: {{{GATE}: ok}}\n"
    )


FIXTURES = """
import pytest
from events import EVENTS

@pytest.fixture(scope="session")
def session_thing():
    EVENTS.append(["fixture", "session-up"])
    yield
    EVENTS.append(["fixture", "session-down"])

@pytest.fixture(scope="module")
def module_thing():
    EVENTS.append(["fixture", "module-up"])
    yield
    EVENTS.append(["fixture", "module-down"])
"""


def test_python_tests_around_cells_keep_their_fixtures_and_marks(
    pytester: pytest.Pytester,
) -> None:
    """Fixtures of the tests before the cells are torn down when pytest would tear them
    down; a cell given a skip or xfail mark (by a conftest) gets pytest's own protocol."""
    pytester.makefile(".bind.yaml", test_b=suite(3))
    pytester.makepyfile(events=EVENTS_PLUGIN)
    pytester.makeconftest(
        FIXTURES + "\ndef pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        if item.name == 'alone-1':\n"
        "            item.add_marker(pytest.mark.skip(reason='held back by conftest'))\n"
        "        if item.name == 'wrong-on-purpose':\n"
        "            item.add_marker(pytest.mark.xfail(reason='known'))\n"
    )
    pytester.makepyfile(
        test_a="def test_before(session_thing, module_thing):\n    pass\n",
        test_c="def test_after(session_thing):\n    pass\n",
    )
    result, events = run(pytester, "-p", "no:xdist", "-rsx")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    marks = [e for e in events if e[0] == "fixture" or e[0] == "start"]
    names = [e[1].rpartition("::")[2] for e in marks]
    assert names == [
        "test_before",
        "session-up",
        "module-up",
        "module-down",  # before the first cell, as pytest tears down for the next item
        "alone-0",
        "alone-1",
        "alone-2",
        "with-a-variant[tcp]",
        "wrong-on-purpose",
        "lacks-an-option",
        "test_after",
        "session-down",
    ]
    result.stdout.fnmatch_lines(
        ["*SKIPPED*held back by conftest*", "*XFAIL*wrong-on-purpose*known*"]
    )
    cells = per_cell([e for e in events if e[0] != "fixture"])
    assert [e[0] for e in cells["test_b.bind.yaml::alone-1"]] == [
        "start",
        "setup",
        "teardown",
        "finish",
    ]  # skipped at setup by pytest's own protocol: no call


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_conftests_phase_hook_gets_pytests_protocol_and_nothing_held_is_lost(
    pytester: pytest.Pytester, workers: str
) -> None:
    """Cells under a conftest hooking pytest_runtest_call run through pytest's protocol
    (the hook runs for each); the relayed reports a worker held before them still arrive."""
    pytester.makefile(".bind.yaml", plain=suite(MANY))
    hooked = pytester.mkdir("zz_hooked")
    (hooked / "hooked.bind.yaml").write_text(suite(2).replace("id: protocol", "id: hooked"))
    (hooked / "conftest.py").write_text(
        "import os\n"
        "def pytest_runtest_call(item):\n"
        "    with open(os.environ['EVENTS_LOG'] + '.calls', 'a') as fh:\n"
        "        fh.write(item.name + '\\n')\n"
    )
    pytester.makepyfile(events=EVENTS_PLUGIN)
    result, events = run(pytester, "-n", workers)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    cells = per_cell(events, together=workers == "0")
    assert len(cells) == MANY + 3 + 5
    for seen in cells.values():
        assert [e[0] for e in seen] in (
            ["start", "setup", "call", "teardown", "finish"],
            ["start", "setup", "teardown", "finish"],  # skipped at setup: never
        ), seen
        assert seen[2][0] == "call" and seen[2][3] is not None  # every cell has its record
    calls = (pytester.path / "events.json.calls").read_text().split()
    assert sorted(calls) == sorted(
        ["alone-0", "alone-1", "with-a-variant[tcp]", "wrong-on-purpose", "lacks-an-option"]
    )
