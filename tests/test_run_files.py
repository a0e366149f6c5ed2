"""Files a run leaves: reports of one run carry one run id, a killed run's temporaries are
swept, the suite cache survives a refused rename, and the GC freeze ends with the session."""

from __future__ import annotations

import gc
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_bindconform import atomic, suitecache
from pytest_bindconform.host import os_family
from pytest_bindconform.report import markdown, model

ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
GATE = f"--bindconform-gate={os_family()}=here"
SUITE = f"""\
format: 1
id: tiny
title: tiny suite
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
    expect: {{here: INUSE}}
"""
REPORTS = (
    "--bindconform-json=out/r.json",
    "--bindconform-md=out/r.md",
    "--bindconform-html=out/r.html",
)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makefile(".bind.yaml", tiny=SUITE)
    return pytester.runpytest(*ARGS, GATE, *REPORTS, *args)


def test_the_reports_of_one_run_carry_one_run_id(pytester: pytest.Pytester) -> None:
    ids = []
    for _ in range(2):
        run(pytester).assert_outcomes(passed=1)
        doc = json.loads((pytester.path / "out/r.json").read_text(encoding="utf-8"))
        assert model.problems(doc) == []
        run_id = doc["run_info"]["run_id"]
        assert re.fullmatch("[0-9a-f]{32}", run_id)
        assert f"Run id {run_id}" in (pytester.path / "out/r.md").read_text(encoding="utf-8")
        assert f"run id {run_id}" in (pytester.path / "out/r.html").read_text(encoding="utf-8")
        ids.append(run_id)
    assert ids[0] != ids[1]  # a new run: a JSON beside an older Markdown shows it


def test_a_killed_runs_temporaries_are_swept_and_nobody_elses(pytester: pytest.Pytester) -> None:
    out = pytester.path / "out"
    out.mkdir()
    old = time.time() - 2 * atomic.STALE_AFTER
    stale = out / f".r.json.{os.getpid()}.abcd1234{atomic.SUFFIX}"  # an old one of ours
    dead = out / f".r.md.999999999.abcd1234{atomic.SUFFIX}"  # its writer is gone
    fresh = out / f".r.html.{os.getpid()}.efgh5678{atomic.SUFFIX}"  # being written now
    foreign = [out / ".r.json.abcd1234.tmp", out / "notes.tmp", out / f"x{atomic.SUFFIX}"]
    for path in (stale, dead, fresh, *foreign):
        path.write_bytes(b"x" * 1000)
    os.utime(stale, (old, old))
    os.utime(dead, (time.time() - 60,) * 2)
    for path in foreign:
        os.utime(path, (old, old))
    run(pytester).assert_outcomes(passed=1)
    left = {p.name for p in out.iterdir()}
    kept = {fresh.name, *(p.name for p in foreign)}
    if sys.platform == "win32":  # no pid check there (os.kill would end the process): by age
        kept.add(dead.name)
    assert left == {"r.json", "r.md", "r.html", *kept}


def test_a_refused_rename_is_retried_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.replace
    calls: list[str] = []

    def busy(src: Any, dst: Any) -> None:  # Windows: another process holds dst open
        calls.append(str(dst))
        if len(calls) < 3:
            raise PermissionError(13, "The process cannot access the file", str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", busy)
    monkeypatch.setattr(atomic, "RETRIES", (0, 0, 0, 0))
    assert atomic.write(tmp_path / "r.json", b"{}")
    assert len(calls) == 3 and (tmp_path / "r.json").read_bytes() == b"{}"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_suite_cache_write_refused_for_good_is_skipped_without_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9: on Windows os.replace over an entry another worker reads fails."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("BINDCONFORM_CACHE_DIR", str(cache))
    monkeypatch.setattr(atomic, "RETRIES", (0, 0))
    (tmp_path / "tiny.bind.yaml").write_text(SUITE)

    def refused(src: Any, dst: Any) -> None:
        raise PermissionError(13, "Access is denied", str(dst))

    with monkeypatch.context() as m:
        m.setattr(os, "replace", refused)
        suite = suitecache.load(tmp_path / "tiny.bind.yaml", display="tiny.bind.yaml")
    assert suite.id == "tiny" and suite.cells
    assert list(cache.iterdir()) == []  # nothing stored, and no temporary left behind
    again = suitecache.load(tmp_path / "tiny.bind.yaml", display="tiny.bind.yaml")
    assert again.cells == suite.cells
    assert [p.suffix for p in cache.iterdir()] == [".pickle"]


def test_suite_cache_sweeps_temporaries_of_dead_writers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("BINDCONFORM_CACHE_DIR", str(cache))
    suitecache._sweep_once.cache_clear()
    left = cache / f".abc.pickle.999999999.zzzz{atomic.SUFFIX}"
    left.write_bytes(b"half a pickle")
    os.utime(left, (time.time() - 2 * atomic.STALE_AFTER,) * 2)
    (tmp_path / "tiny.bind.yaml").write_text(SUITE)
    suitecache.load(tmp_path / "tiny.bind.yaml", display="tiny.bind.yaml")
    assert not left.exists()


def test_sessions_in_one_process_do_not_keep_each_others_objects(
    pytester: pytest.Pytester,
) -> None:
    """gc.freeze() at collection must be undone at session end: pytester runs many."""
    pytester.makefile(".bind.yaml", tiny=SUITE)
    gc.unfreeze()
    for _ in range(3):
        pytester.inline_run(*ARGS, GATE).assertoutcome(passed=1)
        assert gc.get_freeze_count() == 0


def test_a_session_without_case_files_does_not_freeze(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    import gc\n    assert gc.get_freeze_count() == 0\n")
    gc.unfreeze()
    pytester.inline_run(*ARGS).assertoutcome(passed=1)


@pytest.mark.parametrize(
    "hostile",
    [
        "[x](javascript:alert(1))",
        "![pixel](https://tracker.example/p.png)",
        "\\[x\\](javascript:alert(1))",  # the author's own escapes must not undo ours
        "see https://evil.example/ or www.evil.example",
        "mail admin@evil.example",
        "<a href='javascript:alert(1)'>x</a> &lt;",
    ],
)
def test_markdown_cells_hold_no_live_link(hostile: str) -> None:
    cell = markdown.text(hostile)
    assert not re.search(r"(?<!\\)(?:\\\\)*\]\(", cell), cell  # '](' opens a link
    assert not re.search(r"(?<!\\)(?:\\\\)*:(?=//)", cell), cell  # bare URL autolink
    assert not re.search(r"(?i)\bwww\.", cell) and not re.search(r"(?<!\\)@\w", cell), cell
    assert "<" not in cell and ">" not in cell
    # what a reader sees is the text: the escapes only remove meaning, never characters
    shown = re.sub(r"\\(.)", r"\1", cell).replace("&lt;", "<").replace("&gt;", ">")
    assert shown.replace("&amp;", "&") == hostile


def test_markdown_keeps_ordinary_ids_readable() -> None:
    cell_id = "cases/x.bind.yaml::first=reuse@wildcard,second=default@specific[reuseport-tcp4]"
    assert markdown.text(cell_id) == cell_id
