"""Library profiles: what popular socket libraries set on their listening socket, per OS.

A profile is data (``data/*.yaml``, validated by ``library.schema.json``): one entry per
library call, the raw options it sets per OS family, and the public source line that sets
them. An OS family a profile leaves out is unknown, never assumed. For the Python standard
library of this host, :func:`factory` returns the real call, so a profile can also be
checked against what the kernel reports (``readback.py``).
"""

from __future__ import annotations

from .factories import factory
from .loader import LibraryProfile, load_file, profiles

__all__ = ["LibraryProfile", "factory", "load_file", "profiles"]
