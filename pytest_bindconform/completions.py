"""xdist: a held cell's "done" rides with its report (pytest side, with relay.py).

After every item an xdist worker tells the controller it is done
(runtest_protocol_complete), so that the scheduler can send it more. That is one message
per cell, and each one is unpacked in Python on the controller: on the library at 4x,
a fifth of the controller's CPU (docs/speed.md). When relay.py holds a cell's report
back, the cell's completion is held too. It rides on the same message as the report.
The controller hands it to the scheduler, as xdist itself would
(sched.mark_test_complete), after it has replayed the reports. So the scheduler never
learns that a cell is done before it has the cell's report.

A worker with nothing left in its queue sends what it holds at once, before it would
wait for more: the scheduler then sends more while the worker runs the cell it has
already taken (xdist takes the next item before running one). So a worker never waits
for work the scheduler would have sent had it known.

A worker that dies holds completions the scheduler never saw, and xdist names the
first pending cell as the one that crashed the worker: one of those, wrongly. So the
worker writes the indices it holds to a small file (its ledger). When the worker goes
down, the controller reads the ledger and marks those cells done. Their reports were
lost with the worker, so they are reported with no result, as before. xdist then names
the cell that was really running. A remote worker's ledger (`--tx ssh=...`) is out of
the controller's reach: there the name may be wrong.
"""

from __future__ import annotations

import contextlib
import struct
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import pytest

DONE = "bindconform_done"  # on a report: the held cells' completions, [[index, duration]...]
COMPLETE = "runtest_protocol_complete"
WORKER = "bindconform-completions"
_INT = struct.Struct("<I")


def ledger_path(testrunuid: str, workerid: str) -> Path:
    return Path(tempfile.gettempdir()) / f"bindconform-{testrunuid}-{workerid}.held"


class Worker:
    """Holds the completions of the cells whose reports relay.py holds."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.completions: list[tuple[int, float]] = []
        self._hold_next = False
        self._queue: Any = None  # xdist's TestQueue of item indices still to run
        self._path: Path | None = None
        self._ledger: BinaryIO | None = None  # opened at the first hold, unbuffered

    def pytest_sessionstart(self) -> None:
        interactor = next(
            (
                p
                for p in self.config.pluginmanager.get_plugins()
                if type(p).__name__ == "WorkerInteractor" and hasattr(p, "sendevent")
            ),
            None,
        )
        queue = getattr(interactor, "torun", None)
        if interactor is None or not hasattr(queue, "_items"):
            return  # another xdist: nothing is held; reports and completions go as it sends them
        info = self.config.workerinput  # type: ignore[attr-defined]
        self._path = ledger_path(info["testrunuid"], info["workerid"])
        self._queue = queue
        send = interactor.sendevent

        def sendevent(name: str, **kwargs: Any) -> None:
            if name == COMPLETE and self._hold_next:
                self._hold_next = False
                self._hold(int(kwargs["item_index"]), float(kwargs["duration"]))
                return
            send(name, **kwargs)

        interactor.sendevent = sendevent

    def may_hold(self) -> bool:
        """Whether a report may be held now: a completion can be held with it, and more
        cells are queued (replaced, not changed, when the scheduler steals some)."""
        return self._queue is not None and len(self._queue._items) > 0

    def hold_next(self) -> None:
        """The next completion xdist sends (this cell's) is held with its report."""
        self._hold_next = True

    def _hold(self, index: int, duration: float) -> None:
        self.completions.append((index, duration))
        self._write_at(_INT.size * len(self.completions), index)
        self._write_at(0, len(self.completions))  # the count last: a torn write counts less

    def take(self) -> list[tuple[int, float]]:
        """The held completions, to ride on the report that goes out now."""
        taken, self.completions = self.completions, []
        if taken:
            self._write_at(0, 0)
        return taken

    def _write_at(self, offset: int, value: int) -> None:
        """Straight to the file (no buffer): what a worker that dies wrote is there.
        Seek and write, not os.pwrite: Windows has none."""
        if self._ledger is None:
            assert self._path is not None
            self._ledger = open(self._path, "w+b", buffering=0)  # noqa: SIM115 (kept open)
        self._ledger.seek(offset)
        self._ledger.write(_INT.pack(value))

    def pytest_unconfigure(self) -> None:
        if self._ledger is not None and self._path is not None:
            self._ledger.close()
            with contextlib.suppress(OSError):
                self._path.unlink()


def mark_done(config: pytest.Config, node: Any, done: list[Any]) -> None:
    """Controller: what xdist's own runtest_protocol_complete handler does, per cell."""
    dsession = config.pluginmanager.get_plugin("dsession")
    if dsession is None or dsession.sched is None:
        return
    for index, duration in done:
        dsession.sched.mark_test_complete(node, index, duration)


def read_ledger(path: Path) -> list[int]:
    """The item indices a dead worker held completions for ([] if it held none)."""
    try:
        data = path.read_bytes()
    except OSError:
        return []
    count = _INT.unpack_from(data)[0] if len(data) >= _INT.size else 0
    return [
        _INT.unpack_from(data, _INT.size * (i + 1))[0]
        for i in range(count)
        if len(data) >= _INT.size * (i + 2)
    ]


class Controller:
    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Before xdist picks the crashed cell (the first still pending): the cells the
        worker had finished, as its ledger says, are done."""
        info = getattr(node, "workerinput", None)
        if not info:
            return
        path = ledger_path(info["testrunuid"], info["workerid"])
        held = read_ledger(path) if error is not None else []
        with contextlib.suppress(OSError):
            path.unlink()
        if held:
            with contextlib.suppress(KeyError, ValueError):  # already gone: xdist decides
                mark_done(node.config, node, [(index, 0.0) for index in held])
