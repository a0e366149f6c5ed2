"""Load YAML safely and remember where every value came from.

PyYAML keeps the last of two equal keys without a word; a conformance suite
must not lose an expectation that way, so duplicates are errors here. Case files
are plain data: a tag other than the core types is an error too (the safe loader
refuses Python objects only on scalars; here a tag on a mapping would just be
dropped). Every node's position is kept so that any later error can name file,
line and column.
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


# Plain data only. A safe loader already refuses to build Python objects from
# scalars, but a tag on a mapping or list would be dropped here without a word.
_CORE = "tag:yaml.org,2002:"
_PLAIN_TAGS = {
    yaml.MappingNode: {_CORE + "map"},
    yaml.SequenceNode: {_CORE + "seq"},
    yaml.ScalarNode: {_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp")},
}
MAX_VALUES = 200_000  # aliases can make a tiny file expand without bound


def _tag_error(node: yaml.Node, filename: str) -> CaseError | None:
    if node.tag in _PLAIN_TAGS[type(node)]:
        return None
    tag = node.tag.replace(_CORE, "!!", 1)
    return CaseError(
        filename,
        *_mark(node),
        f"YAML tag {tag!r} is not allowed: case files hold plain data only "
        "(strings, numbers, booleans, lists and mappings)",
    )


def _syntax_error(exc: yaml.MarkedYAMLError, filename: str) -> CaseError:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or str(exc)
    context = ""
    if exc.context:
        start = exc.context_mark
        started = (
            f" that starts at line {start.line + 1}, column {start.column + 1}"
            if start and (start.line, start.column) != (line - 1, col - 1)
            else ""
        )
        context = f" ({exc.context}{started})"
    return CaseError(filename, line, col, f"YAML syntax error: {problem}{context}")


# libyaml's parser when PyYAML has it (10x faster); safe construction either way
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str, filename: str) -> Located:
    loader = _SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError:
        # the pure-Python parser words syntax errors better; errors are rare, so reparse
        slow = yaml.SafeLoader(text)
        try:
            slow.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise CaseFileError([_syntax_error(exc, filename)]) from None
        finally:
            slow.dispose()
        raise
    except yaml.YAMLError as exc:
        raise CaseFileError([CaseError(filename, 1, 1, f"YAML error: {exc}")]) from None
    except RecursionError:
        raise CaseFileError([CaseError(filename, 1, 1, "YAML nested too deeply")]) from None
    finally:
        loader.dispose()
    located = Located(None, {}, {})
    errors: list[CaseError] = []
    active: set[int] = set()  # nodes being built: an alias to one of them is a cycle

    def build(node: yaml.Node, path: Path) -> Any:
        if len(located.values) >= MAX_VALUES:
            raise CaseFileError(
                [
                    CaseError(
                        filename,
                        *_mark(node),
                        f"more than {MAX_VALUES} values (aliases expanding without bound?)",
                    )
                ]
            )
        if id(node) in active:
            raise CaseFileError(
                [CaseError(filename, *_mark(node), "an alias refers to a value that contains it")]
            )
        located.values[path] = _mark(node)
        tag_error = _tag_error(node, filename)
        if tag_error:
            errors.append(tag_error)
            return None
        active.add(id(node))
        try:
            return build_inner(node, path)
        finally:
            active.discard(id(node))

    def build_inner(node: yaml.Node, path: Path) -> Any:
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            seen: dict[Any, tuple[int, int]] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    errors.append(
                        CaseError(filename, *_mark(key_node), "mapping keys must be scalars")
                    )
                    continue
                if key_node.tag == _CORE + "merge":
                    errors.append(
                        CaseError(
                            filename, *_mark(key_node), "YAML merge keys (<<) are not supported"
                        )
                    )
                    continue
                known = len(errors)
                key = build(key_node, (*path, "<key>"))
                located.values.pop((*path, "<key>"), None)
                if len(errors) > known:
                    continue
                if key in seen:
                    first = seen[key]
                    errors.append(
                        CaseError(
                            filename,
                            *_mark(key_node),
                            f"duplicate key {key!r} (first at line {first[0]}, column {first[1]}); "
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
        try:
            return loader.construct_object(node)
        except (ValueError, OverflowError) as exc:  # e.g. '2018-13-45' looks like a date
            kind = node.tag.replace(_CORE, "", 1)
            article = "an" if kind[0] in "aeiou" else "a"
            errors.append(
                CaseError(
                    filename,
                    *_mark(node),
                    f"YAML reads {node.value!r} as {article} {kind} but "
                    f"cannot convert it ({exc}); put it in quotes to keep it text",
                )
            )
            return None

    try:
        located.data = build(root, ()) if root is not None else None
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise CaseFileError(
            [CaseError(filename, line, col, f"YAML error: {exc.problem}")]
        ) from None
    if errors:
        raise CaseFileError(errors)
    return located
