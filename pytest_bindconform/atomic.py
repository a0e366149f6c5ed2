"""Files written whole or not at all, and the temporaries a killed run leaves behind.

A file is written to a temporary beside it and renamed over the target, so a
reader never sees half of it. A run killed between the two leaves the
temporary; its name says whose it is (`.<target>.<pid>.<random>.bindconform-tmp`),
so a later run removes it and never anybody else's file. On Windows a rename
over a file another process holds open fails with PermissionError for a moment
(another xdist worker reading the same cache entry): it is retried, and the
temporary is removed whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

SUFFIX = ".bindconform-tmp"
STALE_AFTER = 600.0  # seconds: no write takes that long, whoever the writer is
RETRIES = (0.01, 0.03, 0.1, 0.3)  # seconds between attempts at a refused rename


def _prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}."


def write(target: Path, data: bytes, mode: int | None = None, sync: bool = True) -> bool:
    """Write data to target atomically; False if the rename stayed refused (PermissionError).

    mode: permission bits for the new file (default: mkstemp's 0600)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(target), suffix=SUFFIX, dir=target.parent)
    try:
        if mode is not None:
            os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())  # the rename must not reach the disk before the data
        for pause in (*RETRIES, None):
            try:
                os.replace(tmp, target)
                return True
            except PermissionError:
                if pause is None:
                    return False
                time.sleep(pause)
        return False  # pragma: no cover (the loop always returns)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # gone already after a rename


def _writer_gone(name: str) -> bool:
    """POSIX: the pid in the name runs no more (Windows' os.kill would terminate it)."""
    if sys.platform == "win32":
        return False
    pid_text = name[: -len(SUFFIX)].rsplit(".", 2)[-2]
    if not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, someone else's
    return False


def sweep(directory: Path, target_name: str = "") -> list[Path]:
    """Remove this plugin's temporaries left in directory by runs that died.

    Only names this module makes (for target_name, when given); only when the
    writer's process is gone or the file is older than STALE_AFTER."""
    removed = []
    prefix = f".{target_name}." if target_name else "."
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(SUFFIX)):
                continue
            with contextlib.suppress(OSError):
                age = now - entry.stat(follow_symlinks=False).st_mtime
                if entry.is_file(follow_symlinks=False) and (
                    age > STALE_AFTER or (age > 5 and _writer_gone(name))
                ):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed
