"""Bad case files: every problem is named with file, line, column, value and choices.

Each bad input is a one-line edit of a small good file. The expected line is
written out, and the column is checked by reading the offending token back
from the file at the reported position, so a message that points near the
problem (the parent mapping, column 1) fails the test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pytest_bindconform import yamlsrc
from pytest_bindconform.cases import load_suite
from pytest_bindconform.yamlsrc import CaseError, CaseFileError

# Plugins that slow every in-process run down (hypothesis imports itself at session end).
ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")

CASES = """\
format: 1
id: tiny
title: tiny suite
references: []
oracles:
  linux:
    kind: measured
    source: measured here
    applies: {os: linux}
  other:
    kind: derived
    source: derived for tests
    applies: {os: linux}
cases:
  - id: two-plain
    sockets:
      a: {address: specific}
      b: {address: specific}
    steps: [bind a, bind b]
    variants: {family: [inet, inet6], type: [stream, dgram], state: [bound]}
    expect: {linux: INUSE, other: ok}
"""

GRID = """\
format: 1
id: tiny-grid
title: tiny grid
references: []
profiles: [reuseport]
oracles:
  linux:
    kind: measured
    source: measured here
    applies: {os: linux}
    profiles: [reuseport]
  other:
    kind: derived
    source: derived for tests
    applies: {os: linux}
grid:
  variants: {type: [stream], family: [inet]}
  rows:
    socket: second
    values:
      - {option: default, address: specific}
      - {option: reuse, address: specific}
  columns:
    socket: first
    values:
      - {option: default, address: specific}
      - {option: reuse, address: specific}
  expect:
    - oracle: linux
      profile: reuseport
      table:
        - [INUSE, INUSE]
        - [INUSE, ok]
    - oracle: other
      table:
        - [ok, ok]
        - [ok, ok]
"""


def edit(base: str, old: str, new: str) -> str:
    assert base.count(old) == 1, f"{old!r} must occur once in the base file"
    return base.replace(old, new)


PROFILED = edit(CASES, "references: []", "references: []\nprofiles: [reuseport]")


def errors_of(tmp_path: Path, text: str | bytes, name: str = "bad.bind.yaml") -> list[CaseError]:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(CaseFileError) as info:
        load_suite(path, display=name)
    return info.value.errors


def test_the_base_files_are_good(tmp_path: Path) -> None:
    """Otherwise every test below could pass for the wrong reason."""
    for name, text in (("cases.bind.yaml", CASES), ("grid.bind.yaml", GRID)):
        (tmp_path / name).write_text(text)
        assert load_suite(tmp_path / name).cells


# (id, base, old, new, line, token at line:col, words the message must contain)
# fmt: off
BAD = [
    ("yaml-syntax", CASES,
     "[bind a, bind b]", "[bind a, bind b]]",
     19, "]", ["YAML syntax error", "']'"]),
    ("yaml-tab", CASES,
     "    source: measured here", "\tsource: measured here",
     8, "\t", ["YAML syntax error", "'\\t'"]),
    ("duplicate-key", CASES,
     "    source: measured here\n", "    source: measured here\n    source: again\n",
     9, "source", ["duplicate key 'source'", "first at line 8, column 5", "keep only the last"]),
    ("duplicate-key-flow", CASES,
     "a: {address: specific}", "a: {address: specific, address: wildcard}",
     17, "address: wildcard", ["duplicate key 'address'", "first at line 17, column 11"]),
    ("unknown-key", CASES,
     "    steps: [bind a, bind b]\n", "    stpes: [bind a, bind b]\n",
     19, "stpes",
     ["unknown key 'stpes'", "cases[0]", "valid choices: id, title", "did you mean 'steps'?"]),
    ("unknown-top-key", CASES,
     "title: tiny suite", "titel: tiny suite",
     3, "titel", ["unknown key 'titel'", "did you mean 'title'?"]),
    ("unknown-grid-key", GRID,
     "- {option: reuse, address: specific}\n  columns",
     "- {option: reuse, adress: specific}\n  columns",
     22, "adress", ["unknown key 'adress'", "grid.rows.values[1]", "did you mean 'address'?"]),
    ("unknown-option", CASES,
     "a: {address: specific}", "a: {address: specific, options: [SO_REUSEPROT]}",
     17, "SO_REUSEPROT",
     ["'SO_REUSEPROT' is not allowed", "SO_REUSEADDR, SO_REUSEPORT",
      "did you mean 'SO_REUSEPORT'?"]),
    ("option-wrong-case", CASES,
     "a: {address: specific}", "a: {address: specific, options: [so_reuseaddr]}",
     17, "so_reuseaddr", ["'so_reuseaddr' is not allowed", "did you mean 'SO_REUSEADDR'?"]),
    ("unknown-role", GRID,
     "- {option: reuse, address: specific}\n  columns",
     "- {option: resue, address: specific}\n  columns",
     22, "resue",
     ["'resue' is not allowed", "default, reuse, exclusive", "did you mean 'reuse'?"]),
    ("unknown-family-variant", CASES,
     "family: [inet, inet6]", "family: [inet, inet7]",
     20, "inet7", ["'inet7' is not allowed", "valid choices: inet, inet6"]),
    ("unknown-family-socket", CASES,
     "a: {address: specific}", "a: {address: specific, family: ipv4}",
     17, "ipv4",
     ["cases[0].sockets.a.family", "'ipv4' is not allowed", "valid choices: inet, inet6"]),
    ("unknown-type", CASES,
     "type: [stream, dgram]", "type: [stream, datagram]",
     20, "datagram",
     ["'datagram' is not allowed", "valid choices: stream, dgram", "did you mean 'dgram'?"]),
    ("unknown-state", CASES,
     "state: [bound]", "state: [listning]",
     20, "listning",
     ["'listning' is not allowed", "bound, listening", "did you mean 'listening'?"]),
    ("unknown-outcome", CASES,
     "{linux: INUSE, other: ok}", "{linux: INUSED, other: ok}",
     21, "INUSED",
     ["cases[0].expect.linux", "'INUSED' is not allowed", "ADDRNOTAVAIL",
      "did you mean 'INUSE'?"]),
    ("unknown-outcome-grid", GRID,
     "- [INUSE, ok]", "- [INUSE, okay]",
     33, "okay", ["grid.expect[0].table[1][1]", "'okay' is not allowed", "did you mean 'ok'?"]),
    ("unknown-outcome-merged", GRID,
     "- [INUSE, ok]", "- [INUSE, INUSE|okk]",
     33, "INUSE|okk", ["'okk' in 'INUSE|okk' is not allowed", "INUSE", "did you mean 'ok'?"]),
    ("unknown-oracle-case", CASES,
     "{linux: INUSE, other: ok}", "{linx: INUSE, other: ok}",
     21, "linx",
     ["unknown oracle 'linx'", "valid choices: linux, other", "did you mean 'linux'?"]),
    ("unknown-oracle-grid", GRID,
     "- oracle: other", "- oracle: othr",
     34, "othr",
     ["unknown oracle 'othr'", "valid choices: linux, other", "did you mean 'other'?"]),
    ("unknown-oracle-kind", CASES,
     "kind: measured", "kind: measurd",
     7, "measurd", ["oracles.linux.kind", "'measurd' is not allowed", "did you mean 'measured'?"]),
    ("unknown-os", CASES,
     "applies: {os: linux}\n  other", "applies: {os: linx}\n  other",
     9, "linx",
     ["oracles.linux.applies.os", "windows, linux, darwin, freebsd", "did you mean 'linux'?"]),
    ("bad-oracle-name", CASES,
     "  other:\n", "  Other:\n",
     10, "Other", ["key 'Other' in oracles is not a valid name", "lower-case"]),
    ("wrong-type-bool", CASES,
     "a: {address: specific}", "a: {address: specific, v6only: yes please}",
     17, "yes please",
     ["cases[0].sockets.a.v6only", "expected a boolean (true or false)", "'yes please'"]),
    ("wrong-type-list", CASES,
     "steps: [bind a, bind b]", "steps: bind a",
     19, "bind a", ["cases[0].steps", "expected a list", "the string 'bind a'"]),
    ("wrong-type-date", CASES,
     "references: []", "references: [{id: r, title: t, revision: 2018-05-31}]",
     4, "2018-05-31", ["references[0].revision", "expected a string", "put it in quotes"]),
    ("wrong-type-format", CASES,
     "format: 1", "format: '1'",
     1, "'1'", ["format: expected 1, got the string '1'"]),
    ("missing-key", CASES,
     "    source: measured here\n", "",
     7, "kind", ["oracles.linux", "required key 'source' is missing", "kind, applies, source"]),
    ("empty-steps", CASES,
     "steps: [bind a, bind b]", "steps: []",
     19, "[]", ["cases[0].steps: must not be empty"]),
    ("duplicate-case-id", CASES,
     "    expect: {linux: INUSE, other: ok}\n",
     "    expect: {linux: INUSE, other: ok}\n  - id: two-plain\n    sockets: {a: {}}\n"
     "    steps: [bind a]\n    expect: {linux: ok}\n",
     22, "two-plain", ["duplicate case id 'two-plain'", "first at line 15, column 9"]),
    ("grid-missing-cell", GRID,
     "- [INUSE, ok]", "- [INUSE]",
     33, "[INUSE]", ["row 2 of the 'linux' table has 1 cells", "2 columns", "missing cell"]),
    ("grid-extra-cell", GRID,
     "- [INUSE, ok]", "- [INUSE, ok, ok]",
     33, "[INUSE, ok, ok]", ["row 2 of the 'linux' table has 3 cells", "2 columns", "extra cell"]),
    ("grid-missing-row", GRID,
     "        - [INUSE, ok]\n", "",
     32, "- [INUSE, INUSE]", ["table for 'linux' has 1 rows", "grid has 2", "missing row"]),
    ("grid-extra-row", GRID,
     "        - [INUSE, ok]\n", "        - [INUSE, ok]\n        - [ok, ok]\n",
     34, "[ok, ok]", ["table for 'linux' has 3 rows", "grid has 2", "extra row"]),
    ("expectation-for-no-cell", GRID,
     "    - oracle: other\n", "    - oracle: other\n      where: {family: inet6}\n",
     35, "{family: inet6}", ["cells that do not exist", "'family': 'inet6'"]),
    ("unknown-profile-suite", CASES,
     "references: []", "references: []\nprofiles: [reuseprt]",
     5, "reuseprt",
     ["profiles[0]", "'reuseprt' is not allowed", "reuseport, reuseaddr",
      "did you mean 'reuseport'?"]),
    ("unknown-profile-grid", GRID,
     "      profile: reuseport", "      profile: reuseprt",
     30, "reuseprt", ["unknown profile 'reuseprt'", "reuseport", "did you mean 'reuseport'?"]),
    ("unknown-profile-oracle", GRID,
     "    profiles: [reuseport]", "    profiles: [reuseaddr]",
     11, "reuseaddr", ["unknown profile 'reuseaddr'", "reuseport"]),
    ("unknown-profile-case", PROFILED,
     "{linux: INUSE, other: ok}", "{linux: {reuseprt: INUSE}, other: ok}",
     22, "reuseprt", ["unknown profile 'reuseprt'", "reuseport", "did you mean 'reuseport'?"]),
    ("unknown-call", CASES,
     "[bind a, bind b]", "[bind a, bnd b]",
     19, "bnd b", ["unknown call 'bnd'", "bind, listen", "did you mean 'bind'?"]),
    ("unknown-socket", CASES,
     "[bind a, bind b]", "[bind a, bind c]",
     19, "bind c", ["unknown socket 'c'", "valid choices: a, b"]),
    ("unknown-address", CASES,
     "a: {address: specific}", "a: {address: specifc}",
     17, "specifc",
     ["address 'specifc'", "wildcard, specific, specific2", "did you mean 'specific'?"]),
    ("role-needs-profile", CASES,
     "a: {address: specific}", "a: {address: specific, options: [reuse]}",
     17, "reuse", ["option role 'reuse' needs a profile", "profiles: [reuseport]"]),
    ("python-tag-scalar", CASES,
     "title: tiny suite", "title: !!python/object/apply:os.getcwd []",
     3, "!!python/object/apply:os.getcwd",
     ["'!!python/object/apply:os.getcwd' is not allowed", "plain data"]),
    ("python-tag-mapping", CASES,
     "a: {address: specific}", "a: !!python/object:builtins.dict {address: specific}",
     17, "!!python/object:builtins.dict", ["'!!python/object:builtins.dict' is not allowed"]),
    ("yaml-set-tag", CASES,
     "a: {address: specific}", "a: !!set {address: specific}",
     17, "!!set", ["'!!set' is not allowed"]),
    ("merge-key", CASES,
     "a: {address: specific}", "a: {<<: {address: specific}}",
     17, "<<", ["merge keys (<<) are not supported"]),
    ("alias-cycle", CASES,
     "steps: [bind a, bind b]", "steps: &s [bind a, *s]",
     19, "&s", ["alias refers to a value that contains it"]),
]
# fmt: on

NEEDS_FIX: dict[str, str] = {}


@pytest.mark.parametrize(
    ("base", "old", "new", "line", "token", "words"),
    [
        pytest.param(
            *rest,
            id=name,
            marks=[pytest.mark.xfail(strict=True, reason=NEEDS_FIX[name])]
            if name in NEEDS_FIX
            else [],
        )
        for name, *rest in BAD
    ],
)
def test_bad_input_names_file_line_column_value_and_choices(
    tmp_path: Path, base: str, old: str, new: str, line: int, token: str, words: list[str]
) -> None:
    text = edit(base, old, new)
    errors = errors_of(tmp_path, text)
    rendered = "\n".join(map(str, errors))
    matching = [e for e in errors if all(w in e.message for w in words)]
    assert matching, f"no error says {words}:\n{rendered}"
    error = matching[0]
    assert str(error).startswith(f"bad.bind.yaml:{error.line}:{error.column}: ")
    assert error.line == line, rendered
    source_line = text.splitlines()[error.line - 1]
    assert source_line[error.column - 1 :].startswith(token), (
        f"{error.line}:{error.column} points at {source_line[error.column - 1 :]!r}, "
        f"not at {token!r}"
    )
    assert "Traceback" not in rendered


def test_every_error_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = edit(CASES, "kind: measured", "kind: measurd")
    text = edit(text, "type: [stream, dgram]", "type: [stream, datagram]")
    text = edit(text, "    steps: [bind a, bind b]\n", "    stpes: [bind a, bind b]\n")
    lines = sorted(e.line for e in errors_of(tmp_path, text))
    assert lines == [7, 15, 19, 20]  # 15: the case now lacks 'steps'; 19: the unknown key


def test_every_unknown_key_of_one_mapping_is_reported(tmp_path: Path) -> None:
    text = edit(CASES, "title: tiny suite", "titel: tiny suite\ndescripton: x")
    messages = [e.message for e in errors_of(tmp_path, text)]
    assert any("unknown key 'titel'" in m for m in messages)
    assert any("unknown key 'descripton'" in m and "'description'" in m for m in messages)


def test_unclosed_bracket_names_where_it_was_opened(tmp_path: Path) -> None:
    (error,) = errors_of(tmp_path, edit(CASES, "[bind a, bind b]", "[bind a, bind b"))
    assert error.line == 20  # where the parser noticed
    assert "flow sequence that starts at line 19, column 12" in error.message


def test_python_tags_are_never_executed(tmp_path: Path) -> None:
    """The safe loader builds no object at all: the command must not run."""
    marker = tmp_path / "pwned"
    payload = f"!!python/object/apply:os.system ['touch {marker}']"
    errors = errors_of(tmp_path, edit(CASES, "title: tiny suite", f"title: {payload}"))
    assert "!!python/object/apply:os.system" in errors[0].message
    assert not marker.exists()


def test_not_utf8_names_the_line_and_column_of_the_bad_byte(tmp_path: Path) -> None:
    data = edit(CASES, "title: tiny suite", "title: tiny s\xffite").encode("latin-1")
    (error,) = errors_of(tmp_path, data)
    assert (error.line, error.column) == (3, 14)
    assert "0xff" in error.message and "UTF-8" in error.message


@pytest.mark.parametrize(
    ("text", "what"),
    [("", "an empty file"), ("- a\n- b\n", "a list"), ("just text\n", "a str")],
)
def test_a_file_that_is_not_a_mapping(tmp_path: Path, text: str, what: str) -> None:
    (error,) = errors_of(tmp_path, text)
    assert "must be a mapping starting with 'format: 1'" in error.message
    assert what in error.message


def test_unknown_profile_in_a_suite_without_profiles(tmp_path: Path) -> None:
    text = edit(CASES, "{linux: INUSE, other: ok}", "{linux: {reuseport: INUSE}, other: ok}")
    (error,) = errors_of(tmp_path, text)
    assert (error.line, "unknown profile 'reuseport'") == (21, error.message[:27])
    assert "declares no profiles" in error.message
    assert "None" not in error.message, error.message


def test_unknown_profile_message_reads_well(tmp_path: Path) -> None:
    """'the suite declares: valid choices: ...' stutters."""
    text = edit(GRID, "      profile: reuseport", "      profile: reuseprt")
    (error,) = errors_of(tmp_path, text)
    assert "declares: valid choices" not in error.message, error.message


# -- how broken files surface in a pytest run ----------------------------------------


def test_broken_file_is_one_failing_item_and_the_others_still_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".bind.yaml", good=CASES)
    pytester.makefile(
        ".bind.yaml", broken=edit(CASES, "type: [stream, dgram]", "type: [stream, dgarm]")
    )
    result = pytester.runpytest(*ARGS, "-rf")
    result.assert_outcomes(passed=4, failed=1)
    assert result.ret == 1
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "broken.bind.yaml:20:*: cases[[]0[]].variants.type[[]1[]]: 'dgarm' is not allowed; "
            "valid choices: stream, dgram; did you mean 'dgram'?",
        ]
    )
    assert "FAILED broken.bind.yaml::case-file-error" in out
    assert "Traceback" not in out
    assert not re.search(r"pytest_bindconform[/\\]\w+\.py", out), out


def test_broken_file_item_points_at_the_first_problem(pytester: pytest.Pytester) -> None:
    pytester.makefile(".bind.yaml", broken=edit(CASES, "kind: measured", "kind: measurd"))
    items, _ = pytester.inline_genitems(*ARGS)
    (item,) = items
    assert item.name == "case-file-error"
    path, line0, _ = item.reportinfo()
    assert (Path(path).name, line0 + 1) == ("broken.bind.yaml", 7)


def test_syntax_error_surfaces_without_traceback(pytester: pytest.Pytester) -> None:
    pytester.makefile(".bind.yaml", broken=edit(CASES, "[bind a, bind b]", "[bind a, bind b]]"))
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["broken.bind.yaml:19:28: YAML syntax error: *"])
    assert "Traceback" not in result.stdout.str()


# -- hostile input: limits act while the file is read ---------------------------------


def test_the_value_cap_acts_while_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the cap nothing more is read: a syntax error further on is never reached."""
    monkeypatch.setattr(yamlsrc, "MAX_VALUES", 1000)
    text = edit(CASES, "title: tiny suite", "title: tiny suite\nfiller:\n" + "- 0\n" * 5000)
    (error,) = errors_of(tmp_path, text + "cases: [unclosed\n")
    assert "more than 1000 values" in error.message
    assert error.line == 5 + 1000 - 5  # the value that crossed the cap (line 5 is 'filler:')


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.bind.yaml"
    with path.open("wb") as fh:  # sparse: 1 GB that costs nothing to make
        fh.write(b"format: 1\n")
        fh.truncate(1 << 30)
    with pytest.raises(CaseFileError) as info:
        load_suite(path, display="huge.bind.yaml")
    (error,) = info.value.errors
    assert f"larger than the limit of {yamlsrc.MAX_BYTES} bytes" in error.message


def test_a_megabyte_value_is_quoted_as_a_short_excerpt(tmp_path: Path) -> None:
    text = edit(CASES, "kind: measured", "kind: " + "y" * 1_000_000)
    (error,) = errors_of(tmp_path, text)
    assert "(1000000 characters) is not allowed" in error.message
    assert len(str(error)) < 400


def test_the_number_of_errors_of_one_file_is_bounded(tmp_path: Path) -> None:
    keys = "".join(f"\nunknown{i}: x" for i in range(500))
    errors = errors_of(tmp_path, edit(CASES, "title: tiny suite", "title: tiny suite" + keys))
    assert len(errors) == yamlsrc.MAX_ERRORS + 1
    assert errors[-1].message == f"… and {500 - yamlsrc.MAX_ERRORS} more errors, from here on"


def test_the_pure_python_parser_refuses_a_lone_surrogate_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without libyaml nothing refuses '\\ud800' while parsing: the loader must."""
    monkeypatch.setattr(yamlsrc, "_SafeLoader", yaml.SafeLoader)
    (error,) = errors_of(tmp_path, edit(CASES, "title: tiny suite", 'title: "a \\ud800"'))
    assert (error.line, error.column) == (3, 8)
    assert "'\\ud800' is half of a UTF-16 surrogate pair" in error.message


def test_nesting_far_past_the_recursion_limit(tmp_path: Path) -> None:
    for depth in (400, 5000):
        (error,) = errors_of(
            tmp_path, edit(CASES, "title: tiny suite", "title: " + "[" * depth + "]" * depth)
        )
        assert error.line == 3 and "nest" in error.message, error
