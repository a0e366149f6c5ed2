"""What the speed work must not change, and what it promises about data (not timings:
those are bench/bench_library.py's): xdist carries what happened, not what the controller
can describe itself; setup/teardown reports carry nothing; --junitxml, the JSON report and
the terminal are the same with and without workers; per-shape caches answer as before."""

from __future__ import annotations

import gc
import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from edge_cases import fail_and_skip

from pytest_bindconform import oracles, plan, runner, state
from pytest_bindconform.host import fingerprint, os_family
from pytest_bindconform.oracles import DEFAULT_GATES
from pytest_bindconform.suitecache import load

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from compare_reports import compare  # noqa: E402

ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
OS = os_family()
HOST = fingerprint()
GATE = DEFAULT_GATES[OS]

SUITE = f"""\
format: 1
id: speed
title: what crosses xdist
references: []
oracles:
  {GATE}:
    kind: measured
    source: measured here
    applies: {{os: {OS}}}
  other:
    kind: derived
    source: a second opinion
    applies: {{os: {OS}}}
profiles: [reuseaddr]
cases:
  - id: twice
    sockets: {{a: {{address: specific}}, b: {{address: specific}}}}
    steps: [bind a, bind b]
    variants: {{type: [stream, dgram]}}
    expect: {{{GATE}: INUSE, other: ok}}
  - id: shared
    sockets:
      a: {{options: [reuse], address: specific}}
      b: {{options: [reuse], address: specific}}
    steps: [bind a, bind b]
    variants: {{type: [dgram]}}
    expect: {{{GATE}: unknown}}
{fail_and_skip()}"""

# On the controller, before a worker's report is rebuilt: what the channel carried.
WIRE_PLUGIN = """
import json, os

SEEN = []


def pytest_report_from_serializable(config, data):
    if data.get("$report_type") == "TestReport":
        record = data.get("bindconform")  # one JSON string on the wire
        size = len(record) if record else 0
        record = json.loads(record) if record else None
        SEEN.append({
            "when": data["when"],
            "nodeid": data["nodeid"],
            "user_properties": data.get("user_properties") or [],
            "record_keys": sorted(record) if record else None,
            "record_bytes": size,
        })


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):
        with open(os.environ["WIRE_LOG"], "w") as fh:
            json.dump(SEEN, fh)
"""


def run(pytester: pytest.Pytester, name: str, *args: str) -> tuple[dict[str, Any], str]:
    out = pytester.path / name
    result = pytester.runpytest_subprocess(
        *ARGS,
        "--bindconform-ports=19000-19299",
        f"--bindconform-json={out}.json",
        f"--junitxml={out}.xml",
        *args,
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    return json.loads(Path(f"{out}.json").read_text()), Path(f"{out}.xml").read_text()


def properties(xml: str) -> dict[str, list[tuple[str, str]]]:
    """Each test case's properties, in order."""
    import xml.etree.ElementTree as ET

    cases = ET.fromstring(xml).iter("testcase")
    return {
        f"{c.get('classname')}::{c.get('name')}": [
            (p.get("name", ""), p.get("value", "")) for p in c.iter("property")
        ]
        for c in cases
    }


def test_workers_send_what_happened_and_the_controller_describes_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".bind.yaml", speed=SUITE)
    pytester.makepyfile(wire=WIRE_PLUGIN)
    monkeypatch.setenv("WIRE_LOG", str(pytester.path / "wire.json"))
    serial, serial_xml = run(pytester, "serial", "-n", "0")
    parallel, parallel_xml = run(pytester, "parallel", "-n", "2", "-p", "wire")
    wire = json.loads((pytester.path / "wire.json").read_text())

    calls = [w for w in wire if w["when"] == "call"]
    assert len(calls) == len(serial["results"]) == 5
    # only call reports cross (relay.py): the controller makes the setup and teardown ones
    assert [w["when"] for w in wire] == ["call"] * len(calls)
    for sent in calls:
        keys = set(sent["record_keys"])
        assert keys.isdisjoint(runner.DESCRIBED), sent  # no description, no provenance
        assert {"id", "file", "observed", "verdicts", "status", "scenario"} <= keys
        assert sent["record_bytes"] < 1600, sent  # one string, about 1 KB with a delivery

    # ... and the controller's records, report and --junitxml are those of -n 0
    assert compare(serial, parallel) == []
    strip = ("duration",)
    for a, b in zip(serial["results"], parallel["results"], strict=True):
        a = {k: v for k, v in a.items() if k not in strip}
        b = {k: v for k, v in b.items() if k not in strip}
        a["scenario"].pop("port", None), b["scenario"].pop("port", None)
        assert list(a) == list(b) and list(a["scenario"]) == list(b["scenario"])
        assert a == b
    assert serial["suites"] == parallel["suites"]
    props = properties(serial_xml)
    assert props == properties(parallel_xml)
    twice = next(v for k, v in props.items() if "twice" in k and "tcp" in k)
    assert twice[0] == ("bindconform_profile", "reuseaddr")
    assert ("bindconform_verdicts", f"{GATE}=agree other=disagree") in twice


def test_the_terminal_summary_is_the_same_with_no_report_written(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".bind.yaml", speed=SUITE)

    def section(*args: str) -> list[str]:
        result = pytester.runpytest_subprocess(
            *ARGS, "--bindconform-ports=19300-19599", "-n", "0", *args
        )
        lines = result.stdout.lines
        start = next(i for i, line in enumerate(lines) if "bindconform" in line and "=" in line)
        return [line for line in lines[start:] if not line.startswith(("reports:", "="))]

    assert section() == section("--bindconform-json=r.json")


def test_a_report_document_is_built_only_when_one_is_written(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_bindconform.report import book

    built: list[int] = []
    real = book.model.build
    monkeypatch.setattr(book.model, "build", lambda *a: built.append(1) or real(*a))
    pytester.makefile(".bind.yaml", speed=SUITE)
    reprec = pytester.inline_run(*ARGS, "--bindconform-ports=19600-19799", "-k", "twice")
    reprec.assertoutcome(passed=2)
    assert built == []
    pytester.inline_run(
        *ARGS, "--bindconform-ports=19600-19799", "-k", "twice", "--bindconform-json=r.json"
    )
    assert built == [1] and json.loads((pytester.path / "r.json").read_text())["results"]


def test_the_cells_stay_out_of_the_cyclic_gc_only_during_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from _pytest import unraisableexception

    frozen_at_final_collections: list[int] = []
    real = unraisableexception.gc_collect_harder

    def collect(iterations: int) -> None:
        frozen_at_final_collections.append(gc.get_freeze_count())
        real(iterations)

    monkeypatch.setattr(unraisableexception, "gc_collect_harder", collect)
    pytester.makefile(".bind.yaml", speed=SUITE)
    pytester.makeconftest(
        "import gc\ndef pytest_runtest_call(item):\n    assert gc.get_freeze_count() > 0\n"
    )
    pytester.inline_run(*ARGS, "--bindconform-ports=19800-19899", "-k", "twice").assertoutcome(
        passed=2
    )
    # pytest's last collections skip the frozen cells and records; then the freeze is undone
    assert len(frozen_at_final_collections) == 2
    assert all(n > 0 for n in frozen_at_final_collections)
    assert gc.get_freeze_count() == 0


FREEZE_WATCH = """
import gc, json, os
import pytest
from pytest_bindconform import gcpolicy

gcpolicy.EVERY = 3  # in every process: conftests load on workers too
SEEN = []

@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item):  # the process that runs the cell (-n 0, a worker)
    result = yield
    SEEN.append(gc.get_freeze_count())
    return result

def pytest_runtest_logreport(report):  # the process that keeps the records
    if report.when == "call" and hasattr(report, "worker_id"):
        SEEN.append(gc.get_freeze_count())

def pytest_sessionfinish(session):
    with open(os.path.join(os.environ["WATCH_DIR"], f"{os.getpid()}.json"), "w") as fh:
        json.dump(SEEN, fh)
"""


@pytest.mark.parametrize("workers", ["0", "2"])
def test_what_the_run_keeps_is_frozen_out_of_the_gc_while_it_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """Each process that keeps records (a worker, the controller, a -n 0 run) freezes them
    every gcpolicy.EVERY cells: the frozen count keeps rising during the run, not only
    once after collection."""
    many = "".join(
        f"  - id: more-{i}\n    sockets: {{a: {{address: specific}}}}\n"
        f"    steps: [bind a]\n    expect: {{{GATE}: ok}}\n"
        for i in range(24)
    )
    pytester.makefile(".bind.yaml", speed=SUITE.replace("cases:\n", "cases:\n" + many, 1))
    pytester.makeconftest(FREEZE_WATCH)
    monkeypatch.setenv("WATCH_DIR", str(pytester.path))
    result = pytester.runpytest_subprocess(
        *ARGS, "--bindconform-ports=19900-19999", "-n", workers, "-k", "more"
    )
    result.assert_outcomes(passed=24)
    seen = [json.loads(p.read_text()) for p in pytester.path.glob("*.json")]
    watched = [counts for counts in seen if counts]  # the xdist controller runs none
    assert len(watched) == (1 if workers == "0" else 3), seen
    for counts in watched:
        rises = sum(1 for a, b in itertools.pairwise(counts) if b > a)
        assert rises >= len(counts) // 3 - 1, counts


def test_rejoin_gives_back_the_record_travelling_left_out(tmp_path: Path) -> None:
    path = tmp_path / "speed.bind.yaml"
    path.write_text(SUITE)
    suite = load(path, display="speed.bind.yaml")
    ctx = state.RunState(HOST, oracles.parse_gates([]), (19900, 19999), (0, 1)).context()
    for cell in suite.cells:
        record = runner.execute(cell, suite, ctx)
        travelled = runner.travelling(record)
        assert set(travelled).isdisjoint(runner.DESCRIBED)
        again = runner.rejoin(json.loads(json.dumps(travelled)), cell, suite)
        assert again == record and list(again) == list(record)
        assert list(again["scenario"]) == list(record["scenario"])


def test_cells_that_share_expectations_get_tables_of_their_own(tmp_path: Path) -> None:
    """runner._describe makes a shared expectation tuple's table once: each description
    must still be its own to fill in, and say what a table made afresh would."""
    path = tmp_path / "speed.bind.yaml"
    path.write_text(SUITE)
    suite = load(path, display="speed.bind.yaml")
    a, b = (c for c in suite.cells if c.name.startswith("twice"))
    assert a.expectations is b.expectations  # cases._shared made them one object
    first, second = runner.describe(a, suite), runner.describe(b, suite)
    assert first["expected"] == second["expected"] == runner._expected(a, suite)
    assert first["steps_planned"] == [str(s) for s in a.steps]
    first["expected"][GATE] = "filled in by the first cell"
    first["expected"].pop("other")
    assert runner.describe(b, suite)["expected"] == runner._expected(b, suite)
    assert runner.describe(a, suite)["expected"] == runner._expected(a, suite)


def test_a_plan_is_made_once_per_shape_and_answers_as_before(tmp_path: Path) -> None:
    path = tmp_path / "speed.bind.yaml"
    path.write_text(SUITE)
    suite = load(path, display="speed.bind.yaml")
    fresh: dict[Any, list[Any] | str] = {}
    for cell in suite.cells:  # each planned from nothing: no cache of a cell or a socket
        plan._PLANS.clear()
        plan._SOCKETS.clear()
        profile = suite.profiles.get(cell.profile) if cell.profile else None
        try:
            fresh[cell] = plan._plan(cell, profile, HOST)
        except plan.Unrunnable as exc:
            fresh[cell] = str(exc)
    plan._PLANS.clear()
    plan._SOCKETS.clear()
    for cell in suite.cells:  # now cells share the plans of their sockets, then their own
        profile = suite.profiles.get(cell.profile) if cell.profile else None
        for _ in range(2):
            try:
                cached: list[Any] | str = plan.plan(cell, profile, HOST)
            except plan.Unrunnable as exc:
                cached = str(exc)
            assert cached == fresh[cell]
    assert len(plan._SOCKETS) < sum(len(cell.sockets) for cell in suite.cells)
    assert any("SO_EXCLUSIVEADDRUSE" in str(f) or "SO_REUSEPORT" in str(f) for f in fresh.values())


def test_applicable_oracles_and_versions_as_applies_says(tmp_path: Path) -> None:
    path = tmp_path / "speed.bind.yaml"
    path.write_text(SUITE)
    suite = load(path, display="speed.bind.yaml")
    assert runner.applicable(suite, HOST) == {GATE, "other"}
    assert oracles.version_tuple("6.18.44-fc-v1045") == (6, 18, 44)
    assert oracles.version_tuple("10.0.19045") == (10, 0, 19045)


LOCATION_WATCH = """
import json, os, pytest


def pytest_collection_finish(session):
    pytests_own = pytest.Item.location.func
    seen = [[i.nodeid, list(i.location), list(pytests_own(i))] for i in session.items]
    with open(os.path.join(os.environ["WATCH_DIR"], f"loc-{os.getpid()}.json"), "w") as fh:
        json.dump(seen, fh)
"""


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_cells_location_is_the_one_pytest_would_give_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """CellItem.location works out a case file's relative path once for all its cells;
    every item's location is still what pytest's Item.location computes."""
    (pytester.mkdir("deep") / "er").mkdir()
    (pytester.path / "deep" / "er" / "speed.bind.yaml").write_text(SUITE)
    pytester.makefile(".bind.yaml", top=SUITE.replace("id: speed", "id: top", 1))
    pytester.makeconftest(LOCATION_WATCH)
    monkeypatch.setenv("WATCH_DIR", str(pytester.path))
    result = pytester.runpytest_subprocess(*ARGS, "--bindconform-ports=19800-19899", "-n", workers)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()  # fail_and_skip
    seen = [json.loads(p.read_text()) for p in pytester.path.glob("loc-*.json")]
    assert len(seen) == (1 if workers == "0" else 2), seen  # the xdist controller collects none
    for items in seen:
        files = {ours[0] for _, ours, _ in items}
        assert files == {os.path.join("deep", "er", "speed.bind.yaml"), "top.bind.yaml"}
        assert len(items) > 6 and all(ours == theirs for _, ours, theirs in items), items


def test_a_models_prediction_is_made_once_per_shape_and_answers_as_before(tmp_path: Path) -> None:
    from pytest_bindconform.models.cells import predict

    path = tmp_path / "speed.bind.yaml"
    path.write_text(SUITE)
    suite = load(path, display="speed.bind.yaml")
    runner._PREDICTED.clear()
    for cell in suite.cells * 2:
        profile = suite.profiles.get(cell.profile) if cell.profile else None
        assert runner._predicted(OS, cell, profile) == predict(OS, cell, profile)
    shapes = {(c.profile, id(c.sockets), id(c.steps), c.under_test) for c in suite.cells}
    assert len(runner._PREDICTED) == len(shapes) < len(suite.cells)


READ_PROFILES = """
import json, sys
from pytest_bindconform import libraries
found = [p.id for p in libraries.profiles()]
print(json.dumps({"ids": found, "jsonschema": "jsonschema" in sys.modules}))
"""


def test_the_shipped_library_profiles_are_read_once_then_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every process of a run (each xdist worker, each owner zygote) reads them: only the
    first validates them (and imports jsonschema), later ones take them from the cache."""
    import subprocess

    monkeypatch.setenv("BINDCONFORM_CACHE_DIR", str(tmp_path / "cache"))
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", READ_PROFILES],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            ).stdout
        )
        for _ in range(2)
    ]
    assert runs[0]["jsonschema"] and not runs[1]["jsonschema"]
    assert runs[0]["ids"] == runs[1]["ids"] and len(runs[0]["ids"]) > 10
    monkeypatch.setenv("BINDCONFORM_CACHE_DIR", "off")
    from pytest_bindconform.libraries import loader

    assert [p.id for p in loader._read(_shipped_texts())] == runs[0]["ids"]


def _shipped_texts() -> list[tuple[str, str]]:
    from importlib import resources

    folder = resources.files("pytest_bindconform.libraries").joinpath("data")
    return sorted(
        (p.name, p.read_text(encoding="utf-8"))
        for p in folder.iterdir()
        if p.name.endswith(".yaml")
    )


def test_a_memo_makes_each_value_once_per_identity_and_stays_bounded() -> None:
    from pytest_bindconform.memo import Memo

    made: list[str] = []
    memo: Memo[str] = Memo(limit=3)

    def make(text: str) -> str:
        made.append(text)
        return text.upper()

    one, same_value = tuple(["a", "b"]), tuple(["a", "b"])
    assert memo.get((one,), lambda: make("x")) == "X"
    assert memo.get((one,), lambda: make("y")) == "X"  # kept: made once
    assert memo.get((same_value,), lambda: make("z")) == "Z"  # equal, but another object
    assert memo.get((one,), lambda: make("w"), 2) == "W"  # plain values by equality
    assert made == ["x", "z", "w"] and len(memo) == 3
    for i in range(3):
        memo.get((object(),), lambda: make("more"), i)
    assert len(memo) <= 3 + 1  # cleared past its limit instead of growing


OWNER_IMPORTS = """
import json, sys
import pytest_bindconform.owner
before = "importlib.metadata" in sys.modules
import pytest_bindconform
print(json.dumps({"metadata": before, "version": pytest_bindconform.__version__}))
"""


def test_a_socket_owners_interpreter_does_not_read_package_metadata() -> None:
    """The owner helpers' interpreter (python -S -m pytest_bindconform.owner) imports only
    what a request needs; the version is read from the metadata when first asked for."""
    import subprocess
    from importlib.metadata import version

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-S", "-c", OWNER_IMPORTS],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *sys.path])},
    )
    seen = json.loads(done.stdout)
    assert seen["metadata"] is False
    assert seen["version"] == version("pytest-bindconform")


def test_the_benchmarks_replayed_engine_gives_each_cell_its_saved_record(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench/replay_engine.py: the library's pytest side alone is only a true figure if
    each cell gets back exactly the record its real run made, and runs no socket for it.
    One saved record is altered: the replayed report must show that change and no other."""
    import pickle

    pytester.makefile(".bind.yaml", speed=SUITE)
    bench = Path(__file__).resolve().parent.parent / "bench"
    monkeypatch.setenv("PYTHONPATH", f"{bench}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    saved = pytester.path / "records.pkl"
    monkeypatch.setenv("BENCH_RECORDS_SAVE", str(saved))
    real, _ = run(pytester, "real", "-p", "replay_engine")
    monkeypatch.delenv("BENCH_RECORDS_SAVE")
    records = pickle.loads(saved.read_bytes())
    assert sorted(records) == sorted(r["id"] for r in real["results"])
    altered = next(k for k in sorted(records) if "twice" in k)
    record = pickle.loads(records[altered])
    assert record["observed"]["outcome"] == "INUSE"  # the real bind of b failed
    record["observed"]["outcome"] = "ok"
    records[altered] = pickle.dumps(record)
    saved.write_bytes(pickle.dumps(records))
    monkeypatch.setenv("BENCH_RECORDS", str(saved))
    replayed, _ = run(pytester, "replayed", "-p", "replay_engine")
    differences = compare(real, replayed)
    assert differences and all(altered in line for line in differences), differences


def test_the_benchmarks_apart_runs_its_folders_at_once_each_in_its_own_ports(
    tmp_path: Path,
) -> None:
    """bench/apart.py is the ceiling `-n N` is judged against: the folders must really run
    at the same time (each session waits, bounded, for the other to start: run one after
    the other, the first would give up) and never share a port (a shared one would make
    interference, not a measurement)."""
    import subprocess

    from apart import split_ports

    assert split_ports("20000-29999", 2) == ["20000-24999", "25000-29999"]
    assert split_ports("20000-20008", 3) == ["20000-20002", "20003-20005", "20006-20008"]
    waits = (
        "import pathlib, time\n"
        "def pytest_sessionstart(session):\n"
        "    here = pathlib.Path(__file__).parent\n"
        "    (here / 'started').write_text('')\n"
        "    other = here.parent / ('b' if here.name == 'a' else 'a') / 'started'\n"
        "    end = time.monotonic() + 30\n"
        "    while not other.exists() and time.monotonic() < end:\n"
        "        time.sleep(0.05)\n"
        "    assert other.exists(), 'the other folder never started'\n"
    )
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        (folder / "cases").mkdir(parents=True)
        (folder / "cases" / "speed.bind.yaml").write_text(SUITE)
        (folder / "conftest.py").write_text(waits)
    apart = Path(__file__).resolve().parent.parent / "bench" / "apart.py"
    done = subprocess.run(
        [sys.executable, str(apart), "20000-29999", *map(str, folders), "--"]
        + [*ARGS, "cases", "-n", "0", "--bindconform-json=out.json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr
    for folder, (low, high) in zip(folders, [(20000, 24999), (25000, 29999)], strict=True):
        assert "passed" in (folder / "apart.out").read_text()
        results = json.loads((folder / "out.json").read_text())["results"]
        ports = {r["scenario"]["port"] for r in results if r["scenario"].get("port")}
        assert ports and all(low <= port <= high for port in ports), (folder.name, ports)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the benchmark forks its second process")
def test_the_benchmarks_round_trip_to_a_second_process_runs_each_gap_and_the_floor() -> None:
    """bench/bench_switch.py backs docs/speed.md's account of a child-owner cell's cost:
    each gap is timed, and the second process really answers (a dead one hangs up)."""
    import subprocess

    script = Path(__file__).resolve().parent.parent / "bench" / "bench_switch.py"
    done = subprocess.run(
        [sys.executable, str(script), "--rounds", "2", "--requests", "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    labels = ["after none", "after busy", "after sleep", "after touch", "the same work"]
    for label in labels:
        (line,) = [line for line in lines if line.strip().startswith(label)]
        figure, rounds = line.split(" us   rounds: ")
        assert float(figure.split()[-1]) > 0 and len(rounds.split(", ")) == 2, line


def test_the_benchmarks_engine_run_measures_the_checkout_it_is_given(tmp_path: Path) -> None:
    """bench_library.py --before: the engine figure of another checkout must be that
    checkout's code. It once ran from this repository, whose package `python -c` finds
    before PYTHONPATH, so "before" measured this tree again; and a checkout lacking a
    module is lent this tree's by the editable install, which must stop the figure."""
    import shutil

    from bench_library import engine_run

    package = Path(__file__).resolve().parent.parent / "pytest_bindconform"
    other = tmp_path / "other"
    shutil.copytree(package, other / "pytest_bindconform", ignore=shutil.ignore_patterns("*.pyc"))
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "speed.bind.yaml").write_text(SUITE)
    figures = engine_run(cases, other)
    assert figures["tree"] == str((other / "pytest_bindconform").resolve())
    assert figures["foreign"] == [] and sum(figures["counts"].values()) > 0
    (other / "pytest_bindconform" / "ownerpool.py").unlink()  # probe.py still imports it
    with pytest.raises(SystemExit, match="loaded modules of another checkout"):
        engine_run(cases, other)
