"""The small pieces every part of the case loader shares: socket specs and id tokens
made from a file's fields, row and column labels, expectations, and the 'valid
choices' hint every error message ends with."""

from __future__ import annotations

import difflib
from typing import Any

from .model import Expectation, Profile, SocketSpec
from .yamlsrc import excerpt

SOCKET_DEFAULTS: dict[str, Any] = {"family": "inet", "type": "stream", "address": "wildcard"}
MAX_CHOICES = 30  # a suite may declare thousands of names; a message lists this many


def suggest(value: object, choices: list[str]) -> str:
    if not choices:
        return "there are no valid choices: none is declared"
    text = str(value)
    hint = ""
    if len(text) <= 100:  # difflib on a megabyte of text would take its time
        same_but_case = [c for c in choices if c.lower() == text.lower() and c != text]
        close = same_but_case or difflib.get_close_matches(text, choices, n=1)
        hint = f"; did you mean {excerpt(close[0])}?" if close else ""
    shown = [c if len(c) <= 60 else excerpt(c) for c in choices[:MAX_CHOICES]]
    more = f", … ({len(choices) - MAX_CHOICES} more)" if len(choices) > MAX_CHOICES else ""
    return f"valid choices: {', '.join(shown)}{more}{hint}"


def profiles_hint(declared: dict[str, Profile], wrong: str) -> str:
    if not declared:
        return (
            "this suite declares no profiles; add 'profiles: [reuseport]' (or reuseaddr) "
            "at the top level, or drop the profile"
        )
    return "the suite's profiles are: " + suggest(wrong, list(declared))


def alternatives(value: dict[str, Any]) -> list[dict[str, Any]]:
    """A merged row/column ('option: [default, reuse]') stands for several physical cells."""
    if isinstance(value.get("option"), list):
        return [{**value, "option": opt} for opt in value["option"]]
    return [value]


def _options(fields: dict[str, Any]) -> tuple[str, ...]:
    if "options" in fields:
        return tuple(fields["options"])
    opt = fields.get("option")
    return () if opt in (None, "default") else (opt,)


def socket_spec(name: str, fields: dict[str, Any]) -> SocketSpec:
    opt = fields.get("option")
    options = ("default",) if opt == "default" else _options(fields)
    return SocketSpec(
        name=name,
        family=fields["family"],
        type=fields["type"],
        v6only=fields.get("v6only"),
        options=options,
        address=fields["address"],
        owner=fields.get("owner", "self"),
        port=str(fields["port"]) if "port" in fields else "",
    )


def _address_token(address: str) -> str:
    # '::' would split a pytest node id; keep literals readable but id-safe.
    return address.replace(":", "_")


def token(fields: dict[str, Any]) -> str:
    """Id token of one socket's axis value: options@[family.]address[.v6only|.dual]."""
    if "options" in fields:
        opts = "+".join(fields["options"]) or "none"
    else:
        opts = str(fields.get("option", "default"))
    where = [fields["family"]] if "family" in fields else []
    where.append(_address_token(str(fields.get("address", "wildcard"))))
    if "v6only" in fields:
        where.append("v6only" if fields["v6only"] else "dual")
    return f"{opts}@{'.'.join(where)}"


def label(value: dict[str, Any]) -> str:
    """Human label of a row or column, as a table header."""
    if "options" in value:
        opts = " + ".join(value["options"]) or "no option"
    elif isinstance(value.get("option"), list):
        opts = " or ".join(value["option"])
    else:
        opts = str(value.get("option", "default"))
    addr = str(value.get("address", "wildcard"))
    if addr.count(":") >= 2:
        addr = f"[{addr}]"
    extra = ""
    if "v6only" in value:
        extra = " v6only" if value["v6only"] else " dual-stack"
    return f"{opts}, {addr}{extra}"


def pick(exp: Expectation, index: int, count: int) -> Expectation:
    """The expectation of one physical cell of a merged row/column ('X|Y' tokens)."""
    parts = exp.outcome.split("|")
    if len(parts) == 1:
        return exp
    return expectation(exp.oracle, parts[index], exp.line)


def expectation(oracle: str, token: str, line: int) -> Expectation:
    if "|" in token:  # split per physical cell by _pick
        return Expectation(oracle=oracle, outcome=token, line=line)
    undefined = token.endswith("*")
    outcome = token.rstrip("*")
    return Expectation(oracle=oracle, outcome=outcome, undefined_delivery=undefined, line=line)
