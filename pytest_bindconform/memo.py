"""Work done once per shape: a bounded cache keyed by the identity of what a value is
made of (runner.py, plan.py).

Cells share their sockets, steps and expectations (cases._shared), and the suite, host
and profiles live for the whole run, so an id is a key that costs nothing to hash where
hashing the frozen dataclasses themselves was most of a lookup. Each entry keeps its
objects, so that no id is reused while the entry lives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Memo(Generic[T]):
    def __init__(self, limit: int = 20_000):
        self.limit = limit  # many runs in one process (pytester): stay bounded
        self._entries: dict[tuple[Any, ...], tuple[tuple[Any, ...], T]] = {}

    def get(self, objects: tuple[Any, ...], make: Callable[[], T], *values: Any) -> T:
        """make()'s value for these objects (by identity) and plain values (by equality)."""
        key = (*map(id, objects), *values)
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) > self.limit:
                self._entries.clear()
            entry = self._entries[key] = (objects, make())
        return entry[1]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
