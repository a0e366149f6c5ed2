"""Sanity checks over the case library itself (cases/*.bind.yaml).

Like the JSON-Schema-Test-Suite's checks on its own files: every file loads,
ids are unique, grids are complete, every oracle carries provenance, and each
documented Windows table has exactly the cells its page has.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import pytest

from pytest_bindconform import cases, goals
from pytest_bindconform.model import Suite
from pytest_bindconform.oracles import DEFAULT_GATES
from pytest_bindconform.yamlsrc import CaseFileError

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"
FILES = cases.discover(CASES)
REFERENCE = Path(os.environ.get("BINDCONFORM_REFERENCE", ROOT / "docs/reference/windows-tables.md"))

# Each documented Windows table: suite id, oracle id, page shape (rows x columns),
# which socket the page's rows describe, and its heading in the reference file.
DOCUMENTED = {
    "ms-so-exclusiveaddruse-t1": ("ms-so-exclusiveaddruse-table1", 9, 4, "second", "## A."),
    "ms-using-xp": ("ms-using-xp", 6, 6, "first", "### B."),
    "ms-using-2003-same-user": ("ms-using-2003-same-user", 6, 6, "first", "### C."),
    "ms-using-2003-different-users": ("ms-using-2003-different-users", 6, 6, "first", "### D."),
}


@functools.cache
def load(path: Path) -> Suite:
    return cases.load_suite(path, display=str(path.relative_to(ROOT)))


@pytest.fixture(scope="module")
def suites() -> dict[str, Suite]:
    return {s.id: s for s in (load(p) for p in FILES)}


def test_library_is_not_empty() -> None:
    assert len(FILES) >= 8, [p.name for p in FILES]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_case_file_is_valid(path: Path) -> None:
    """Schema, meaning, and no expectation pointing at a cell that does not exist."""
    suite = load(path)
    assert suite.cells, f"{path.name} expands to no cells"


def test_suite_ids_are_unique() -> None:
    ids = [load(p).id for p in FILES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_cell_ids_are_unique(path: Path) -> None:
    names = [c.name for c in load(path).cells]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_oracle_has_provenance_and_applicability(path: Path) -> None:
    suite = load(path)
    refs = {r.id: r for r in suite.references}
    for oracle in suite.oracles.values():
        assert oracle.kind in ("document", "measured", "derived", "model"), oracle.id
        assert oracle.source.strip(), f"{oracle.id}: empty source"
        assert oracle.os in ("windows", "linux", "darwin", "freebsd"), oracle.id
        if oracle.kind == "document":
            ref = refs[oracle.reference]
            assert ref.url and ref.file and ref.revision, (
                f"{oracle.id}: reference {ref.id} incomplete"
            )
        if oracle.kind == "derived":
            assert "not run" in oracle.source, f"{oracle.id}: a derived oracle must say 'not run'"
        if oracle.kind == "measured":
            assert "measured on" in oracle.source, f"{oracle.id}: a measured oracle names its host"


GRID_FILES = [p for p in FILES if "\ngrid:" in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("path", GRID_FILES, ids=lambda p: p.name)
def test_every_grid_is_complete(path: Path) -> None:
    """Every physical cell of a grid is expected by every oracle that holds under its profile."""
    suite = load(path)
    missing = [
        f"{cell.name}: {oracle.id}"
        for cell in suite.cells
        for oracle in suite.oracles.values()
        if (oracle.profiles is None or cell.profile in oracle.profiles)
        and cell.expectation(oracle.id) is None
    ]
    assert not missing, missing[:10]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_cell_has_an_expectation(path: Path) -> None:
    """A case with no expectation at all is a case nobody can judge (a goal suite's
    situations are judged by their 'need')."""
    suite = load(path)
    assert not [c.name for c in suite.cells if not c.expectations and not goals.of(suite, c)]


@pytest.mark.parametrize("oracle_id", sorted(DOCUMENTED))
def test_documented_tables_have_the_pages_cells(suites: dict[str, Suite], oracle_id: str) -> None:
    suite_id, rows, cols, row_socket, _ = DOCUMENTED[oracle_id]
    suite = suites[suite_id]
    grid: dict[str, object] = suite.grid or {}
    assert (len(grid["rows"]), len(grid["columns"])) == (rows, cols)  # type: ignore[arg-type]
    assert grid["row_socket"] == row_socket, "the page's orientation"
    positions = {
        (c.position.row, c.position.column)
        for c in suite.cells
        if c.position is not None and c.expectation(oracle_id) is not None
    }
    assert len(positions) == rows * cols


def _reference_tables() -> dict[str, list[list[str]]]:
    """The reference file's Markdown tables, by section heading."""
    text = REFERENCE.read_text(encoding="utf-8")
    tables: dict[str, list[list[str]]] = {}
    for marker in (d[4] for d in DOCUMENTED.values()):
        section = text[text.index(marker) :]
        body = [ln for ln in section.splitlines() if ln.startswith("|")]
        block = []
        for line in body[2:]:
            block.append([c.strip() for c in line.strip("|").split("|")][1:])
            if len(block) == 9 or (marker != "## A." and len(block) == 6):
                break
        tables[marker] = block
    return tables


@pytest.mark.skipif(
    not REFERENCE.is_file(), reason=f"reference not found at {REFERENCE}; set BINDCONFORM_REFERENCE"
)
@pytest.mark.parametrize("oracle_id", sorted(DOCUMENTED))
def test_documented_tables_match_the_reference_cell_for_cell(
    suites: dict[str, Suite], oracle_id: str
) -> None:
    suite_id, rows, cols, _, marker = DOCUMENTED[oracle_id]
    want = _reference_tables()[marker]
    suite = suites[suite_id]
    got = [["" for _ in range(cols)] for _ in range(rows)]
    for cell in suite.cells:
        exp = cell.expectation(oracle_id)
        if exp is not None and cell.position is not None:
            got[cell.position.row][cell.position.column] = exp.token
    assert got == want


def test_the_default_gates_exist(suites: dict[str, Suite]) -> None:
    for os_name, gate in DEFAULT_GATES.items():
        holders = [s for s in suites.values() if gate in s.oracles]
        assert holders, f"gate {gate!r} for {os_name} is in no suite"
        assert all(s.oracles[gate].os == os_name for s in holders)
    windows_gate = suites["ms-using-2003-same-user"].oracles[DEFAULT_GATES["windows"]]
    assert windows_gate.kind == "document"


def test_table_a_encodes_the_merged_first_bind_faithfully(suites: dict[str, Suite]) -> None:
    """'No options' and 'SO_REUSEADDR' share one column on the page: one expectation, both run."""
    suite = suites["ms-so-exclusiveaddruse-table1"]
    merged = [
        c
        for c in suite.cells
        if c.position and c.position.column == 2 and c.variant == "reuseport-tcp4-bound"
    ]
    firsts = {c.socket("first").options for c in merged}
    assert firsts == {("default",), ("reuse",)}
    by_row: dict[int, set[str]] = {}
    for c in merged:
        exp = c.expectation("ms-so-exclusiveaddruse-t1")
        assert exp is not None and c.position is not None
        by_row.setdefault(c.position.row, set()).add(exp.token)
    assert all(len(tokens) == 1 for tokens in by_row.values())
    assert by_row[6] == {"ok*"}


def test_an_expectation_for_a_missing_cell_is_refused(tmp_path: Path) -> None:
    """The loader is what makes 'no expectation points at a missing cell' true: prove it bites."""
    text = (CASES / "ms-using-2003-same-user.bind.yaml").read_text(encoding="utf-8")
    last_row = r"(\n        - \[[^\n]*# SO_EXCLUSIVEADDRUSE, Specific\n)"
    extra = re.sub(last_row, r"\1        - [ok, ok, ok, ok, ok, ok]\n", text, count=1)
    assert extra != text
    bad = tmp_path / "extra-row.bind.yaml"
    bad.write_text(extra, encoding="utf-8")
    with pytest.raises(CaseFileError, match="extra row"):
        cases.load_suite(bad)


def test_other_user_cells_are_the_second_socket_of_table_d(suites: dict[str, Suite]) -> None:
    suite = suites["ms-using-2003-different-users"]
    assert {c.socket("second").owner for c in suite.cells} == {"other-user"}
    assert {c.socket("first").owner for c in suite.cells} == {"self"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_posix_oracles_cover_both_profiles(path: Path) -> None:
    """The Windows grids are expected under both shipped profiles on every POSIX oracle."""
    suite = load(path)
    if not suite.profiles:
        return
    for oid in ("linux", "freebsd", "darwin"):
        oracle = suite.oracles.get(oid)
        if oracle is not None and suite.id.startswith("ms-"):
            assert oracle.profiles == ("reuseport", "reuseaddr"), f"{suite.id}: {oid}"


def test_the_reference_pages_are_shipped_with_the_project() -> None:
    """The tables are checked against the project's own page, not a developer's notes."""
    assert REFERENCE.is_file() or "BINDCONFORM_REFERENCE" in os.environ
    assert (ROOT / "docs/reference/posix-semantics.md").is_file()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_citation_can_be_opened_by_a_reader(path: Path) -> None:
    """No expectation cites a file a user does not have; project pages exist."""
    text = path.read_text(encoding="utf-8")
    assert "shared/" not in text, f"{path.name} cites a developer-only file"
    suite = load(path)
    for ref in suite.references:
        if ref.file and ref.file.startswith("docs/"):
            assert (ROOT / ref.file).is_file(), f"{path.name}: {ref.id}: {ref.file} is missing"
    for oracle in suite.oracles.values():
        assert "issue tracker" not in oracle.source, f"{path.name}: {oracle.id}"


def test_windows_measured_oracles_are_windows_verified_tests() -> None:
    """A measured Windows expectation here can only be Wine's assertions, which run on
    Windows; each names the test file and the commit."""
    found = 0
    for path in FILES:
        for oracle in load(path).oracles.values():
            if oracle.os == "windows" and oracle.kind == "measured":
                found += 1
                assert oracle.id == "wine-verified"
                assert "dlls/ws2_32/tests/sock.c" in oracle.source and "3379ee2e" in oracle.source
    assert found >= 3
