"""pytest's run protocol for a cell, without what a cell never uses (pytest side, like plugin.py).

pytest runs every item through setup, call and teardown hooks: fixtures, output and log
capture, the SetupState stack, PYTEST_CURRENT_TEST, each phase timed and reported. A
cell has no fixtures and prints nothing; on the library that machinery costs more than
the sockets do (bench/bench_library.py). So a cell runs here: the same hooks a reporter
sees (logstart, a setup, call and teardown report each through logreport, logfinish),
the call report made by pytest_runtest_makereport as always (so -x, --pdb, --junitxml,
xdist and every makereport wrapper behave as before), and none of the per-phase hooks.

A cell takes pytest's own protocol whenever anything could need it: a skip/skipif/xfail
mark, --setup-only/--setup-show, a parent that is not a plain directory or case file (a
package's setup_module), a conftest or third-party plugin hooking pytest_runtest_setup,
_call or _teardown, or a declared server (the user's code may print). Fixtures of an
earlier Python test still set up are torn down when pytest would tear them down.

On an xdist worker the call report goes to relay.py instead, which sends it to the
controller with far fewer messages.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import pytest
from _pytest.outcomes import Exit
from _pytest.runner import CallInfo, check_interactive_exception

try:  # pytest >= 8
    from _pytest.runner import get_reraise_exceptions
except ImportError:  # pytest 7: what its call_and_report reraises

    def get_reraise_exceptions(config: Any) -> tuple[type[BaseException], ...]:  # type: ignore[misc]
        return (Exit,) if config.getoption("usepdb", False) else (Exit, KeyboardInterrupt)


from . import relay as relay_

NEEDS_PYTEST = frozenset({"skip", "skipif", "xfail", "usefixtures", "filterwarnings"})


def run(item: Any, nextitem: pytest.Item | None) -> bool:
    """Run a cell's protocol; False when pytest's own protocol must run it instead."""
    if not _lean_allowed(item):
        return False
    ihook = item.ihook
    nodeid, location = item.nodeid, item.location
    session = item.session
    relay = hasattr(item.config, "workerinput") and not session._setupstate.stack
    if not relay:
        ihook.pytest_runtest_logstart(nodeid=nodeid, location=location)
        ihook.pytest_runtest_logreport(report=_quiet_report(item, "setup"))
    call = CallInfo.from_call(item.runtest, when="call", reraise=_reraise(item.config))
    report = ihook.pytest_runtest_makereport(item=item, call=call)
    if relay:
        relay_.send(item, report, last=nextitem is None)
    else:
        ihook.pytest_runtest_logreport(report=report)
    if check_interactive_exception(call, report):
        ihook.pytest_exception_interact(node=item, call=call, report=report)
    if relay:
        return True
    if session._setupstate.stack:
        _teardown(item, nextitem)
    else:
        ihook.pytest_runtest_logreport(report=_quiet_report(item, "teardown"))
    ihook.pytest_runtest_logfinish(nodeid=nodeid, location=location)
    return True


def _teardown(item: Any, nextitem: pytest.Item | None) -> None:
    """An earlier Python test's fixtures are still set up: tear down what nextitem does not
    need (everything, when the run stops), as pytest's teardown would, an error in a
    finalizer reported as this item's teardown error. Not through the per-phase hooks:
    their setup halves never ran for a cell."""
    session = item.session
    if session.shouldfail or session.shouldstop:
        nextitem = None
    call = CallInfo.from_call(
        lambda: session._setupstate.teardown_exact(nextitem),
        when="teardown",
        reraise=_reraise(item.config),
    )
    report = item.ihook.pytest_runtest_makereport(item=item, call=call)
    item.ihook.pytest_runtest_logreport(report=report)
    if check_interactive_exception(call, report):
        item.ihook.pytest_exception_interact(node=item, call=call, report=report)


def _lean_allowed(item: Any) -> bool:
    config = item.config
    if config.getoption("setuponly", False) or config.getoption("setupshow", False):
        return False
    if getattr(item, "runs_user_code", False) or not _plain_parents(item.parent, item):
        return False
    return not any(mark.name in NEEDS_PYTEST for mark in item.iter_markers())


# pytest 7 has no Dir node: a directory without __init__.py is no node at all there
PLAIN_NODES = tuple(t for t in (pytest.Session, getattr(pytest, "Dir", None)) if t is not None)
KNOWN = ("_pytest.", "pytest_bindconform.", "xdist.", "_hypothesis_pytestplugin")
PHASES = ("pytest_runtest_setup", "pytest_runtest_call", "pytest_runtest_teardown")


def _phase_hooks_known(item: Any) -> bool:
    """No conftest or third-party plugin hooks a phase: pytest's own hooks there only
    capture, log and run fixtures, which a cell has no use for. Anyone else's (a
    conftest's pytest_runtest_call, pytest-randomly's reseeding) must run as always."""
    return all(
        impl.function.__module__.startswith(KNOWN)
        for name in PHASES
        for impl in getattr(item.ihook, name).get_hookimpls()
    )


def _reraise(config: Any) -> tuple[type[BaseException], ...]:
    """KeyboardInterrupt and Exit propagate (unless --pdb), as in pytest's own protocol."""
    made: tuple[type[BaseException], ...] | None = getattr(config, "_bindconform_reraise", None)
    if made is None:
        made = config._bindconform_reraise = get_reraise_exceptions(config)
    return made


def _plain_parents(parent: Any, item: Any) -> bool:
    """Only a session, plain directories and the case file above the cell (no node whose
    setup runs code: a Package runs its __init__.py's setup_module), and only known phase
    hooks. Decided once per case file: hooks of conftests are per directory."""
    known: bool | None = getattr(parent, "_bindconform_plain", None)
    if known is None:
        node, known = parent, _phase_hooks_known(item)
        while node is not None and known:
            known = isinstance(node, PLAIN_NODES) or node is parent
            node = node.parent
        parent._bindconform_plain = known
    return known


def _quiet_report(item: Any, when: str) -> pytest.TestReport:
    """A cell's setup or teardown: nothing in it (relay.quiet_report)."""
    keywords = _keywords(item)
    nodeid = getattr(item, "id", item.nodeid)
    return relay_.quiet_report(
        nodeid, item.location, keywords, when, time.time(), item.user_properties
    )


def _keywords(item: Any) -> dict[str, Literal[1]]:
    """The item's keywords as a report carries them, made once per item."""
    made: dict[str, Literal[1]] | None = getattr(item, "_bindconform_keywords", None)
    if made is None:
        made = {name: 1 for name in item.keywords}
        item._bindconform_keywords = made
    return dict(made)
