"""A case file against the shipped JSON Schema (schema/case.schema.json), in the words
of a case author: the file:line:column of the very token, what is wrong, and the valid
choices; plus what a schema cannot say (case ids unique by id)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from .caseparts import suggest
from .yamlsrc import CaseError, Located, Path, excerpt

if TYPE_CHECKING:
    import jsonschema


@cache
def case_schema() -> dict[str, Any]:
    text = resources.files("pytest_bindconform").joinpath("schema/case.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> jsonschema.protocols.Validator:
    """Imported when first needed: a run whose case files are all cached validates none,
    and jsonschema's import costs every process (each xdist worker) about 0.1 s."""
    import jsonschema

    schema = case_schema()
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def _leaf_errors(error: jsonschema.ValidationError) -> Iterator[jsonschema.ValidationError]:
    """The most specific errors: anyOf/oneOf complaints are useless to a case author."""
    if error.context and error.validator in ("anyOf", "oneOf"):
        deepest = max(len(e.absolute_path) for e in error.context)
        best = [e for e in error.context if len(e.absolute_path) == deepest]
        enums = [e for e in best if e.validator in ("enum", "const")]
        if enums:
            choices: list[str] = []
            for e in enums:
                allowed: Any = e.validator_value
                choices += [str(c) for c in allowed] if e.validator == "enum" else [str(allowed)]
            merged = enums[0]
            merged.validator_value = list(dict.fromkeys(choices))
            merged.validator = "enum"
            yield merged
            return
        for e in best[:1]:
            yield from _leaf_errors(e)
        return
    yield error


def _describe(error: jsonschema.ValidationError, src: Located, filename: str) -> list[CaseError]:
    """Author-facing errors: where (file:line:col of the very token), what, and the choices."""
    kinds = {
        "string": "a string",
        "boolean": "a boolean (true or false)",
        "array": "a list",
        "object": "a mapping",
        "integer": "an integer",
        "number": "a number",
        "str": "the string",
        "bool": "the boolean",
        "int": "the integer",
        "float": "the number",
        "list": "the list",
        "dict": "the mapping",
        "date": "the date",
    }
    path: Path = tuple(error.absolute_path)
    where = "".join(
        f"[{p}]" if isinstance(p, int) else f".{p if len(str(p)) <= 60 else excerpt(p)}"
        for p in path
    ).lstrip(".")
    where = where or "the top level"
    instance = error.instance
    value: Any = error.validator_value
    schema: Any = error.schema

    def got(it: object) -> str:
        if it is None:
            return "nothing (an empty value)"
        kind = type(it).__name__
        return f"{kinds.get(kind, kind)} {excerpt(it)}"

    def at(message: str, line_col: tuple[int, int] | None = None) -> CaseError:
        line, col = line_col or src.where(path)
        return CaseError(filename, line, col, message)

    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties", {}))
        return [
            at(
                f"unknown key {excerpt(key)} in {where}; {suggest(key, allowed)}",
                src.where((*path, key), key=True),
            )
            for key in instance
            if key not in allowed
        ]
    if "propertyNames" in error.schema_path and isinstance(instance, str):
        return [
            at(
                f"key {excerpt(instance)} in {where} is not a valid name (lower-case letters, "
                "digits, '.', '_' and '-', starting with a letter or digit)",
                src.where((*path, instance), key=True),
            )
        ]
    if error.validator in ("enum", "const"):
        choices = [str(c) for c in value] if error.validator == "enum" else [str(value)]
        if isinstance(instance, str) and "|" in instance:  # 'X|Y' of a merged row/column
            bad = [part for part in instance.split("|") if part not in choices]
            if bad:
                return [
                    at(
                        f"{where}: {excerpt(bad[0])} in {excerpt(instance)} is not allowed; "
                        + suggest(bad[0], [c for c in choices if "|" not in c])
                    )
                ]
        if not isinstance(instance, str) or str(instance) in choices:
            expected = choices[0] if len(choices) == 1 else f"one of {', '.join(choices)}"
            return [at(f"{where}: expected {expected}, got {got(instance)}")]
        return [at(f"{where}: {excerpt(instance)} is not allowed; {suggest(instance, choices)}")]
    if error.validator == "required" and isinstance(instance, dict):
        needed = list(value)
        missing = [k for k in needed if k not in instance]
        return [
            at(
                f"{where}: required key {', '.join(map(repr, missing))} is missing "
                f"(required here: {', '.join(needed)})"
            )
        ]
    if error.validator == "type":
        hint = (
            "; YAML reads unquoted true/false/yes/no/on/off, numbers and dates as such: "
            "put it in quotes"
            if value == "string" and instance is not None
            else ""
        )
        types = [str(v) for v in (value if isinstance(value, list) else [value])]
        wanted = " or ".join(kinds.get(v, v) for v in types)
        return [at(f"{where}: expected {wanted}, got {got(instance)}{hint}")]
    if error.validator == "pattern":
        return [
            at(
                f"{where}: {excerpt(instance)} is not a valid id (lower-case letters, digits, "
                "'.', '_' and '-', starting with a letter or digit)"
            )
        ]
    if error.validator == "uniqueItems" and isinstance(instance, list):
        again = _repeated(instance)
        return [
            at(f"{where}: {excerpt(instance[again])} is listed twice", src.where((*path, again)))
        ]
    if error.validator in ("minItems", "minLength", "minProperties") and value == 1:
        return [at(f"{where}: must not be empty")]
    # jsonschema's own words quote the whole value, which may be megabytes long
    return [at(f"{where}: {error.message.replace(repr(instance), excerpt(instance))}")]


def _repeated(items: list[Any]) -> int:
    """Index of the first item equal to an earlier one (items may be unhashable)."""
    seen: set[str] = set()
    for i, item in enumerate(items):
        key = json.dumps(item, sort_keys=True, default=str)
        if key in seen:
            return i
        seen.add(key)
    return 0


def validate(src: Located, filename: str) -> list[CaseError]:
    """Schema errors, plus unique case ids (a schema cannot say 'unique by id')."""
    errors: list[CaseError] = []
    for error in _validator().iter_errors(src.data):
        for leaf in _leaf_errors(error):
            errors += _describe(leaf, src, filename)
    first: dict[str, tuple[int, int]] = {}
    cases = src.data.get("cases") if isinstance(src.data, dict) else None
    for i, case in enumerate(cases if isinstance(cases, list) else []):
        case_id = case.get("id") if isinstance(case, dict) else None
        if not isinstance(case_id, str):
            continue
        line, col = src.where(("cases", i, "id"))
        if case_id in first:
            errors.append(
                CaseError(
                    filename,
                    line,
                    col,
                    f"duplicate case id {excerpt(case_id)} (first at "
                    f"line {first[case_id][0]}, column {first[case_id][1]})",
                )
            )
        first.setdefault(case_id, (line, col))
    return sorted(set(errors), key=lambda e: (e.line, e.column, e.message))
