"""pytest-bindconform: what does bind() really do on this operating system?"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pytest-bindconform")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
