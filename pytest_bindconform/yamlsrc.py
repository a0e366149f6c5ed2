"""Load YAML safely and remember where every value came from.

PyYAML keeps the last of two equal keys without a word; a conformance suite
must not lose an expectation that way, so duplicates are errors here. Every
node's position is kept so that any later error can name file, line and column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class CaseError:
    file: str
    line: int  # 1-based
    column: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class CaseFileError(Exception):
    """A case file that cannot be used; carries every problem found in it."""

    def __init__(self, errors: list[CaseError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass
class Located:
    """Parsed YAML plus the position of each value (and of each mapping key)."""

    data: Any
    values: dict[Path, tuple[int, int]]
    keys: dict[Path, tuple[int, int]]

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Closest known position of path (walking up to its parents)."""
        table = self.keys if key and path in self.keys else self.values
        probe = path
        while probe not in table and probe:
            probe = probe[:-1]
            table = self.values
        return table.get(probe, (1, 1))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load(text: str, filename: str) -> Located:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or str(exc)
        context = f" ({exc.context})" if exc.context else ""
        raise CaseFileError(
            [CaseError(filename, line, col, f"YAML syntax error: {problem}{context}")]
        ) from None
    except yaml.YAMLError as exc:
        raise CaseFileError([CaseError(filename, 1, 1, f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    located = Located(None, {}, {})
    errors: list[CaseError] = []

    def build(node: yaml.Node, path: Path) -> Any:
        located.values[path] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            seen: dict[Any, tuple[int, int]] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node, deep=True)
                if key == "<<":
                    errors.append(
                        CaseError(filename, *_mark(key_node), "YAML merge keys (<<) are not supported")
                    )
                    continue
                if not isinstance(key, str | int | float | bool) and key is not None:
                    errors.append(CaseError(filename, *_mark(key_node), "mapping keys must be scalars"))
                    continue
                if key in seen:
                    first = seen[key]
                    errors.append(
                        CaseError(
                            filename,
                            *_mark(key_node),
                            f"duplicate key {key!r} (first at line {first[0]}); "
                            "YAML would silently keep only the last one",
                        )
                    )
                    continue
                seen[key] = _mark(key_node)
                child = (*path, key)
                located.keys[child] = _mark(key_node)
                result[key] = build(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*path, i)) for i, item in enumerate(node.value)]
        return loader.construct_object(node, deep=True)

    try:
        located.data = build(root, ()) if root is not None else None
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise CaseFileError([CaseError(filename, line, col, f"YAML error: {exc.problem}")]) from None
    if errors:
        raise CaseFileError(errors)
    return located
