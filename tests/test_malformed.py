"""The malformed corpus (tests/malformed/): every file gets exactly its errors, in one run.

Each file states the errors it must produce (see tests/malformed/README.md). The whole
corpus runs in one pytest session beside a valid suite, with and without xdist: every
error must be reported with file, line, column and message, nothing may crash, the
valid suite must still run, and the reports must hold every error as text (never a
live link, never a megabyte of quoted value).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_bindconform import cases, yamlsrc
from pytest_bindconform.host import os_family

ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
CORPUS = Path(__file__).parent / "malformed"
EXPECT = re.compile(rb'^# expect: (\d+):(\d+) ("(?:[^"\\]|\\.)*"): (.*)$', re.M)
PLUGIN_LEVEL = ("misnamed-suffix", "MISNAMED-UPPER-CASE", "zz-duplicate-suite-id")

VALID = f"""\
format: 1
id: valid-sibling
title: the valid file beside the broken ones
references: []
oracles:
  here:
    kind: measured
    source: measured here
    applies: {{os: {os_family()}}}
cases:
  - id: two-plain
    sockets:
      a: {{address: specific}}
      b: {{address: specific}}
    steps: [bind a, bind b]
    variants: {{type: [stream, dgram]}}
    expect: {{here: INUSE}}
"""
VALID_CELLS = 2


@dataclass(frozen=True)
class Expected:
    line: int
    column: int
    token: str
    message: str


def expectations(data: bytes) -> list[Expected]:
    return [
        Expected(int(m[1]), int(m[2]), json.loads(m[3]), m[4].decode("utf-8"))
        for m in EXPECT.finditer(data)
    ]


def corpus() -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(CORPUS.iterdir())
        if p.name.lower().endswith(cases.NEAR_SUFFIXES)
    }


def made_here(where: Path) -> dict[str, list[Expected]]:
    """Inputs too big or too odd to ship, written into where; their expected errors."""
    made: dict[str, list[Expected]] = {}
    big = where / "oversize.bind.yaml"
    with big.open("wb") as fh:  # sparse: the size limit must refuse it before reading it
        fh.write(b"format: 1\n")
        fh.truncate(yamlsrc.MAX_BYTES + 1)
    made[big.name] = [
        Expected(
            1,
            1,
            "",
            f"case file is larger than the limit of {yamlsrc.MAX_BYTES} bytes (the largest "
            "shipped suite is 40 kB); split it into several files",
        )
    ]
    huge = "x" * 1_000_000
    (where / "megabyte-value.bind.yaml").write_text(
        VALID.replace("id: valid-sibling", "id: megabyte").replace(
            "kind: measured", f"kind: {huge}"
        )
    )
    made["megabyte-value.bind.yaml"] = [
        Expected(
            7,
            11,
            "xxxx",
            f"oracles.here.kind: '{'x' * 27}...{'x' * 28}' (1000000 characters) is not "
            "allowed; valid choices: document, measured, derived, model",
        )
    ]
    name = b"not-utf8-\xff.bind.yaml"
    try:
        (where / os.fsdecode(name)).write_text(VALID.replace("valid-sibling", "not-utf8-name"))
    except (OSError, UnicodeError):  # a file system that insists on UTF-8 names (macOS)
        return made
    made["not-utf8-\\xff.bind.yaml"] = [
        Expected(
            1,
            1,
            "",
            f"the file name {name!r} is not valid UTF-8, which every id and report is written "
            "in; rename the file",
        )
    ]
    return made


def test_the_corpus_covers_every_kind_and_each_file_points_at_its_token() -> None:
    files = corpus()
    assert len(files) >= 60, len(files)
    for name, data in files.items():
        found = expectations(data)
        assert found, f"{name}: no '# expect:' line"
        assert data.startswith(b"# malformed: "), name
        lines = data.decode("utf-8", "replace").splitlines()
        for e in found:
            assert 1 <= e.line <= len(lines) + 1, (name, e)  # + 1: the end of the file
            at = lines[e.line - 1][e.column - 1 :] if e.line <= len(lines) else ""
            assert at.startswith(e.token), f"{name}:{e.line}:{e.column} is {at[:20]!r}"


@pytest.mark.parametrize("name", [n for n in corpus() if not n.startswith(PLUGIN_LEVEL)])
def test_each_file_gives_exactly_its_errors(tmp_path: Path, name: str) -> None:
    data = corpus()[name]
    (tmp_path / name).write_bytes(data)
    with pytest.raises(yamlsrc.CaseFileError) as info:
        cases.load_suite(tmp_path / name, display=name)
    got = [(e.line, e.column, e.message) for e in info.value.errors]
    assert got == sorted((e.line, e.column, e.message) for e in expectations(data))


@pytest.mark.parametrize("workers", ["0", "2"])
def test_the_whole_corpus_in_one_run_beside_a_valid_file(
    pytester: pytest.Pytester, workers: str
) -> None:
    expected = {name: expectations(data) for name, data in corpus().items()}
    for name in expected:
        shutil.copyfile(CORPUS / name, pytester.path / name)
    expected.update(made_here(pytester.path))
    pytester.makefile(".bind.yaml", **{"valid-sibling": VALID})
    result = pytester.runpytest(
        *ARGS,
        f"--bindconform-gate={os_family()}=here",
        "-n",
        workers,
        "--bindconform-json=out/r.json",
        "--bindconform-md=out/r.md",
        "--bindconform-html=out/r.html",
    )
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out, out[-3000:]
    result.assert_outcomes(passed=VALID_CELLS, failed=len(expected))

    report = json.loads((pytester.path / "out/r.json").read_text(encoding="utf-8"))
    reasons = {r["id"].partition("::")[0]: r for r in report["results"]}
    assert [r["status"] for r in report["results"]].count("pass") == VALID_CELLS
    for name, errors in expected.items():
        result_ = reasons.pop(name)
        assert result_["status"] == "error", name
        for e in errors:
            line = f"{name}:{e.line}:{e.column}: {e.message}"
            assert line in result_["reason"], f"{line}\nnot in\n{result_['reason']}"
            assert line in out
    assert set(reasons) == {"valid-sibling.bind.yaml"}

    for fmt in ("json", "md", "html"):  # excerpts only: no report quotes the megabyte
        assert (pytester.path / f"out/r.{fmt}").stat().st_size < 300_000, fmt
    md = (pytester.path / "out/r.md").read_text(encoding="utf-8")
    assert "javascript:alert(1)" in md  # the key is shown...
    assert not re.search(r"(?<!\\)\]\(", md)  # ...as text: no '](' opens a link
    assert "<script>" not in md and "<script>" not in (pytester.path / "out/r.html").read_text(
        encoding="utf-8"
    )
