"""What can be checked here of the Windows and macOS code paths."""

from __future__ import annotations

import subprocess
import sys

UNIX_ONLY = ("fcntl", "pwd", "grp", "termios", "resource")


def test_every_module_imports_without_unix_only_modules() -> None:
    """Windows has none of these; the plugin must still load there (it is an entry point)."""
    code = (
        "import sys, pkgutil, importlib, pytest_bindconform\n"
        f"for name in {UNIX_ONLY!r}: sys.modules[name] = None\n"
        "for mod in pkgutil.walk_packages(pytest_bindconform.__path__, 'pytest_bindconform.'):\n"
        "    importlib.import_module(mod.name)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# os functions that exist on POSIX only (the Python docs' "Availability: Unix")
POSIX_ONLY_OS = frozenset(
    [
        "fork",
        "forkpty",
        "pwrite",
        "pread",
        "pwritev",
        "preadv",
        "setuid",
        "setgid",
        "setgroups",
        "seteuid",
        "setegid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "getgroups",
        "killpg",
        "getpgid",
        "setsid",
        "setpgid",
        "wait3",
        "wait4",
        "WNOHANG",
        "sched_getaffinity",
        "sched_setaffinity",
        "openpty",
        "posix_spawn",
        "sendfile",
        "sync",
        "fchown",
        "chown",
        "lchown",
        "mkfifo",
        "mknod",
        "nice",
        "getloadavg",
        "sysconf",
        "pathconf",
        "statvfs",
        "register_at_fork",
        "O_NONBLOCK",
        "O_CLOEXEC",
        "memfd_create",
        "eventfd",
        "pipe2",
        "fchmod",
    ]
)


def test_only_the_platform_modules_call_posix_only_os_functions() -> None:
    """What runs on every OS (the plugin, the xdist worker's ledger) must not call an os
    function Windows lacks: it would fail only there, where nothing here runs it. The
    platform modules reach theirs through getattr, behind their OS's own module."""
    import ast
    from pathlib import Path

    import pytest_bindconform

    root = Path(pytest_bindconform.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if "platforms" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
                and node.attr in POSIX_ONLY_OS
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno}: os.{node.attr}")
    assert not found, found
