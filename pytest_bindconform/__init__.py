"""pytest-bindconform: what does bind() really do on this operating system?"""

from typing import Any


def __getattr__(name: str) -> Any:
    """__version__, read from the installed metadata when first asked for: importlib.metadata
    costs a socket owner's small interpreter (owner.py) ~0.1 s and ~5 MB, and a bigger
    helper takes longer to kill (a cell's crash step)."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("pytest-bindconform")
    except PackageNotFoundError:  # running from a source tree that is not installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found
