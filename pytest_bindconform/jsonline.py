"""JSON text between this project's processes: xdist reports (relay.py) and owner helpers
(ownerpool.py, owner.py), one value per line.

orjson where it has wheels (not FreeBSD): 5-10x faster than the stdlib both ways, in C,
which on a child-owner cell's round trip is ~30 us of ~300. Otherwise the stdlib, which
reads and writes the same text (either side may use either). Neither writes a newline
inside a value; orjson writes UTF-8, so every channel is UTF-8.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Codec = tuple[Callable[[Any], str], Callable[[str | bytes], Any]]
_FOUND: list[Codec] = []


def _stdlib_encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def codec() -> Codec:
    """(encode, decode). Looked up when first needed, not at import: a helper interpreter
    starts without site-packages and is given its parent's sys.path first (owner.py)."""
    if _FOUND:
        return _FOUND[0]
    try:
        from orjson import OPT_NON_STR_KEYS, loads
        from orjson import dumps as _dumps
    except ImportError:
        return _stdlib_encode, json.loads  # not kept: a later sys.path may have orjson

    def encode(value: Any) -> str:
        return _dumps(value, option=OPT_NON_STR_KEYS).decode()

    _FOUND.append((encode, loads))
    return _FOUND[0]
