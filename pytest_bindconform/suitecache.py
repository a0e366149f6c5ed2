"""Reuse a validated, expanded suite while neither the file nor the engine changed
(and, through cached(), the shipped library profiles: libraries/loader.py).

Validating and expanding a few thousand cells costs seconds of pure Python;
collection should not. The key covers the file's bytes, its display name and
the source of every module that shapes a Suite, so a stale entry cannot be
read. Only valid files are cached: a broken one is reported afresh each time.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import pickle
import sys
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TypeVar

from . import atomic, cases
from .model import Suite

T = TypeVar("T")

_SHAPING = (
    "cases.py",
    "goals.py",
    "candidates.py",
    "model.py",
    "yamlsrc.py",
    "oracles.py",
    "schema/case.schema.json",
)


@cache
def _engine_digest() -> bytes:
    digest = hashlib.sha256(sys.version.encode())
    package = resources.files("pytest_bindconform")
    for name in _SHAPING:
        digest.update(package.joinpath(name).read_bytes())
    return digest.digest()


def cache_dir() -> Path:
    override = os.environ.get("BINDCONFORM_CACHE_DIR")
    if override:
        return Path(override)
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "pytest-bindconform"


def _unpickle(data: bytes) -> object:
    """Thousands of small frozen objects: the cyclic GC would rescan them for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return pickle.loads(data)
    finally:
        if enabled:
            gc.enable()


def load(path: Path | str, display: str | None = None) -> Suite:
    """cases.load_suite, through the cache (set BINDCONFORM_CACHE_DIR=off to bypass)."""
    if os.environ.get("BINDCONFORM_CACHE_DIR") == "off":
        return cases.load_suite(path, display)
    name = display or str(path)
    raw = cases.read_case_file(path, name)
    # surrogatepass: a file name that is not UTF-8 still makes a key (the plugin reports it)
    key = _engine_digest() + name.encode("utf-8", "surrogatepass") + b"\0" + raw
    return cached(key, Suite, lambda: cases.parse_suite(raw, name))


def cached(key: bytes, kind: type[T], make: Callable[[], T]) -> T:
    """make()'s value, stored under key (a digest of everything it depends on) the first
    time and read back afterwards; an error make() raises is never stored."""
    if os.environ.get("BINDCONFORM_CACHE_DIR") == "off":
        return make()
    entry = cache_dir() / f"{hashlib.sha256(key).hexdigest()}.pickle"
    with contextlib.suppress(OSError, pickle.PickleError, EOFError, AttributeError, TypeError):
        value = _unpickle(entry.read_bytes())
        if isinstance(value, kind):
            return value
    value = make()
    _store(entry, value)
    return value


def _store(entry: Path, value: object) -> None:
    """Best effort: a cache that cannot be written (read-only, held open) is only slower."""
    with contextlib.suppress(OSError, pickle.PickleError):
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        _sweep_once(entry.parent)
        atomic.write(entry, data, sync=False)


@cache
def _sweep_once(directory: Path) -> None:
    atomic.sweep(directory)
