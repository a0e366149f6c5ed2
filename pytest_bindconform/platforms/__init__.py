"""What differs per OS, in one place (psutil-style): one module per OS family.

linux.py, windows.py, darwin.py and freebsd.py each offer the same names
(_common.API; tests/test_platforms.py checks it): error codes, how long the OS
takes to refuse a loopback connect, the linger struct, privilege, the facts
read from the host (versions, port ranges, loopback addresses), how a socket
owner of another process or user is started, and isolation. The module for
this machine is picked once, here, at import.
"""

from __future__ import annotations

import sys
from types import ModuleType

from . import darwin, freebsd, linux, windows
from ._common import API, Facts, LiveSystem, System

MODULES: dict[str, ModuleType] = {
    "linux": linux,
    "windows": windows,
    "darwin": darwin,
    "freebsd": freebsd,
}


def family(platform: str = sys.platform) -> str:
    """sys.platform -> the OS family name used everywhere (reports, gates, models)."""
    if platform.startswith("win"):
        return "windows"
    if platform == "darwin":
        return "darwin"
    if platform.startswith("freebsd"):
        return "freebsd"
    return "linux"


def for_os(name: str) -> ModuleType:
    if name not in MODULES:
        raise ValueError(f"no platform module for {name!r}; known: {', '.join(MODULES)}")
    return MODULES[name]


NAME = family()
current: ModuleType = MODULES[NAME]

__all__ = ["API", "MODULES", "NAME", "Facts", "LiveSystem", "System", "current", "for_os"]
