"""'Which source does this host follow?': every oracle against the cells that ran here."""

from __future__ import annotations

from typing import Any

from pytest_bindconform.report import markdown, model


def result(status: str, observed: str | None, **expected: str) -> dict[str, Any]:
    return {
        "status": status,
        "observed": None if observed is None else {"outcome": observed},
        "expected": {o: {"outcome": e, "flags": []} for o, e in expected.items()},
        "verdicts": {},
    }


def test_counts_only_cells_that_ran_and_claims_that_were_made() -> None:
    results = [
        result("pass", "INUSE", linux="INUSE", table_c="INUSE", table_a="ok"),
        result("pass", "ok", linux="ok", table_c="INUSE", table_a="n/a"),
        result("ungated", "ok", table_c="ok", table_a="unknown"),
        result("skip", None, linux="ok", table_c="ok"),  # not run: never counted
        result("error", "INUSE", linux="ok", table_c="ok"),  # interference: no evidence
    ]
    found = model.resemblance(results)
    assert found == {
        "linux": {"agree": 2, "disagree": 0},
        "table_c": {"agree": 2, "disagree": 1},
        "table_a": {"agree": 0, "disagree": 1},
    }
    assert list(found) == ["linux", "table_c", "table_a"]  # closest first


def test_markdown_shows_the_shares() -> None:
    results = [result("pass", "INUSE", linux="INUSE", table_c="ok")]
    report = {
        "format": 2,
        "kind": "host",
        "run_info": {
            "host": {
                "os": "linux",
                "os_release": "r",
                "kernel": "k",
                "machine": "m",
                "python": "3",
            },
            "gate": "linux",
            "plugin_version": "0",
            "isolation": "host",
            "started": "s",
            "finished": "e",
            "exit_status": 0,
        },
        "suites": {},
        "results": results,
        "summary": model.summarize(results),
    }
    text = markdown.render(report)
    assert "## Which source does this host follow?" in text
    assert "| linux | 1 | 0 | 100% |" in text
    assert "| table_c | 0 | 1 | 0% |" in text
