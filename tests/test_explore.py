"""Exploration with real sockets: quiet on this host, and a wrong model is caught,
shrunk to a minimal sequence and written as a case file the plugin can run."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_bindconform import cases, explore
from pytest_bindconform.host import fingerprint
from pytest_bindconform.models import ModelSocket, for_os
from pytest_bindconform.models.base import Event
from pytest_bindconform.models.cells import model_host
from pytest_bindconform.ports import PortAllocator, worker_slice
from pytest_bindconform.runner import Context, execute

HOST = fingerprint()
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
# Below the cells' default range, disjoint from tests/test_models.py's ports.
PORTS = worker_slice(16000, 17999, _WORKER, 4)


def everything_binds(
    existing: Sequence[ModelSocket], new: ModelSocket, call: str, history: Sequence[Event]
) -> str:
    """A deliberately wrong model: the host OS's, except that ports never conflict."""
    outcome = for_os(HOST.os)(existing, new, call, history)
    return "ok" if outcome == "INUSE" else outcome


def test_a_bounded_derandomized_run_finds_nothing(tmp_path: Path) -> None:
    result = explore.run(HOST, 50, None, True, tmp_path, ports=PORTS)
    assert result.found == [] and result.divergences == [], result.found
    assert result.unreproduced == [] and result.interference == 0
    assert result.examples >= 50 and result.sequences > 0
    assert result.seed is None  # derandomized: nothing to report
    assert not list(tmp_path.iterdir())


def test_a_wrong_model_gives_a_minimal_case_file_the_plugin_runs(tmp_path: Path) -> None:
    lines: list[str] = []
    result = explore.run(
        HOST,
        300,
        7,
        False,
        tmp_path,
        ports=PORTS,
        model=everything_binds,
        say=lines.append,
        max_findings=1,
    )
    assert result.seed == 7
    (path,) = result.divergences
    assert path.parent == tmp_path and path.name.endswith(cases.SUFFIX)
    assert lines == [f"bindconform explore: divergence, minimal case written to {path}"]
    suite = cases.load_suite(path)
    os_ = HOST.os
    assert {o.id: o.kind for o in suite.oracles.values()} == {
        f"{os_}-measured": "measured",
        f"{os_}-model": "model",
    }
    (cell,) = suite.cells
    # Shrunk: two binds of the simplest socket there is (IPv4 TCP, no option, wildcard).
    assert [str(s) for s in cell.steps] == ["bind a", "bind b"]
    for spec in cell.sockets:
        assert (spec.family, spec.type, spec.options, spec.address) == (
            "inet",
            "stream",
            (),
            "wildcard",
        )
    expected = {e.oracle: e.outcome for e in cell.expectations}
    assert expected == {f"{os_}-measured": "INUSE", f"{os_}-model": "ok"}
    # The plugin's own runner reproduces the measured expectation on this host.
    ctx = Context(HOST, {os_: f"{os_}-measured"}, PortAllocator(HOST, PORTS))
    record = execute(cell, suite, ctx)
    assert record["status"] == "pass", record["reason"]
    assert record["verdicts"][f"{os_}-model"] == "disagree"


def test_a_seed_reproduces_the_same_finding(tmp_path: Path) -> None:
    runs = [
        explore.run(
            HOST,
            200,
            11,
            False,
            tmp_path / str(i),
            ports=PORTS,
            model=everything_binds,
            say=None,
            max_findings=1,
        )
        for i in range(2)
    ]
    first, second = (r.divergences for r in runs)
    assert [p.name for p in first] == [p.name for p in second] != []
    assert first[0].read_text() == second[0].read_text()


def test_findings_of_one_kind_are_reported_once(tmp_path: Path) -> None:
    result = explore.run(
        HOST, 400, 3, False, tmp_path, ports=PORTS, model=everything_binds, say=None, max_findings=3
    )
    titles = [cases.load_suite(p).title for p in result.divergences]
    assert len(titles) == len(set(titles)) == len(result.divergences) >= 2


def test_only_what_the_host_offers_is_drawn() -> None:
    host = replace(
        model_host("linux"),
        ipv6=False,
        options=("SO_REUSEADDR",),
        addresses={"inet": ("127.0.0.1",), "inet6": ()},
    )
    places, option_sets = explore.socket_choices(host)
    assert places == [("inet", "wildcard", None), ("inet", "specific", None)]
    assert option_sets == [(), ("SO_REUSEADDR",)]


def test_the_model_default_is_the_host_os() -> None:
    with pytest.raises(ValueError, match="no model"):
        for_os("plan9")


def says_unknown_to_every_bind(
    existing: Sequence[ModelSocket], new: ModelSocket, call: str, history: Sequence[Event]
) -> str:
    """A model that claims nothing about binds: exploration must compare nothing there."""
    return "unknown" if call == "bind" else for_os(HOST.os)(existing, new, call, history)


def test_exploration_compares_only_claims_and_counts_the_rest(tmp_path: Path) -> None:
    """An 'unknown' prediction is no divergence, however the host answers; the run says how
    many steps went unclaimed (here every bind, so never fewer than the sequences)."""
    result = explore.run(
        HOST, 40, 5, False, tmp_path, ports=PORTS, model=says_unknown_to_every_bind, say=None
    )
    assert result.found == [] and result.divergences == [] and not list(tmp_path.iterdir())
    assert result.steps >= result.unclaimed >= result.sequences > 0
    assert f"{result.unclaimed} of {result.steps} steps unclaimed" in result.summary()
    # With the real model, unclaimed steps are counted too, and a claim is still compared.
    real = explore.run(HOST, 20, None, True, tmp_path / "real", ports=PORTS, say=None)
    assert real.steps > 0 and 0 <= real.unclaimed <= real.steps


def test_a_counterexample_is_written_with_lf_even_where_text_mode_writes_crlf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows' text mode turns '\\n' into '\\r\\n' unless newline='\\n' is passed: simulate it."""
    original = Path.write_text

    def windows_text_mode(self: Path, data: str, *args: object, **kwargs: object) -> int:
        newline = kwargs.pop("newline", None)
        if newline is None:
            data = data.replace("\n", "\r\n")
        return original(self, data, *args, newline="", **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", windows_text_mode)
    found = explore.Divergence(
        (explore.Step("bind", "a"), explore.Step("bind", "b")),
        (
            explore.SocketSpec("a", "inet", "stream", None, (), "wildcard"),
            explore.SocketSpec("b", "inet", "stream", None, (), "wildcard"),
        ),
        "INUSE",
        "ok",
    )
    path = explore.write_case(found, HOST, "Found in a test", tmp_path)
    data = path.read_bytes()
    assert b"\r\n" not in data and data.count(b"\n") > 10
    assert data.decode("utf-8") == explore.case_text(found, HOST, "Found in a test")
