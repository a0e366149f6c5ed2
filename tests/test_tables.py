"""The `table` command: page orientation, merged cells, JSON keys, --list, errors."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_bindconform import tables
from pytest_bindconform.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
KEYS = {
    "oracle",
    "type",
    "family",
    "first_option",
    "first_address",
    "second_option",
    "second_address",
    "outcome",
    "undefined_delivery",
}
EXTRA = {"profile", "state", "suite", "first_roles", "first_resolved"}
EXTRA |= {"second_roles", "second_resolved"}
Runner = Callable[..., tuple[int, str, str]]
VARIANTS_A = 6  # tcp4/tcp6 bound and listening, udp4, udp6


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Windows-table suites of cases/ (the large POSIX pairwise grids only slow these tests)."""
    root = tmp_path_factory.mktemp("cases")
    for path in (ROOT / "cases").glob("ms-*.bind.yaml"):
        (root / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return str(root)


_load_once = functools.cache(tables.load_all)


@pytest.fixture
def run(
    library: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Runner:
    # The real loader, memoised: every test reads the same files, parsing them once is enough.
    monkeypatch.setattr(tables, "load_all", _load_once)

    def table(*argv: str) -> tuple[int, str, str]:
        code = main(["table", "--cases", library, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return table


def markdown_rows(out: str) -> list[list[str]]:
    """The first Markdown table of the output, as cells (escaped pipes kept as '|')."""
    rows = []
    for line in out.splitlines():
        if line.startswith("|"):
            cells = line.strip().strip("|").replace("\\|", "\0").split("|")
            rows.append([c.strip().replace("\0", "|") for c in cells])
        elif rows:
            break
    return rows


def test_table_a_in_the_pages_orientation(run: Runner) -> None:
    code, out, _ = run("ms-so-exclusiveaddruse-t1")
    assert code == 0
    rows = markdown_rows(out)
    header, body = rows[0], rows[2:]
    assert header[0] == "second bind \\\\ first bind"
    assert header[1:] == [
        "SO_EXCLUSIVEADDRUSE, Wildcard",
        "SO_EXCLUSIVEADDRUSE, Specific",
        "default or SO_REUSEADDR, Wildcard",  # the page's merged column group
        "default or SO_REUSEADDR, Specific",
    ]
    assert [r[0] for r in body] == [
        f"{opt}, {addr}"
        for opt in ("SO_EXCLUSIVEADDRUSE", "default", "SO_REUSEADDR")
        for addr in ("Wildcard", "Specific", "Specific2")
    ]
    assert body[2][1:] == ["n/a", "ok", "n/a", "ok"]
    assert body[6][1:] == ["ACCESS", "ACCESS", "ok*", "ok"]
    assert body[7][1:] == ["ACCESS", "ACCESS", "ok", "ok*"]
    # One table for every variant and profile: the document says the same of all.
    assert out.count("| second bind") == 1
    assert "learn.microsoft.com/windows/win32/winsock/so-exclusiveaddruse" in out
    assert "ms.date: 05/31/2018" in out


def test_table_c_rows_are_first_bind(run: Runner) -> None:
    code, out, _ = run("ms-using-2003-same-user")
    assert code == 0
    rows = markdown_rows(out)
    assert rows[0][0] == "first bind \\\\ second bind"
    assert rows[2] == ["default, Wildcard", "INUSE", "ok", "ACCESS", "ok", "INUSE", "ok"]
    assert rows[6] == [
        "SO_EXCLUSIVEADDRUSE, Wildcard",
        "INUSE",
        "ACCESS",
        "ACCESS",
        "ACCESS",
        "INUSE",
        "ACCESS",
    ]


def test_a_merged_cell_that_splits_shows_both_outcomes(run: Runner) -> None:
    code, out, _ = run("linux", "--suite", "ms-so-exclusiveaddruse-table1")
    assert code == 0
    rows = markdown_rows(out)
    reuse_wildcard = next(r for r in rows if r[0] == "SO_REUSEADDR, Wildcard")
    assert reuse_wildcard[3] == "INUSE|ok"  # first bind: no option | SO_REUSEADDR
    assert "reuseport: SO_REUSEADDR -> SO_REUSEPORT" in out


def test_json_table_a_one_object_per_physical_cell(run: Runner) -> None:
    code, out, _ = run("ms-so-exclusiveaddruse-t1", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    # 9 rows x 4 columns on the page; the two merged columns hold 2 physical cells each.
    assert len(rows) == 9 * 6 * VARIANTS_A
    for row in rows:
        assert KEYS <= set(row) <= KEYS | EXTRA
        assert row["oracle"] == "ms-so-exclusiveaddruse-t1"
        assert row["profile"] == "any"
    merged = [
        r
        for r in rows
        if r["type"] == "stream"
        and r["family"] == "inet"
        and r["state"] == "bound"
        and r["second_option"] == "SO_REUSEADDR"
        and r["second_address"] == "wildcard"
        and r["first_address"] == "wildcard"
    ]
    assert {(r["first_option"], r["outcome"], r["undefined_delivery"]) for r in merged} == {
        ("SO_EXCLUSIVEADDRUSE", "ACCESS", False),
        ("default", "ok", True),
        ("SO_REUSEADDR", "ok", True),
    }
    assert {r["first_option"] for r in rows} == {"SO_EXCLUSIVEADDRUSE", "default", "SO_REUSEADDR"}
    assert {r["second_address"] for r in rows} == {"wildcard", "specific", "specific2"}


def test_json_table_c(run: Runner) -> None:
    code, out, _ = run("ms-using-2003-same-user", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 36 * VARIANTS_A
    hit = {
        (r["family"], r["type"], r["state"], r["outcome"])
        for r in rows
        if (r["first_option"], r["first_address"], r["second_option"], r["second_address"])
        == ("default", "wildcard", "SO_REUSEADDR", "wildcard")
    }
    assert {h[3] for h in hit} == {"ACCESS"} and len(hit) == VARIANTS_A


def test_json_posix_oracle_keeps_profiles_apart(run: Runner) -> None:
    code, out, _ = run("linux", "--suite", "ms-using-2003-same-user", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert {r["profile"] for r in rows} == {"reuseport", "reuseaddr"}
    listening = {
        r["profile"]: r["outcome"]
        for r in rows
        if r["state"] == "listening"
        and r["family"] == "inet"
        and (r["first_option"], r["first_address"], r["second_option"], r["second_address"])
        == ("SO_REUSEADDR", "wildcard", "SO_REUSEADDR", "wildcard")
    }
    assert listening == {"reuseport": "ok", "reuseaddr": "INUSE"}


def test_list_shows_every_oracle_with_provenance(run: Runner) -> None:
    code, out, _ = run("--list", "--format", "json")
    assert code == 0
    entries = {e["oracle"]: e for e in json.loads(out)}
    for oid in (
        "ms-so-exclusiveaddruse-t1",
        "ms-using-xp",
        "ms-using-2003-same-user",
        "ms-using-2003-different-users",
        "ms-dual-stack",
        "linux",
        "freebsd",
        "darwin",
    ):
        assert oid in entries, oid
        for s in entries[oid]["suites"]:
            assert s["kind"] and s["source"] and s["applies"], (oid, s)
    freebsd = entries["freebsd"]["suites"]
    assert all(s["kind"] == "derived" and "not run" in s["source"] for s in freebsd)
    code, md, _ = run("--list")
    assert code == 0 and "| ms-using-2003-same-user | document | windows >= 5.2 |" in md


def test_unknown_oracle_exits_2_with_a_suggestion(run: Runner) -> None:
    code, out, err = run("ms-using-2003-same-usr")
    assert code == 2 and out == ""
    assert "unknown oracle 'ms-using-2003-same-usr'" in err
    assert "did you mean ms-using-2003-same-user" in err


def test_a_broken_case_file_is_named_and_the_rest_still_print(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = (ROOT / "cases" / "ms-using-xp.bind.yaml").read_text(encoding="utf-8")
    (tmp_path / "ms-using-xp.bind.yaml").write_text(good, encoding="utf-8")
    (tmp_path / "broken.bind.yaml").write_text("format: 1\nid: Broken\n", encoding="utf-8")
    code = main(["table", "--cases", str(tmp_path), "ms-using-xp"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "broken.bind.yaml:" in err
    assert markdown_rows(out)[2] == [
        "default, Wildcard",
        "INUSE",
        "INUSE",
        "ok",
        "ok",
        "INUSE",
        "INUSE",
    ]
