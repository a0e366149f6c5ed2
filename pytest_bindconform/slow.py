"""Slow cells, off by default: a 'bind X until-free' step retries bind() until it succeeds
or a ceiling passes, to measure how long a port stays blocked (TIME_WAIT lasts a minute or
more). --bindconform-slow turns them on, in every process of the run; the ceiling bounds
the wait. Reaching the ceiling is an unknown (the duration is longer than that), never a pass.
"""

from __future__ import annotations

from typing import Any

from .model import UNTIL_FREE, Cell

DEFAULT_CEILING = 300.0  # seconds: above every documented default (Windows 2000: 240 s)
INTERVAL = 0.25  # seconds between two tries of the bind
_ceiling: float | None = None  # None: slow cells are off


def enable(ceiling: float | None) -> None:
    """None turns slow cells off (the default); else they run, waiting up to `ceiling` s."""
    global _ceiling
    if ceiling is not None and not ceiling > 0:
        raise ValueError(
            f"bindconform_slow_ceiling must be a positive number of seconds: {ceiling}"
        )
    _ceiling = ceiling


def ceiling() -> float | None:
    return _ceiling


def is_slow(cell: Cell) -> bool:
    return any(step.argument == UNTIL_FREE for step in cell.steps)


def off_reason() -> str:
    return (
        "slow cell, off by default: a 'bind ... until-free' step waits up to "
        f"{DEFAULT_CEILING:.0f} s for the port to be free again; run with --bindconform-slow "
        "(ceiling: --bindconform-slow-ceiling SECONDS)"
    )


def waited(record: dict[str, Any]) -> dict[str, Any] | None:
    """The step record of the cell's until-free bind, if it ran."""
    steps = (record.get("observed") or {}).get("steps", [])
    return next((s for s in steps if "waited" in s), None)


def label(record: dict[str, Any]) -> dict[str, Any]:
    """A bind still refused at the ceiling says only that the duration is longer than the
    ceiling: the cell is an unknown (skipped, saying so), whatever an oracle expected."""
    step = waited(record)
    if step is None or step["outcome"] != "TIMEOUT" or record["status"] in ("skip", "error"):
        return record
    record.update(
        status="skip",
        gate=None,
        verdicts={oid: "not-run" for oid in record["verdicts"]},
        reason=f"unknown: the bind was still refused ({step.get('still', step['error'])}) "
        f"after {step['waited']} s, the ceiling: the port stays blocked longer than that "
        f"here (raise --bindconform-slow-ceiling, default {DEFAULT_CEILING:.0f} s)",
    )
    return record


def answer(record: dict[str, Any]) -> str:
    """The measured duration in words, for the terminal (-rA) and the record's reason."""
    step = waited(record)
    if step is None:
        return f"not measured: {record['reason'] or 'the wait did not run'}"
    if step["outcome"] == "ok":
        return f"a plain bind succeeded again after {step['waited']} s ({step['tries']} tries)"
    if step["outcome"] == "TIMEOUT":
        return str(record["reason"])
    return f"the bind failed with {step['error']} after {step['waited']} s: not a wait"


__all__ = ["UNTIL_FREE", "answer", "ceiling", "enable", "is_slow", "label", "off_reason"]
