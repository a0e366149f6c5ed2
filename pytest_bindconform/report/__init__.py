"""One report model (the JSON document), several renderers, and the cross-host merge."""

from .book import Book

__all__ = ["Book"]
