"""How fast does exploration run here? python bench/bench_explore.py [N] [--seed S] [--deliveries]

Prints examples per second (Hypothesis examples, shrinking included) and socket
sequences per second (each one run with real sockets on a port proven free
before and after), next to the rate of the same state machine without sockets,
so the share of Hypothesis itself is visible. Target: >= 300 sequences/s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from pytest_bindconform import explore
from pytest_bindconform.host import fingerprint


def hypothesis_alone(host_examples: int) -> float:
    """Examples/s of a state machine shaped like explore's, with no sockets."""
    count = [0]
    specs = explore.socket_specs(fingerprint())
    later = st.sampled_from([(c, i) for i in range(4) for c in ("listen", "close", "bind")])

    class Empty(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            count[0] += 1
            self.n = 0

        @initialize(spec=specs)
        def bind_first(self, spec: object) -> None:
            self.n += 1

        @rule(spec=specs)
        def bind_new(self, spec: object) -> None:
            self.n += 1

        @precondition(lambda self: self.n > 0)
        @rule(what=later)
        def again(self, what: object) -> None:
            pass

    config = settings(
        max_examples=host_examples,
        stateful_step_count=explore.STEPS_PER_SEQUENCE,
        database=None,
        deadline=None,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate,),
    )
    start = time.perf_counter()
    run_state_machine_as_test(Empty, settings=config)  # type: ignore[no-untyped-call]
    return count[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("examples", nargs="?", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--deliveries", action="store_true", help="also compare who receives")
    args = parser.parse_args()
    host = fingerprint()
    print(host.header())
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
        f"on {os.cpu_count()} CPUs"
    )
    alone = hypothesis_alone(min(args.examples, 1000))
    with tempfile.TemporaryDirectory() as out:
        result = explore.run(
            host, args.examples, args.seed, False, Path(out), deliveries=args.deliveries, say=None
        )
        found = list(result.found)
    seq_rate = result.sequences / result.seconds
    print(f"hypothesis alone (no sockets):  {alone:8.1f} examples/s")
    print(
        f"exploration, seed {result.seed}: {result.examples} examples, {result.sequences} "
        f"socket sequences, {result.deliveries} deliveries compared, {result.seconds:.1f} s"
    )
    print(
        f"  {result.rate:8.1f} examples/s, {seq_rate:8.1f} socket sequences/s "
        f"(target >= 300), {len(found)} divergences, {result.interference} interference"
    )
    for line in found:
        print(f"  divergence: {line}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
