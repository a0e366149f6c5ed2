"""pytest plugin for bench_library.py: the library with its engine taken out.

`-p replay_engine` (bench/ on PYTHONPATH) wraps runner.execute. With
$BENCH_RECORDS_SAVE set, every cell runs for real and its record is saved there at
exit (an untimed run). With $BENCH_RECORDS set, the saved records are loaded at start
and each cell gets its own back instead of running: the sockets, probes and helpers
cost nothing, and what is left is the pytest side of a cell (the item, its protocol and
reports, the recorder, the report files). Against the bare-item floor, that says how
much of the library's ratio the engine itself is.
"""

from __future__ import annotations

import atexit
import os
import pickle
from typing import Any

from pytest_bindconform import runner

_real = runner.execute
_save = os.environ.get("BENCH_RECORDS_SAVE", "")
_load = os.environ.get("BENCH_RECORDS", "")
_records: dict[str, Any] = {}
if _load:
    with open(_load, "rb") as f:
        _records = pickle.load(f)  # each record unpickled when its cell asks (a few µs)


def _key(cell: Any, suite: Any) -> str:
    return f"{suite.path}::{cell.name}"


def execute(cell: Any, suite: Any, ctx: Any) -> dict[str, Any]:
    if _load:
        data = _records.pop(_key(cell, suite), None)  # each cell runs once per run
        if data is not None:
            return pickle.loads(data)  # type: ignore[no-any-return]
    record = _real(cell, suite, ctx)
    if _save:
        _records[_key(cell, suite)] = pickle.dumps(record)  # as made, before anyone adds
    return record


def _write() -> None:
    with open(_save, "wb") as f:
        pickle.dump(_records, f)


runner.execute = execute
if _save:
    atexit.register(_write)
