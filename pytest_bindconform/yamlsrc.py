"""Load YAML safely and remember where every value came from.

PyYAML keeps the last of two equal keys without a word; a conformance suite
must not lose an expectation that way, so duplicates are errors here. Case files
are plain data: a tag other than the core types is an error too (the safe loader
refuses Python objects only on scalars; here a tag on a mapping would just be
dropped). Every node's position is kept so that any later error can name file,
line and column.

The document is built from the parser's event stream with an explicit stack,
never by recursion, so that hostile input is refused while it is read: nesting
deeper than MAX_DEPTH, more than MAX_VALUES values (aliases can make a tiny file
expand without bound) or a lone surrogate each stop the parse with a clear error
instead of a RecursionError, minutes of work or gigabytes of memory.
"""

from __future__ import annotations

import re
import reprlib
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]

MAX_VALUES = 50_000  # the largest shipped suite holds ~3,600; validating one costs ~0.1 ms
MAX_DEPTH = 64  # shipped suites nest 8 levels deep
MAX_BYTES = 4 * 1024 * 1024  # the largest shipped suite is 40 kB


@dataclass(frozen=True)
class CaseError:
    file: str
    line: int  # 1-based
    column: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class CaseFileError(Exception):
    """A case file that cannot be used; carries the problems found in it (MAX_ERRORS at most)."""

    def __init__(self, errors: list[CaseError]):
        self.errors = [_bounded(e) for e in errors[:MAX_ERRORS]]
        if len(errors) > MAX_ERRORS:
            last = errors[MAX_ERRORS]
            more = f"… and {len(errors) - MAX_ERRORS} more errors, from here on"
            self.errors.append(CaseError(last.file, last.line, last.column, more))
        super().__init__("\n".join(str(e) for e in self.errors))


_EXCERPT = reprlib.Repr()
_EXCERPT.maxstring = _EXCERPT.maxother = 60
_EXCERPT.maxlist = _EXCERPT.maxtuple = _EXCERPT.maxset = 4
_EXCERPT.maxdict = 3
_EXCERPT.maxlevel = 2


def excerpt(value: object) -> str:
    """repr() of a value from a case file, cut short: one string may hold megabytes."""
    text = _EXCERPT.repr(value)
    if isinstance(value, str) and len(value) > _EXCERPT.maxstring:
        text += f" ({len(value)} characters)"
    return text


MAX_MESSAGE = 1000  # a safety net: messages quote excerpts of values, never whole ones
MAX_ERRORS = 50  # per file: the first ones tell the author what is wrong


def _bounded(error: CaseError) -> CaseError:
    if len(error.message) <= MAX_MESSAGE:
        return error
    cut = f"{error.message[: MAX_MESSAGE - 40]}… ({len(error.message)} characters cut short)"
    return CaseError(error.file, error.line, error.column, cut)


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


def _mark(mark: Any) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


# Plain data only. A safe loader already refuses to build Python objects from
# scalars, but a tag on a mapping or list would be dropped here without a word.
_CORE = "tag:yaml.org,2002:"
_MAP, _SEQ, _MERGE = _CORE + "map", _CORE + "seq", _CORE + "merge"
_PLAIN_SCALARS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_SURROGATE = re.compile("[\ud800-\udfff]")


def _tag_problem(tag: str) -> str:
    return (
        f"YAML tag {tag.replace(_CORE, '!!', 1)!r} is not allowed: case files hold plain data "
        "only (strings, numbers, booleans, lists and mappings)"
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


def _reader_error(exc: yaml.reader.ReaderError, text: str, filename: str) -> CaseError:
    """A character YAML refuses, at its line and column (libyaml counts UTF-8 bytes)."""
    index = exc.position
    if exc.encoding != "unicode":
        index = len(text.encode("utf-8")[: exc.position].decode("utf-8", "ignore"))
    before = text[:index]
    line, col = before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1
    char = exc.character if isinstance(exc.character, int) else ord(exc.character)
    hint = f'write it as the escape "\\x{char:02x}" inside a double-quoted string, or delete it'
    return CaseError(
        filename,
        line,
        col,
        f"character U+{char:04X} is not allowed in a YAML file; "
        + (hint if char < 0x100 else "delete it"),
    )


def _parse_error(fast: yaml.YAMLError, text: str, filename: str) -> CaseError:
    """The pure-Python parser words errors better; errors are rare, so parse again with it.

    Events only (no composing, so no recursion). libyaml refuses a few inputs the
    pure parser accepts (a lone surrogate escape, some plain scalars): then libyaml's
    own complaint is the one reported."""
    error = fast
    if isinstance(fast, yaml.MarkedYAMLError) and "nesting depth" in str(fast.problem):
        return _syntax_error(fast, filename)  # the pure parser slows down with each level
    try:
        slow: Any = yaml.SafeLoader(text)  # its reader checks every character here
        try:
            while not isinstance(slow.get_event(), yaml.StreamEndEvent):
                pass
        finally:
            slow.dispose()
    except yaml.YAMLError as exc:
        error = exc
    if isinstance(error, yaml.MarkedYAMLError):
        return _syntax_error(error, filename)
    if isinstance(error, yaml.reader.ReaderError):
        return _reader_error(error, text, filename)
    return CaseError(filename, 1, 1, f"YAML error: {error}")


# libyaml's parser when PyYAML has it (10x faster); safe construction either way
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


FLOW_GUARD = 256  # flow levels: far past MAX_DEPTH, short of libyaml's own limit (1000)


def _flow_too_deep(text: str, filename: str) -> CaseError | None:
    """'[[[[…' thousands deep: libyaml stops at its own limit and the pure-Python scanner
    slows with every level before any event reaches the depth check, so which error a
    user sees (and how long it takes) would depend on how PyYAML was built. One linear
    pass outside quotes and comments gives the same answer everywhere."""
    depth, quote, line, start = 0, "", 1, 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line, start = line + 1, i + 1
        elif quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'" and (i == 0 or text[i - 1] in " \t\n[{,:"):
            quote = c
        elif c == "#" and (i == 0 or text[i - 1] in " \t\n"):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c in "[{":
            depth += 1
            if depth > FLOW_GUARD:
                message = f"nested more than {MAX_DEPTH} levels deep; a case file needs a handful"
                return CaseError(filename, line, i - start + 1, message)
        elif c in "]}":
            depth = max(0, depth - 1)
        i += 1
    return None


def load(text: str, filename: str) -> Located:
    deep = (
        _flow_too_deep(text, filename) if text.count("[") + text.count("{") > FLOW_GUARD else None
    )
    if deep is not None:
        raise CaseFileError([deep])
    loader = _SafeLoader(text)
    try:
        return _Composer(loader, filename).document()
    except yaml.YAMLError as exc:
        raise CaseFileError([_parse_error(exc, text, filename)]) from None
    finally:
        loader.dispose()


_KEY, _SKIP = object(), object()  # a mapping's next node is a key / a value to drop


@dataclass
class _Frame:
    """An open list or mapping, built as its events arrive."""

    value: Any  # list or dict; None when discarded
    path: Path
    mark: Any
    anchor: str | None
    role: str  # 'root', 'item', 'value', 'key' (a key that is not a scalar: dropped)
    first: tuple[int, int]  # where its values and keys start in the composer's order lists
    pending: Any = _KEY  # mappings: _KEY, _SKIP, or the key whose value comes next
    key_mark: Any = None
    seen: dict[Any, tuple[int, int]] = field(default_factory=dict)


class _Composer:
    """Plain data and positions from the event stream, with every limit checked on the way."""

    def __init__(self, loader: Any, filename: str):
        self.loader = loader
        self.file = filename
        self.located = Located(None, {}, {})
        self.errors: list[CaseError] = []
        self.value_order: list[Path] = []  # insertion order: a subtree is one slice
        self.key_order: list[Path] = []
        # anchor -> (value, root path, value slice, key slice, mark); open ones: their mark
        self.anchors: dict[str, tuple[Any, Path, tuple[int, int], tuple[int, int], Any]] = {}
        self.open: dict[str, Any] = {}

    def error(self, mark: Any, message: str) -> None:
        self.errors.append(CaseError(self.file, *_mark(mark), message))

    def stop(self, mark: Any, message: str) -> CaseFileError:
        return CaseFileError([*self.errors, CaseError(self.file, *_mark(mark), message)])

    def record(self, path: Path, position: tuple[int, int]) -> None:
        if len(self.value_order) >= MAX_VALUES:
            raise CaseFileError(
                [
                    *self.errors,
                    CaseError(
                        self.file,
                        *position,
                        f"more than {MAX_VALUES} values: this is not a case file (or aliases "
                        "expand without bound); split it into several files",
                    ),
                ]
            )
        self.located.values[path] = position
        self.value_order.append(path)

    def record_key(self, path: Path, position: tuple[int, int]) -> None:
        self.located.keys[path] = position
        self.key_order.append(path)

    def document(self) -> Located:
        get = self.loader.get_event
        get()  # stream start
        if isinstance(self.loader.peek_event(), yaml.StreamEndEvent):
            return self.located  # an empty file
        get()  # document start
        self.located.data = self.node()
        get()  # document end
        event = get()
        if not isinstance(event, yaml.StreamEndEvent):
            raise self.stop(
                event.start_mark,
                "a case file holds one YAML document, but a second one starts here ('---')",
            )
        if self.errors:
            raise CaseFileError(self.errors)
        return self.located

    def node(self) -> Any:
        """One whole node (the document's root), event by event."""
        get = self.loader.get_event
        stack: list[_Frame] = []
        while True:
            event = get()
            if isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
                frame = stack.pop()
                value = self.close(frame)
                if not stack:
                    return value
                owner = stack[-1]
                if frame.role == "value":
                    if owner.value is not None and owner.pending is not _SKIP:
                        owner.value[owner.pending] = value
                    owner.pending = _KEY
                elif frame.role == "item" and owner.value is not None:
                    owner.value.append(value)
                continue
            parent = stack[-1] if stack else None
            if parent is not None and isinstance(parent.value, dict) and parent.pending is _KEY:
                if isinstance(event, yaml.CollectionStartEvent):
                    self.error(event.start_mark, "mapping keys must be scalars")
                    parent.pending = _SKIP
                    stack.append(self.open_frame(event, (), "key", discard=True, depth=len(stack)))
                else:
                    self.key(parent, event)
                continue
            discard = parent is not None and (parent.value is None or parent.pending is _SKIP)
            path: Path = ()
            if parent is None:
                role = "root"
            elif isinstance(parent.value, list):
                role, path = "item", (*parent.path, len(parent.value))
            else:
                role, path = "value", (*parent.path, parent.pending)
            if isinstance(event, yaml.CollectionStartEvent):
                stack.append(self.open_frame(event, path, role, discard, depth=len(stack)))
                continue
            value = None if discard else self.leaf(event, path)
            if parent is None:
                return value
            if role == "item" and parent.value is not None:
                parent.value.append(value)
            elif role == "value":
                if not discard:
                    parent.value[parent.pending] = value
                parent.pending = _KEY

    def open_frame(self, event: Any, path: Path, role: str, discard: bool, depth: int) -> _Frame:
        if depth >= MAX_DEPTH:
            raise self.stop(
                event.start_mark,
                f"nested more than {MAX_DEPTH} levels deep; a case file needs a handful",
            )
        mapping = isinstance(event, yaml.MappingStartEvent)
        if not discard:
            kind = yaml.MappingNode if mapping else yaml.SequenceNode
            tag = event.tag
            if tag is None or tag == "!":
                tag = self.loader.resolve(kind, None, event.implicit)
            self.record(path, _mark(event.start_mark))
            if tag != (_MAP if mapping else _SEQ):
                self.error(event.start_mark, _tag_problem(tag))
                discard = True
        if event.anchor is not None:
            self.define(event.anchor, event.start_mark)
            self.open[event.anchor] = event.start_mark
        value: Any = None if discard else ({} if mapping else [])
        first = (len(self.value_order) - (0 if discard else 1), len(self.key_order))
        return _Frame(value, path, event.start_mark, event.anchor, role, first)

    def close(self, frame: _Frame) -> Any:
        if frame.anchor is not None:
            self.open.pop(frame.anchor, None)
            values = (frame.first[0], len(self.value_order))
            keys = (frame.first[1], len(self.key_order))
            if frame.value is None:
                values = keys = (0, 0)
            self.anchors[frame.anchor] = (frame.value, frame.path, values, keys, frame.mark)
        return frame.value

    def define(self, anchor: str, mark: Any) -> None:
        if anchor in self.anchors or anchor in self.open:
            first = self.anchors[anchor][4] if anchor in self.anchors else self.open[anchor]
            line, col = _mark(first)
            self.error(
                mark, f"anchor &{anchor} is defined twice (first at line {line}, column {col})"
            )

    def leaf(self, event: Any, path: Path) -> Any:
        """A scalar or an alias at path."""
        if isinstance(event, yaml.AliasEvent):
            return self.alias(event, path)
        self.record(path, _mark(event.start_mark))
        value = self.scalar(event)
        if event.anchor is not None:
            self.define(event.anchor, event.start_mark)
            n = len(self.value_order)
            self.anchors[event.anchor] = (value, path, (n - 1, n), (0, 0), event.start_mark)
        return value

    def scalar(self, event: Any) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _MERGE:
            return _MERGE  # only meaningful as a key; key() reports it
        if tag not in _PLAIN_SCALARS:
            self.error(event.start_mark, _tag_problem(tag))
            return None
        surrogate = _SURROGATE.search(event.value)
        if surrogate:
            self.error(
                event.start_mark,
                f"'\\u{ord(surrogate.group()):04x}' is half of a UTF-16 surrogate pair, not a "
                "character; write the character itself, or its \\U escape",
            )
            return None
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return self.loader.construct_object(node)
        except (ValueError, OverflowError, yaml.constructor.ConstructorError) as exc:
            kind = tag.replace(_CORE, "", 1)
            article = "an" if kind[0] in "aeiou" else "a"
            self.error(
                event.start_mark,
                f"YAML reads {excerpt(event.value)} as {article} {kind} but cannot convert it "
                f"({exc}); put it in quotes to keep it text",
            )
            return None

    def alias(self, event: Any, path: Path) -> Any:
        """The anchored value again, its positions copied under path (each one counted)."""
        anchor = event.anchor
        if anchor in self.open:
            raise self.stop(self.open[anchor], "an alias refers to a value that contains it")
        if anchor not in self.anchors:
            self.record(path, _mark(event.start_mark))
            self.error(event.start_mark, f"alias *{anchor} refers to no anchor defined before it")
            return None
        value, root, (v0, v1), (k0, k1), _ = self.anchors[anchor]
        cut = len(root)
        self.record(path, _mark(event.start_mark))
        for old in self.value_order[v0 + 1 : v1]:
            self.record((*path, *old[cut:]), self.located.values[old])
        for old in self.key_order[k0:k1]:
            self.record_key((*path, *old[cut:]), self.located.keys[old])
        return value

    def key(self, frame: _Frame, event: Any) -> None:
        """A scalar (or alias) in key position: the name of the next value, or _SKIP."""
        frame.pending = _SKIP
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            found = self.anchors.get(str(event.anchor))
            if found is None or isinstance(found[0], dict | list):
                self.error(mark, "mapping keys must be scalars (an alias to one at most)")
                return
            key = found[0]
        else:
            if event.anchor is not None:
                self.define(event.anchor, mark)
            known = len(self.errors)
            key = self.scalar(event)
            if event.anchor is not None:
                self.anchors[event.anchor] = (key, (), (0, 0), (0, 0), mark)
            if key == _MERGE:
                self.error(mark, "YAML merge keys (<<) are not supported")
                return
            if len(self.errors) > known:
                return
        if key in frame.seen:
            line, col = frame.seen[key]
            self.error(
                mark,
                f"duplicate key {excerpt(key)} (first at line {line}, column {col}); "
                "YAML would silently keep only the last one",
            )
            return
        frame.seen[key] = _mark(mark)
        frame.pending = key
        self.record_key((*frame.path, key), _mark(mark))
