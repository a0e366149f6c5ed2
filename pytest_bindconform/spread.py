"""How the delivery probe's traffic was distributed over the sockets sharing a port.

"Both received some" says little to a server author: Linux SO_REUSEPORT hashes
connections over the listeners, BSD and macOS SO_REUSEPORT give them all to the
socket bound last, multicast gives each member a copy. An oracle names the shape
(model.SPREADS); this module judges a delivery record against it and says the
distribution in words: per-socket counts and Jain's fairness index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def fairness(counts: list[int]) -> float | None:
    """Jain's index: 1.0 when every socket got the same share, 1/n when one got all."""
    total = sum(counts)
    if not counts or not total:
        return None
    return round(total * total / (len(counts) * sum(c * c for c in counts)), 3)


def holds(spread: str, fairness_min: float, delivery: Mapping[str, Any] | None) -> bool:
    """Does an observed delivery have the distribution an oracle names?

    'last-binder' names its socket as the expectation's receiver (cases.py), so which
    socket is the receiver's check; here it only needs a single socket to have taken all."""
    if not delivery or not delivery.get("sent") or delivery.get("receiver") is None:
        return False
    counts, sent = list(delivery["received"].values()), delivery["sent"]
    if spread == "every":
        return all(count == sent for count in counts)
    if spread == "even":
        index = fairness(counts)
        return all(counts) and index is not None and index >= fairness_min
    return sum(1 for count in counts if count) == 1  # one, last-binder


def text(delivery: Mapping[str, Any] | None) -> str:
    """The observed distribution in words: 'a 61, b 59 of 120, fairness 0.999'."""
    if not delivery:
        return "no traffic sent"
    counts = ", ".join(f"{n} {k}" for n, k in delivery["received"].items())
    index = delivery.get("fairness")
    return f"{counts} of {delivery['sent']}" + (f", fairness {index}" if index is not None else "")


def expected_text(expectation: Mapping[str, Any]) -> str:
    """An expectation record's spread in words ('' when it names none)."""
    spread = expectation.get("spread")
    if not spread:
        return ""
    if spread == "even":
        return f"even (fairness ≥ {expectation.get('fairness_min')})"
    if spread == "last-binder":
        return f"last-binder ({expectation.get('receiver')})"
    return str(spread)
