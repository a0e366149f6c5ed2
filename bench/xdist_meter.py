"""pytest plugin for bench_library.py: what crosses from xdist workers to the controller.

Loaded on the controller with `-p xdist_meter` (bench/ on PYTHONPATH). Every event a
worker sends is counted and re-serialised with execnet's own serializer (the bytes the
channel carried); per event kind and in total. Also counts the records and
user_properties that ride on setup/teardown reports. Totals go to $XDIST_METER_OUT
as JSON at the end of the session.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import pytest

_messages: Counter[str] = Counter()
_bytes: Counter[str] = Counter()
_side: Counter[str] = Counter()  # setup/teardown reports carrying user_properties or records


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    try:
        import execnet
        from xdist.workermanage import WorkerController
    except ImportError:
        return
    original = WorkerController.process_from_remote

    def metered(self: Any, eventcall: Any) -> None:
        if isinstance(eventcall, tuple):
            name, kwargs = eventcall
            _messages[name] += 1
            _bytes[name] += len(execnet.dumps(eventcall))
            data = kwargs.get("data") if name == "testreport" else None
            if isinstance(data, dict) and data.get("when") in ("setup", "teardown"):
                if data.get("user_properties"):
                    _side["with_user_properties"] += 1
                if data.get("bindconform"):
                    _side["with_record"] += 1
        original(self, eventcall)

    WorkerController.process_from_remote = metered  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    out = os.environ.get("XDIST_METER_OUT")
    if out and not hasattr(config, "workerinput"):
        with open(out, "w") as fh:
            json.dump({"messages": _messages, "bytes": _bytes, "side": _side}, fh)
