"""xdist: a worker's cell reports reach the controller in bundles (pytest side).

xdist sends each of an item's events apart: logstart, the setup, call and teardown
reports, logfinish, and runtest_protocol_complete. Each is unpacked object by object in
Python on the controller, which on this project cost more than the cells themselves, so
`-n 2` was slower than `-n 0` (docs/speed.md). For a cell run by protocol.py a worker
sends only its call report, serialised by pytest's own pytest_report_to_serializable,
and holds passed and skipped ones back: up to BUNDLE of them ride, as one JSON string,
on the next report it sends. A failure, the worker's last cell and a full bundle are
sent at once, so -x and --maxfail stop as promptly as before; so is any report of an
item that takes pytest's own protocol, carrying the held ones. A worker that is killed
or interrupted loses what it held: those cells are reported with no result.

On the controller the Unfolder replays each cell in order, as the five events a -n 0
run makes (logstart, a quiet setup report, the call report, a quiet teardown report,
logfinish), so every plugin there (terminal, --junitxml, the Recorder) sees what it
always saw. A held cell's xdist completion is held with its report and handed to
xdist's scheduler after it (completions.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from . import completions, jsonline

encode, decode = jsonline.codec()


BUNDLE = 64  # cells per message at most: a terminal line or two of latency
UNFOLD = "bindconform_unfold"  # this call report stands for the cell's five events
CARRIED = "bindconform_carried"  # earlier cells' reports, a JSON list
FROM_WORKER = ("node", "worker_id", "testrun_uid")  # what xdist adds to the reports it sends
HELD = pytest.StashKey[list[str]]()
HOLDER = "bindconform-holder"


def send(item: Any, report: pytest.TestReport, last: bool) -> None:
    """Worker: hold a quiet cell's report back, or send it (with those held before it)."""
    config = item.config
    held = config.stash.setdefault(HELD, [])
    report.__dict__[UNFOLD] = True
    done = config.pluginmanager.get_plugin(HOLDER).done
    if report.failed or last or len(held) >= BUNDLE - 1 or not done.may_hold():
        item.ihook.pytest_runtest_logreport(report=report)  # Holder attaches the held ones
        return
    data = config.hook.pytest_report_to_serializable(config=config, report=report)
    held.append(encode(data))
    done.hold_next()


class Holder:
    """xdist worker: whatever report goes out next (a relayed cell's, or any report of an
    item that took pytest's own protocol) carries the reports held back before it."""

    def __init__(self, config: pytest.Config, done: completions.Worker):
        self.config = config
        self.done = done  # the held cells' completions go with their reports

    @pytest.hookimpl(tryfirst=True)  # before xdist's own hook sends the report
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        held = self.config.stash.get(HELD, None)
        if held:
            report.__dict__[CARRIED] = "[" + ",".join(held) + "]"
            held.clear()
        taken = self.done.take()
        if taken:
            report.__dict__[completions.DONE] = taken


class Unfolder:
    """xdist controller: each relayed cell becomes the five events it stands for."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.hook = config.hook

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Any:
        carried = report.__dict__.pop(CARRIED, None)
        for data in decode(carried) if carried else ():
            earlier = self.hook.pytest_report_from_serializable(
                config=self.config, data=_tuples(data)
            )
            for name in FROM_WORKER:
                if name in report.__dict__:
                    earlier.__dict__[name] = report.__dict__[name]
            self.hook.pytest_runtest_logreport(report=earlier)  # unfolded by this wrapper
        done = report.__dict__.pop(completions.DONE, None)
        if done:  # after their reports: xdist's scheduler learns of no cell before its report
            completions.mark_done(self.config, report.__dict__.get("node"), done)
        if not report.__dict__.pop(UNFOLD, False):
            return (yield)
        hook, nodeid, location = self.hook, report.nodeid, report.location
        hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
        hook.pytest_runtest_logreport(report=_phase_of(report, "setup"))
        result = yield
        hook.pytest_runtest_logreport(report=_phase_of(report, "teardown"))
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)
        return result


def _tuples(data: dict[str, Any]) -> dict[str, Any]:
    """JSON has no tuples, and pytest's serialised report does (execnet keeps them): a
    skip's longrepr (path, line, reason) and the location above all, which --junitxml
    asserts are tuples."""
    for key in ("longrepr", "location"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    for key in ("user_properties", "sections"):
        if isinstance(data.get(key), list):
            data[key] = [tuple(pair) for pair in data[key]]
    return data


def _phase_of(call: pytest.TestReport, when: str) -> pytest.TestReport:
    """The quiet setup or teardown report of a relayed cell, made from its call report."""
    made = quiet_report(
        getattr(call, "id", call.nodeid),
        call.location,
        dict(call.keywords),
        when,
        call.start if when == "setup" else call.stop,
        list(call.user_properties),
    )
    for name in (*FROM_WORKER, "item_index"):
        if name in call.__dict__:
            made.__dict__[name] = call.__dict__[name]
    return made


def quiet_report(
    nodeid: str,
    location: Any,
    keywords: dict[str, Any],
    when: str,
    at: float,
    user_properties: list[tuple[str, object]],
) -> pytest.TestReport:
    """A phase with nothing in it: passed, no output, no time (what pytest reports for the
    setup or teardown of an item without fixtures, which a cell is). `nodeid` is the
    item's own id: pytest 9's structured one is what --junitxml keys by."""
    return pytest.TestReport(
        nodeid,
        location,
        keywords,
        "passed",
        None,
        when,  # type: ignore[arg-type]
        [],
        0.0,
        at,
        at,
        user_properties,
    )
