"""How a run keeps Python's cyclic GC from rescanning what it keeps (pytest side).

A run keeps almost everything it makes until the end: thousands of immutable cells, and
per cell a record and pytest's reports. The cyclic GC's full collections walk every
tracked object each time, so their cost grows with the run: on the library at 4x they
took 3 s of a `-n 0` run and 5 s of an xdist controller's CPU (docs/speed.md).
These objects are frozen out of the GC instead (gc.freeze): after each case file is
collected, after collection, every EVERY cells while the run goes on, and at the end.
Refcounting still frees them; only a reference cycle made unreachable after it was
frozen waits for the unfreeze at cleanup.
"""

from __future__ import annotations

import atexit
import gc
from functools import cache

import pytest

FROZEN = pytest.StashKey[bool]()  # this process froze the run's objects out of the GC
COUNT = pytest.StashKey[int]()
EVERY = 1000  # cells between freezes: each costs a young-generation collection (~1 ms)


def configure(config: pytest.Config) -> None:
    """Registered before pytest's own plugins register their cleanups: runs after their
    final gc.collect() (cleanups run last first)."""
    config.add_cleanup(_unfreeze)


def after_collection(config: pytest.Config, holds_cells: bool) -> None:
    if holds_cells:
        gc.freeze()
        config.stash[FROZEN] = True


def file_collected(config: pytest.Config) -> None:
    """A case file's cells are made: collecting the library at 4x ran five full
    collections over the growing heap (0.8 s in each process)."""
    _freeze(config)


def cell_done(config: pytest.Config) -> None:
    """Once per cell in the process that keeps its record (a worker keeps it on the item,
    the controller or a -n 0 run in its book)."""
    done = config.stash[COUNT] = config.stash.get(COUNT, 0) + 1
    if done % EVERY == 0:
        _freeze(config)


def _freeze(config: pytest.Config) -> None:
    gc.collect(1)  # the young garbage goes first: what is frozen is what the run keeps
    gc.freeze()
    config.stash[FROZEN] = True


def at_unconfigure(config: pytest.Config) -> None:
    """The records and reports are written: freeze them too, so that pytest's own final
    gc.collect() calls (unraisable-exception checks) skip them; _unfreeze undoes it."""
    if config.stash.get(FROZEN, False):
        gc.freeze()
        _freeze_at_exit()


@cache
def _freeze_at_exit() -> None:
    """At interpreter exit, freeze whatever is left: the interpreter's final collections
    would otherwise walk every object of the run again, several times (about 3 s after a
    library run, in each process). Refcounting still frees them; nothing runs after."""
    atexit.register(gc.freeze)


def _unfreeze() -> None:
    """Undo the freeze: a process running several sessions (pytester) would keep each one's
    objects forever."""
    gc.unfreeze()
