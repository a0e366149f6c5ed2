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
