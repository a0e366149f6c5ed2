"""Controller-side ledger of records: one per collected cell, written once, atomically."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def write_atomic(path: Path, text: str) -> None:
    """Temporary file in the same directory, then rename: never a half-written report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Book:
    def __init__(self, rootpath: Path):
        self.rootpath = rootpath
        self.expected: list[str] = []
        self.records: dict[str, dict[str, Any]] = {}
        self.outcomes: dict[str, tuple[str, str]] = {}
        self.started = dt.datetime.now(dt.timezone.utc)
        self.written: list[Path] = []
        self.report: dict[str, Any] | None = None

    def expect(self, nodeids: Iterable[str]) -> None:
        for nodeid in nodeids:
            if nodeid not in self.records and nodeid not in self.expected:
                self.expected.append(nodeid)

    def add(self, nodeid: str, record: dict[str, Any]) -> None:
        self.records[nodeid] = record

    def note_outcome(self, nodeid: str, outcome: str, longrepr: str) -> None:
        self.outcomes[nodeid] = (outcome, longrepr)

    def finish(self, state: Any, outputs: dict[str, str], exitstatus: int) -> list[Path]:
        return []

    def summary_lines(self, quiet: bool) -> list[str]:
        return []
