"""xdist completions (completions.py): a held cell's "done" crosses with its report, every
scheduler still learns of every cell, and a worker that dies is said to have died in
the cell it was running, not in one it had finished."""

from __future__ import annotations

import json
import re

import pytest
from test_protocol import PORTS, suite

from pytest_bindconform import completions, relay

CELLS = 3 * relay.BUNDLE
ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")

# On the controller: every event a worker sends, by name (execnet's own channel callback).
MESSAGES_PLUGIN = """
import json, os
from collections import Counter
SEEN = Counter()

def pytest_configure(config):
    if hasattr(config, "workerinput"):
        return
    from xdist.workermanage import WorkerController
    real = WorkerController.process_from_remote
    def counted(self, eventcall):
        if isinstance(eventcall, tuple):
            SEEN[eventcall[0]] += 1
        return real(self, eventcall)
    WorkerController.process_from_remote = counted

def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):
        with open(os.environ["MESSAGES_LOG"], "w") as fh:
            json.dump(SEEN, fh)
"""

# On a worker: the process dies in the middle of one cell, as a crash would end it.
DIES_IN = "alone-100"
DYING_PLUGIN = f"""
import os
from pytest_bindconform import runner
real = runner.execute
def execute(cell, suite, ctx):
    if cell.name == {DIES_IN!r}:
        os._exit(3)
    return real(cell, suite, ctx)
runner.execute = execute
"""


@pytest.mark.parametrize("dist", ["load", "worksteal", "loadfile"])
def test_a_held_cells_completion_crosses_with_its_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, dist: str
) -> None:
    """Few completion messages, and the scheduler still hears of every cell: xdist asserts
    at a worker's end that nothing it sent is pending, and the run would hang or fail."""
    pytester.makefile(".bind.yaml", protocol=suite(CELLS))
    pytester.makepyfile(messages=MESSAGES_PLUGIN)
    log = pytester.path / "messages.json"
    monkeypatch.setenv("MESSAGES_LOG", str(log))
    tmp = pytester.mkdir("tmp")  # where the workers' ledgers go (tempfile.gettempdir())
    monkeypatch.setenv("TMPDIR", str(tmp))
    result = pytester.runpytest_subprocess(
        *ARGS, PORTS, "-q", "-p", "messages", "-n", "2", f"--dist={dist}"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()  # one on purpose
    result.stdout.fnmatch_lines([f"*1 failed, {CELLS + 1} passed, 1 skipped*"])
    seen = json.loads(log.read_text())
    # a worker sends at once only when its queue runs short, its last cell, or a failure
    assert seen[completions.COMPLETE] < CELLS // 4, seen
    assert seen["testreport"] < CELLS // 4, seen
    assert not list(tmp.iterdir()), "a worker's ledger outlived the run"


def test_a_worker_that_dies_is_said_to_have_died_in_the_cell_it_ran(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".bind.yaml", protocol=suite(CELLS))
    pytester.makepyfile(dying=DYING_PLUGIN)
    out = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        *ARGS, PORTS, "-p", "dying", "-n", "1", "--max-worker-restart=1",
        f"--bindconform-json={out}",
    )  # fmt: skip
    text = result.stdout.str()
    crashes = re.findall(r"^worker 'gw\d+' crashed while running '([^']+)'$", text, re.M)
    assert crashes and all(c.endswith(f"::{DIES_IN}") for c in crashes), text
    results = {r["name"]: r for r in json.loads(out.read_text())["results"]}
    assert results[DIES_IN]["status"] == "error"
    # the cells after it ran on the replacement worker; those finished but held when the
    # worker died are reported with no result, never as passed
    assert results[f"alone-{CELLS - 1}"]["status"] == "pass"
    lost = [n for n, r in results.items() if r["status"] == "error" and n != DIES_IN]
    assert all("no result" in results[n]["reason"] for n in lost), lost
