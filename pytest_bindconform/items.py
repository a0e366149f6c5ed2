"""The pytest nodes of a run (pytest side, like plugin.py): a case file, its cells, a
broken or misnamed file standing in as one failing item, and the Hypothesis exploration.
A cell's item only adapts runner.execute's record to pytest outcomes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import pytest
from _pytest.pathlib import absolutepath

from . import cases, gcpolicy, goals, library, oracles, runner, simulate, slow, suitecache
from . import state as run_state
from .model import Cell, Suite
from .report import answers
from .yamlsrc import CaseError, CaseFileError

RECORD_ATTR = "bindconform"  # the record, on a cell's call report
CANDIDATES = pytest.StashKey["answers.RunCandidates"]()
_RELATIVE = pytest.StashKey[dict[Path, str]]()  # a case file's path as an item location shows it


def _display(config: pytest.Config, path: Path) -> str:
    """The path relative to the rootdir with '/' on every OS: ids must match across hosts."""
    try:
        return Path(os.path.relpath(path, config.rootpath)).as_posix()
    except ValueError:  # another drive than the rootdir (Windows)
        return path.as_posix()


def _name_problem(path: Path, display: str) -> str | None:
    """Why a file that looks meant as a case file cannot be one, if it cannot."""
    name = path.name
    if not name.endswith(cases.SUFFIX):
        stem = name[: -len(".bind.yml" if name.lower().endswith(".bind.yml") else cases.SUFFIX)]
        return (
            f"{ascii(name)} is not collected: case files end in {cases.SUFFIX!r} (in lower "
            f"case); rename it to {ascii(stem + cases.SUFFIX)}"
        )
    try:
        display.encode("utf-8")
    except UnicodeEncodeError:
        return (
            f"the file name {os.fsencode(name)!r} is not valid UTF-8, which every id and report "
            "is written in; rename the file"
        )
    if not display.isprintable():
        return f"the file name {ascii(display)} holds a control character; rename the file"
    return None


class MisnamedFile(pytest.File):
    """A near miss of a case file's name: one failing item says so, nothing is left out."""

    def __init__(self, *, problem: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.problem = problem

    def collect(self) -> Iterator[pytest.Item]:
        error = CaseFileError([CaseError(self.nodeid, 1, 1, self.problem)])
        yield BadCaseFile.from_parent(self, name="case-file-error", error=error)


class CaseFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        # the library's ids wherever it is installed; else relative to the rootdir
        display = library.display(self.path) or _display(self.config, self.path)
        try:
            suite = suitecache.load(self.path, display=display)
        except CaseFileError as exc:
            yield BadCaseFile.from_parent(self, name="case-file-error", error=exc)
            return
        clash = self.config.stash[run_state.STATE].claim_suite(suite)
        if clash:
            yield BadCaseFile.from_parent(self, name="case-file-error", error=clash)
            return
        goals.add_candidates(suite, self.config.stash[CANDIDATES].extra)
        for cell in suite.cells:
            yield CellItem.from_parent(self, name=cell.name, cell=cell, suite=suite)
        gcpolicy.file_collected(self.config)


class CaseFileProblem(Exception):
    pass


class BadCaseFile(pytest.Item):
    """Stands in for a broken case file so the run fails loudly and the rest still run."""

    def __init__(self, *, error: CaseFileError, **kwargs: Any):
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise CaseFileProblem(str(self.error))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFileProblem):  # file:line:col: error, first: -r shows it
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path | str, int, str]:
        first = self.error.errors[0]
        # a misnamed file's own name may not be writable: xdist sends the location as UTF-8
        where = self.parent.nodeid if isinstance(self.parent, MisnamedFile) else self.path
        return where, first.line - 1, f"{first.file}: invalid case file"


class ConformanceFailure(Exception):
    pass


class InterferenceError(Exception):
    pass


@cache
def _mark(name: str) -> pytest.MarkDecorator:
    """One decorator per marker name: thousands of cells share a handful of markers."""
    return getattr(pytest.mark, name)  # type: ignore[no-any-return]


class CellItem(pytest.Item):
    def __init__(self, *, cell: Cell, suite: Suite, **kwargs: Any):
        super().__init__(**kwargs)
        self.cell = cell
        self.suite = suite
        state = self.config.stash[run_state.STATE]
        names = ["bindconform", *run_state.markers(cell, suite, state.host)]
        if slow.is_slow(cell):
            names.append("slow")
        for name in names:  # what add_marker does, without its checks per call (30,000 cells)
            decorator = _mark(name)
            self.keywords[name] = decorator
            self.own_markers.append(decorator.mark)
        # --junitxml properties are made from the record on the controller (Recorder):
        # nothing rides on the setup and teardown reports a worker sends

    @property
    def runs_user_code(self) -> bool:
        """A declared server's factory makes a socket of this cell: the user's code runs."""
        situation = goals.of(self.suite, self.cell)
        made_by = situation.candidate.factory if situation else ""
        return bool(made_by) and not made_by.startswith("library:")

    def runtest(self) -> None:
        state = self.config.stash[run_state.STATE]
        record = runner.execute(self.cell, self.suite, state.context())
        if state.host.simulated:
            record = simulate.honest(record, state.host.os)
        if slow.is_slow(self.cell):
            record = slow.label(record)
            self.add_report_section("call", "bindconform", slow.answer(record))
        self.bindconform_record = record
        if hasattr(self.config, "workerinput"):  # kept here; the controller keeps its own
            gcpolicy.cell_done(self.config)
        if record["status"] == "skip":
            pytest.skip(record["reason"])
        required = self.config.stash[CANDIDATES].missed_requirement(record)
        if required:
            record.update(status="fail", reason=required)
            verdict, _, where = required.partition("\n")  # repr_failure shows the last line first
            raise ConformanceFailure(f"{where}\n{verdict}" if where else verdict)
        if record["status"] == "ungated" and not self._open_question(state, record):
            pytest.skip(f"ungated: {record['reason']}")  # a gate this suite does not know
        if record["status"] == "ungated":  # an open question: answered, not skipped
            self.add_report_section("call", "bindconform", answers.terminal_text(record))
        if record["status"] == "error":
            raise InterferenceError(record["reason"])
        if record["status"] == "fail":
            raise ConformanceFailure(run_state.explain(record))

    def _open_question(self, state: run_state.RunState, record: dict[str, Any]) -> bool:
        """The gate makes no claim here, or no oracle for this OS does: what happened is the
        answer. A gate the suite does not know, where another oracle claims, still skips."""
        gate = state.gates.get(state.host.os, "")
        return gate in self.suite.oracles or all(
            v == oracles.NO_CLAIM for v in record["verdicts"].values()
        )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            # the verdict first (the -r line shows line one; the id is already on it)
            lines = str(excinfo.value).splitlines()
            return "\n".join([lines[-1].strip(), *lines[:-1]])
        if isinstance(excinfo.value, InterferenceError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.cell.line - 1, f"{self.suite.id}: {self.cell.name}"

    @cached_property
    def location(self) -> tuple[str, int | None, str]:
        """pytest's Item.location, with the case file's relative path worked out once for
        all its cells: pytest makes and hashes a new Path per item (0.3 s on the library)."""
        path, line, domain = self.reportinfo()
        known = self.session.stash.setdefault(_RELATIVE, {})
        if path not in known:
            known[path] = self.session._node_location_to_relpath(absolutepath(path))
        return known[path], line, domain


class ExploreItem(pytest.Item):
    """Hypothesis hunts for socket sequences where this host and its OS's model disagree."""

    def runtest(self) -> None:
        from . import explore

        state = self.config.stash[run_state.STATE]
        examples, seed, derandomize = state.explore
        result = explore.run(
            state.host,
            examples,
            seed,
            derandomize,
            out_dir=self.config.rootpath / "reports" / "counterexamples",
            ports=state.context().ports.ports,
            say=None,
        )
        self.user_properties.append(
            (
                "bindconform_explore",
                {
                    "examples": result.examples,
                    "seconds": round(result.seconds, 3),
                    "seed": result.seed,
                    "divergences": [str(p) for p in result.divergences],
                    "summary": result.summary(),
                    "found": result.found,
                },
            )
        )
        if result.divergences or result.unreproduced:
            lines = [
                f"{len(result.divergences)} divergence(s) between this host and the "
                f"{state.host.os} model (seed {result.seed}); ready-to-commit cases:"
            ]
            lines += [f"  {path}" for path in result.divergences]
            lines += [f"  {line}" for line in result.found]
            lines += [f"  not reproduced on rerun: {line}" for line in result.unreproduced]
            raise ExploreDivergence("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ExploreDivergence):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int, str]:
        return "bindconform-explore", 0, "bindconform: Hypothesis exploration"


class ExploreDivergence(Exception):
    pass
