"""A hostile neighbour must never turn into a verdict (issue 12, items 1-2).

First the exact races, staged deterministically through the port allocator (the
neighbour's socket lives in this process, but it is none of the cell's: to the
kernel it is someone else's). Then the short form of bench/bench_hostile.py: real
neighbour processes that hold, race for, share and blast the run's ports, inside a
private network namespace; every cell must give the clean run's verdict or an
interference error.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from pytest_bindconform import ownerpool
from pytest_bindconform.cases import load_suite
from pytest_bindconform.host import fingerprint, os_family
from pytest_bindconform.model import Cell, Suite
from pytest_bindconform.ports import Interference, PortAllocator, worker_slice
from pytest_bindconform.runner import Context, execute, prove_after

HOST = fingerprint()
OS = os_family()
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
PORTS = worker_slice(15000, 15399, _WORKER, 4)  # no other test uses these (test_xdist: 30000+)
ROOT = Path(__file__).resolve().parent.parent
linux_only = pytest.mark.skipif(OS != "linux", reason="Linux's SO_REUSEADDR sharing rules")

HEADER = """\
format: 1
id: hostile
title: hostile
references: []
oracles: {here: {kind: measured, source: this test, applies: {os: linux}}}
cases:
"""  # every case below is written after it (run_cell)

CASE = """\
  - id: share
    sockets:
      a: {type: dgram, options: [SO_REUSEADDR], address: "127.0.0.1"}
      b: {type: dgram, options: [SO_REUSEADDR], address: wildcard, owner: OWNER}
    steps: [bind a, bind b]
    expect: {here: ok}
"""


class Neighbour(PortAllocator):
    """Puts a foreign socket on the port the allocator hands out (after its proof), at
    `address`, for the first `times` cells; it leaves just before any proof after the
    cell, which is exactly when a careless check would look."""

    def __init__(
        self, address: str, times: int, share: bool = False, kind: int = socket.SOCK_DGRAM
    ):
        super().__init__(HOST, PORTS)
        self.address, self.times, self.share, self.kind = address, times, share, kind
        self.sock: socket.socket | None = None

    def take(self, prove: bool = False, kinds: Iterable[tuple[str, str]] = ()) -> int:
        port = super().take(prove, kinds) if kinds else super().take(prove)
        if self.times > 0:
            self.times -= 1
            self.sock = socket.socket(socket.AF_INET, self.kind)
            if self.share:  # joins the cell's SO_REUSEPORT group (same user)
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            self.sock.bind((self.address, port))
        return port

    def leave(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def free(self, port: int, kinds: Iterable[tuple[str, str]] = ()) -> bool:
        self.leave()  # a proof after the cell (how the runner once checked)
        return super().free(port, kinds) if kinds else super().free(port)

    def prove(self, port: int, kinds: Iterable[tuple[str, str]], when: str) -> None:
        if when.startswith("after"):
            self.leave()
        super().prove(port, kinds, when)


def run_cell(
    tmp_path: Path, neighbour: Neighbour, owner: str = "self", case: str = CASE
) -> dict[str, Any]:
    path = tmp_path / "hostile.bind.yaml"
    path.write_text(HEADER + case.replace("OWNER", owner))
    suite: Suite = load_suite(path)
    (cell,) = suite.cells
    cell_: Cell = cell
    try:
        return execute(cell_, suite, Context(HOST, {OS: "here"}, neighbour))
    finally:
        neighbour.leave()


@linux_only
def test_a_neighbour_on_the_first_bind_is_interference_and_the_cell_moves_on(
    tmp_path: Path,
) -> None:
    """The first bind on a fresh port can only meet someone else's socket."""
    record = run_cell(tmp_path, Neighbour("127.0.0.1", times=1))
    assert record["status"] == "pass", record["reason"]
    assert record["observed"]["outcome"] == "ok"


@linux_only
def test_a_neighbour_every_time_is_an_interference_error_naming_what_it_saw(
    tmp_path: Path,
) -> None:
    record = run_cell(tmp_path, Neighbour("127.0.0.1", times=99))
    assert record["status"] == "error"
    assert record["reason"].startswith("interference: ")
    assert "first bind (a) failed with EADDRINUSE" in record["reason"]
    assert record["reason"].count("port ") >= 3  # every try is named


@linux_only
def test_a_neighbour_during_the_child_start_up_is_caught_before_the_binds(
    tmp_path: Path,
) -> None:
    """Forking an owner takes milliseconds: a socket that appears meanwhile on another
    address (b's wildcard meets it, a does not) and leaves before the cell ends would
    make b's bind fail for a reason that is none of the cell's."""
    record = run_cell(tmp_path, Neighbour("127.0.0.2", times=1), owner="process")
    assert record["status"] == "pass", record["reason"]
    stubborn = run_cell(tmp_path, Neighbour("127.0.0.2", times=99), owner="process")
    assert stubborn["status"] == "error"
    assert "once the cell's child processes were ready" in stubborn["reason"]
    assert "an exclusive inet/dgram bind of port" in stubborn["reason"]


SHARED = """\
  - id: share
    sockets:
      a: {type: dgram, options: [SO_REUSEPORT], address: wildcard}
      b: {type: dgram, options: [SO_REUSEPORT], address: wildcard}
    steps: [bind a, bind b]
    expect: {here: ok}
"""


@linux_only
def test_a_sharer_that_takes_every_datagram_is_not_a_receiver_none(tmp_path: Path) -> None:
    """A same-user SO_REUSEPORT socket on 127.0.0.1 matches the probe's datagrams better
    than the cell's wildcards: it takes them all, then leaves before the proof after."""
    record = run_cell(tmp_path, Neighbour("127.0.0.1", times=1, share=True), case=SHARED)
    assert record["status"] == "pass", record["reason"]
    assert record["observed"]["delivery"]["receiver"] in ("a", "b", "both")
    (note,) = record["confounded_tries"]
    assert "reached no socket of the cell" in note and "took it" in note


CONNECTS = """\
  - id: bound-client
    sockets:
      s: {type: stream, address: "127.0.0.1"}
      c: {type: stream, options: [SO_REUSEADDR], address: "127.0.0.2"}
    steps: [bind s, listen s, bind c, connect c s]
    test: connect c s
    expect: {here: EXPECT}
"""


@linux_only
@pytest.mark.parametrize("expect", ["ok", "INUSE"])
def test_a_neighbour_on_a_later_bind_of_a_connecting_cell_is_no_verdict(
    tmp_path: Path, expect: str
) -> None:
    """A connecting cell leaves TIME_WAIT, so no proof after it can look for a foreign
    socket: a neighbour on the client's address fails its bind (and the connect then goes
    out from an ephemeral port and succeeds). Whatever the oracle says (ok: it would be a
    false pass; INUSE: a false fail), the cell runs again on a fresh port, differs there,
    and is an interference error."""
    neighbour = Neighbour("127.0.0.2", times=1, kind=socket.SOCK_STREAM)
    record = run_cell(tmp_path, neighbour, case=CONNECTS.replace("EXPECT", expect))
    assert record["status"] == "error", record["reason"]
    assert record["reason"].startswith("interference: ")
    assert "ran otherwise on a fresh port" in record["reason"]
    assert set(record["verdicts"].values()) == {"not-run"}


@linux_only
def test_a_disagreement_the_host_repeats_stays_a_failure(tmp_path: Path) -> None:
    case = CONNECTS.replace("EXPECT", "INUSE")
    record = run_cell(tmp_path, Neighbour("127.0.0.2", times=0), case=case)
    assert record["status"] == "fail", record["reason"]
    assert "(the same again on a fresh port)" in record["reason"]


def test_the_proof_after_a_cell_waits_for_child_owners_only_when_it_must(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A port found free needs no wait for the child owners' resets; one found held is
    proved again after that wait, and held still, it is someone else's: interference."""
    allocator = PortAllocator(HOST, PORTS)
    ctx = Context(HOST, {}, allocator)
    port = allocator.take(prove=True)
    kinds = {("inet", "dgram")}
    childs = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # closed by its owner's reset
    childs.bind(("127.0.0.1", port))
    waits: list[str] = []
    monkeypatch.setattr(ownerpool, "settle", lambda: (waits.append("settle"), childs.close()))
    prove_after(ctx, [port], kinds, unsettled=True, early=True)
    assert waits == ["settle"]  # held at first: proved again after the wait, free then
    prove_after(ctx, [port], kinds, unsettled=True, early=True)
    assert waits == ["settle"]  # free at once: no wait
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as foreign:
        foreign.bind(("127.0.0.1", port))
        with pytest.raises(Interference, match="after the cell closed its sockets"):
            prove_after(ctx, [port], kinds, unsettled=True, early=True)
        assert waits == ["settle"] * 2
        with pytest.raises(Interference):
            prove_after(ctx, [port], kinds, unsettled=True, early=False)
        assert waits == ["settle"] * 3  # not early: the wait comes before the proof
        with pytest.raises(Interference):
            prove_after(ctx, [port], kinds, unsettled=False, early=False)
        assert waits == ["settle"] * 3


CONFLICT = """\
  - id: conflict
    sockets:
      a: {type: dgram, address: "127.0.0.1"}
      b: {type: dgram, address: "127.0.0.1", owner: process}
    steps: [bind a, bind b]
    expect: {here: INUSE}
"""


class Latecomer(Neighbour):
    """Binds 127.0.0.2 on the cell's port just after the proof made once the child owners
    are ready (b's wildcard proof meets it, the cell's binds on 127.0.0.1 do not), for
    the first `times` cells, and stays until the cell is over."""

    def take(self, prove: bool = False, kinds: Iterable[tuple[str, str]] = ()) -> int:
        return PortAllocator.take(self, prove, kinds) if kinds else PortAllocator.take(self, prove)

    def prove(self, port: int, kinds: Iterable[tuple[str, str]], when: str) -> None:
        PortAllocator.prove(self, port, kinds, when)
        if when.startswith("once") and self.times > 0:
            self.times -= 1
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((self.address, port))


@linux_only
def test_a_child_owners_failed_bind_is_proved_after_without_waiting_for_its_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usual child-owner cell: the child's bind fails, so its sockets hold no port and
    the proof after the cell need not wait for its reset. A neighbour that came during
    the cell and stays is still caught by that proof, after the wait."""
    waits: list[str] = []
    real = ownerpool.settle
    monkeypatch.setattr(ownerpool, "settle", lambda: (waits.append("settle"), real()))
    record = run_cell(tmp_path, Latecomer("127.0.0.2", times=0), case=CONFLICT)
    assert record["status"] == "pass", record["reason"]
    assert waits == []
    record = run_cell(tmp_path, Latecomer("127.0.0.2", times=1), case=CONFLICT)
    assert record["status"] == "pass", record["reason"]  # on a fresh port, where none came
    (note,) = record["confounded_tries"]
    assert "after the cell closed its sockets" in note and "another process held it" in note
    assert waits == ["settle"]  # held at first: proved again after the reset, held still


# -- the short form of bench/bench_hostile.py ---------------------------------------------


def test_hostile_neighbours_give_no_false_verdict() -> None:
    """Real neighbour processes in a private namespace: 0 false verdicts per pattern, and
    each pattern really confounded cells (else this test could not fail)."""
    if OS != "linux" or os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) on Linux for a private namespace")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_hostile.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    assert set(figures["patterns"]) == {"hold", "race", "share", "blast"}
    for name, row in figures["patterns"].items():
        assert row["false_verdicts"] == 0, (name, row["false"])
        assert row["cells"] == figures["cells"]
        assert row["confounded"] > 0, f"the {name} neighbour never touched a cell"
        for reason in row["errors"]:
            assert reason.startswith("interference: "), reason
