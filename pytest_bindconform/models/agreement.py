"""Do the models agree with the case library? Where not, a model or a case is wrong.

Every expectation that makes a claim and whose provenance is documented,
measured or derived is compared with the prediction of the model of its
oracle's OS. On Windows the model follows tables C, D and E; tables A and B are
superseded by C (oracles.DEFAULT_GATES), so their disagreements are counted as
findings about the documents, not as model errors. Where a measured oracle of
the same OS claims another outcome for the same cell (Wine's assertions, which
pass on real Windows, next to a page's worked example), the measurement wins:
the model follows it and the document's claim is an erratum, counted apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import cases
from ..model import Cell, Expectation, Suite
from . import OS_FAMILIES
from .base import UNKNOWN
from .cells import predict

CHECKED_KINDS = ("document", "measured", "derived")
SUPERSEDED = {
    "ms-so-exclusiveaddruse-t1": "table A (SO_EXCLUSIVEADDRUSE page, Table 1)",
    "ms-using-xp": "table B (Windows XP and earlier)",
}


@dataclass(frozen=True)
class Comparison:
    suite: Suite
    cell: Cell
    expectation: Expectation
    predicted: str
    what: str = "outcome"  # or "receiver": who receives once all steps ran

    @property
    def expected(self) -> str:
        return self.expectation.receiver if self.what == "receiver" else self.expectation.outcome

    @property
    def agrees(self) -> bool:
        return self.predicted == self.expected

    def __str__(self) -> str:
        oracle = self.suite.oracles[self.expectation.oracle]
        what = "received by " if self.what == "receiver" else ""
        return (
            f"{self.suite.path}:{self.expectation.line or self.cell.line}: "
            f"{self.cell.name}: {oracle.id} ({oracle.provenance}) expects "
            f"{what}{self.expected}, the {oracle.os} model predicts {what}{self.predicted}"
        )


@dataclass
class Agreement:
    checked: list[Comparison] = field(default_factory=list)
    superseded: list[Comparison] = field(default_factory=list)
    unmodelled: list[Comparison] = field(default_factory=list)  # model said unknown
    errata: list[Comparison] = field(default_factory=list)  # documents a measurement refutes

    @property
    def disagreements(self) -> list[Comparison]:
        return [c for c in self.checked if not c.agrees]

    def summary(self) -> list[str]:
        lines = [
            f"{len(self.checked)} expectations checked, {len(self.disagreements)} disagree, "
            f"{len(self.unmodelled)} beyond the models, "
            f"{len(self.errata)} documented cells refuted by a measurement"
        ]
        for oracle_id, what in SUPERSEDED.items():
            mine = [c for c in self.superseded if c.expectation.oracle == oracle_id]
            if mine:
                wrong = sum(not c.agrees for c in mine)
                lines.append(
                    f"superseded {what}: the Windows model (tables C/D/E) disagrees "
                    f"with {wrong} of its {len(mine)} cells"
                )
        return lines


def compare(suites: Iterable[Suite]) -> Agreement:
    result = Agreement()
    for suite in suites:
        for cell in suite.cells:
            profile = suite.profiles.get(cell.profile) if cell.profile else None
            refuted = _refuted(suite, cell)
            for exp in cell.expectations:
                oracle = suite.oracles[exp.oracle]
                if oracle.kind not in CHECKED_KINDS or oracle.os not in OS_FAMILIES:
                    continue
                if not exp.claims:
                    continue
                if _assumes_other_settings(oracle.sysctl):
                    result.unmodelled.append(Comparison(suite, cell, exp, UNKNOWN))
                    continue
                said = predict(oracle.os, cell, profile)
                found = [Comparison(suite, cell, exp, said.outcome)]
                if exp.receiver:
                    found.append(Comparison(suite, cell, exp, said.receiver, "receiver"))
                for one in found:
                    if one.predicted == UNKNOWN:
                        result.unmodelled.append(one)
                    elif exp in refuted and one.what == "outcome":
                        result.errata.append(one)
                    elif exp.oracle in SUPERSEDED:
                        result.superseded.append(one)
                    else:
                        result.checked.append(one)
    return result


def _refuted(suite: Suite, cell: Cell) -> set[Expectation]:
    """The cell's document expectations that a measured oracle of the same OS
    contradicts (both claiming, different outcomes)."""
    kind = {e: suite.oracles[e.oracle] for e in cell.expectations}
    measured = [e for e in cell.expectations if kind[e].kind == "measured" and e.claims]
    return {
        e
        for e in cell.expectations
        if kind[e].kind == "document"
        and e.claims
        and any(kind[m].os == kind[e].os and m.outcome != e.outcome for m in measured)
    }


MODEL_SETTINGS = {"net.ipv6.bindv6only": "0"}
"""Host settings the models assume (base.V6ONLY_DEFAULT: Linux with bindv6only=0)."""


def _assumes_other_settings(sysctl: tuple[tuple[str, str], ...]) -> bool:
    """An oracle for a host set up otherwise (e.g. bindv6only=1) is beyond the models."""
    return any(MODEL_SETTINGS.get(key, value) != value for key, value in sysctl)


def compare_library(root: Path) -> Agreement:
    return compare(cases.load_suite(p) for p in cases.discover(root))
