"""Pooled socket owners (ownerpool.py, owner.py, platforms/_posix.py): helpers started once,
reset between cells, really killed by a cell's kill step, all reaped at session end."""

from __future__ import annotations

import errno
import json
import os
import pwd
import socket
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_bindconform import owner, ownerpool, platforms

posix_root = pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() != 0, reason="needs POSIX and root (other-user)"
)
SOCKET = {"op": "socket", "family": "inet", "type": "stream"}


@pytest.fixture
def pool() -> Iterator[ownerpool.Pool]:
    """The process-wide pool, emptied before and after: each test starts from nothing."""
    ownerpool.shutdown()
    yield ownerpool.POOL
    ownerpool.shutdown()


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (a zombie was never reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    assert "State:\tZ" not in status, f"process {pid} is a zombie: never reaped"
    return True


def listening(child: ownerpool.Child, name: str = "a") -> int:
    assert child.do({"socket": name, **SOCKET})["outcome"] == "ok"
    assert child.do({"socket": name, "op": "bind", "address": "127.0.0.1", "port": 0})["outcome"]
    assert child.do({"socket": name, "op": "listen"})["outcome"] == "ok"
    return int(child.do({"socket": name, "op": "sockname"})["port"])


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED


def counting_writes(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every request sent to any helper, in order: each is one round trip."""
    sent: list[dict] = []
    real = ownerpool.Helper._write

    def write(self: ownerpool.Helper, req: dict) -> bool:
        sent.append(req)
        return real(self, req)

    monkeypatch.setattr(ownerpool.Helper, "_write", write)
    return sent


@posix_root
@pytest.mark.parametrize("kind", ["process", "other-user"])
def test_one_helper_serves_cell_after_cell_closing_the_last_cells_sockets_first(
    pool, kind, monkeypatch
) -> None:
    """A cell's end costs no round trip: its sockets are closed by the helper's next
    request (the next cell's first, before it is served), or at once by settle() where a
    proof needs their ports."""
    first = ownerpool.Child(kind)
    port = listening(first)
    assert not refused(port)
    first.close()
    ownerpool.settle()
    assert refused(port), "settle() left the helper's listener open"
    sent = counting_writes(monkeypatch)
    pids = []
    for cell in range(4):
        child = ownerpool.Child(kind)
        pids.append(child.helper.process.pid)
        before = len(sent)
        name = f"s{cell}"  # not the last cell's name: replacing that one would close it too
        assert child.do({"socket": name, **SOCKET})["outcome"] == "ok"  # the cell's first
        assert refused(port), "the last cell's listener outlived the next cell's first request"
        port = listening(child, name)
        assert len(sent) - before == 5, "closing the last cell's sockets cost a round trip"
        assert bool(sent[before].get("reset")) == (len(pids) > 1)  # settle() reset the first
        assert not any(r.get("reset") for r in sent[before + 1 :])
        child.close()
        assert len(sent) - before == 5, "giving the helper back sent a request"
        assert not refused(port), "the cell's listener closed before the helper was asked"
    assert len(set(pids)) == 1 and pool.started == 1 and pool.replaced == 0
    ownerpool.settle()
    assert refused(port), "the last cell's listener outlived settle()"
    for pid in set(pids):
        uids = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[:2]
        wanted = pwd.getpwnam(owner.OTHER_USER).pw_uid if kind == "other-user" else os.getuid()
        assert uids == [str(wanted)] * 2  # real and effective: switched once, in the zygote


@posix_root
def test_a_helper_that_died_between_cells_is_replaced_and_the_cell_runs(pool) -> None:
    """The next cell's first request finds it gone: a fresh helper serves that request,
    and the dead one is never handed out again."""
    first = ownerpool.Child("process")
    pid = first.helper.process.pid
    listening(first)
    first.close()
    os.kill(pid, 9)
    status = Path(f"/proc/{pid}/status")
    deadline = time.monotonic() + 10
    while "State:\tZ" not in status.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)  # dead: a zombie until its zygote's next request reaps it
    again = ownerpool.Child("process")
    port = listening(again)
    assert again.helper.process.pid not in (0, pid) and not refused(port)
    assert pool.started == 2 and pool.replaced == 1 and not alive(pid)
    again.close()
    ownerpool.settle()
    assert refused(port) and pool.replaced == 1


@posix_root
@pytest.mark.parametrize("found_by", ["next cell", "settle"])
def test_a_helper_holding_a_socket_it_was_not_asked_for_is_replaced(
    pool, tmp_path, found_by
) -> None:
    """A server factory that leaks a socket: the reset finds it, the helper dies with it,
    whether the reset rides on a later cell's first request (which a fresh helper then
    serves) or is settle()'s (which the runner calls after every cell with a factory)."""
    (tmp_path / "leaky_factory.py").write_text(
        textwrap.dedent(
            """\
            import socket
            LEAKED = []

            def make(family, kind, address, port):
                extra = socket.socket()
                extra.bind(("127.0.0.1", 0))
                extra.listen()
                LEAKED.append(extra)
                s = socket.socket()
                s.bind((address, port))
                return s
            """
        )
    )
    sys.path.insert(0, str(tmp_path))  # sent to the zygote with the next fork
    try:
        child = ownerpool.Child("process")
        pid = child.helper.process.pid
        answer = child.do(
            {
                "socket": "a",
                "op": "make",
                "factory": "leaky_factory:make",
                "family": "inet",
                "type": "stream",
                "address": "127.0.0.1",
                "port": 0,
            }
        )
        assert answer["outcome"] == "ok", answer
        child.close()
    finally:
        sys.path.remove(str(tmp_path))
    if found_by == "settle":
        ownerpool.settle()
        assert pool.replaced == 1 and not alive(pid)
    again = ownerpool.Child("process")
    assert again.do({"socket": "a", **SOCKET})["outcome"] == "ok"
    assert again.helper.process.pid != pid, "the helper with a leaked socket served a cell"
    assert again.do({"op": "reset", "socket": "-"})["held"] == 0
    again.close()
    assert pool.replaced == 1
    assert not alive(pid)


@posix_root
@pytest.mark.parametrize("kind", ["process", "other-user"])
def test_a_killed_helper_really_dies_with_its_sockets_and_the_next_cell_works(pool, kind) -> None:
    child = ownerpool.Child(kind)
    pid = child.helper.process.pid
    port = listening(child)
    child.kill()
    assert not alive(pid), "kill returned while the helper still existed"
    assert refused(port), "the killed helper's listener survived"
    with pytest.raises(owner.OwnerUnavailable, match="killed"):
        child.do({"socket": "a", "op": "sockname"})
    child.close()  # the cell's cleanup after a kill: nothing to give back
    after = ownerpool.Child(kind)
    assert after.helper.process.pid not in (0, pid)
    listening(after)
    after.close()


@posix_root
def test_shutdown_reaps_every_helper_and_starter(pool) -> None:
    children = [ownerpool.Child(kind) for kind in ("process", "process", "other-user")]
    pids = [c.helper.process.pid for c in children]
    children[0].close()  # idle, the others still busy: shutdown reaps both kinds
    starters = [s.proc.pid for s in pool.starters.values()]
    assert len(starters) == 2 and all(alive(p) for p in pids + starters)
    ownerpool.shutdown()
    assert not any(alive(p) for p in pids + starters)


def test_unavailable_owner_is_decided_once_and_says_why(pool, monkeypatch) -> None:
    calls: list[str] = []

    def refuse(kind: str) -> None:
        calls.append(kind)
        raise PermissionError("owner 'other-user' needs root; rerun as root")

    monkeypatch.setattr(platforms.current, "owner_starter", refuse)
    for _ in range(3):
        with pytest.raises(owner.OwnerUnavailable, match="needs root; rerun as root"):
            ownerpool.Child("other-user")
    assert calls == ["other-user"]


def test_other_user_availability_is_read_once_per_process(monkeypatch) -> None:
    calls: list[int] = []

    def problem() -> str:
        calls.append(1)
        return "owner 'other-user' needs the account 'nobody'"

    monkeypatch.setattr(owner, "_problems", {})
    monkeypatch.setattr(owner, "_platform", type("P", (), {"other_user_problem": problem}))
    for _ in range(4):
        with pytest.raises(owner.OwnerUnavailable, match="needs the account"):
            owner.other_user_ids()
    assert calls == [1]


# -- whole runs: same results with and without xdist, nothing left behind ---------------
CASES = """\
format: 1
id: pooled
title: owners of other processes
references: []
oracles:
  linux: {kind: measured, source: "this test", applies: {os: linux}}
cases:
  - id: dup
    variants: {family: [inet, inet6]}
    sockets:
      a: {address: specific}
      b: {address: specific, owner: process}
    steps: [bind a, bind b]
    test: bind b
    expect: {linux: INUSE}
  - id: dup-other
    variants: {family: [inet, inet6]}
    sockets:
      a: {address: specific}
      b: {address: specific, owner: other-user}
    steps: [bind a, bind b]
    test: bind b
    expect: {linux: INUSE}
  - id: held-by-the-same-helper-next
    variants: {family: [inet, inet6]}
    sockets:
      a: {address: specific, owner: process}
    steps: [bind a, listen a]
    test: listen a
    expect: {linux: ok}
"""


def leftovers(tag: str) -> list[int]:
    """Processes still running with this run's tag in their environment."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                env = (entry / "environ").read_bytes()
            except OSError:
                continue
            if f"BINDCONFORM_TEST_TAG={tag}".encode() in env.split(b"\0"):
                found.append(int(entry.name))
    return found


CRASH = """\
format: 1
id: pooled-crash
title: a server killed with its connection open
references: []
oracles: {}
goal: {id: restart, transport: tcp, title: "a restart is not blocked"}
cases:
  - id: after-crash
    variants: {family: [inet, inet6]}
    sockets:
      old: {candidate: true, address: wildcard, owner: process}
      peer: {address: wildcard}
      new: {candidate: true, address: wildcard}
    steps: [bind old, listen old, connect peer specific, accept old, kill old,
            recv peer, close peer, bind new, listen new]
    test: listen new
    need: {outcome: ok}
"""


@posix_root
def test_runs_with_child_owners_agree_with_and_without_xdist_and_leave_no_process(
    pytester, monkeypatch
) -> None:
    pytester.makefile(".bind.yaml", pooled=CASES, crash=CRASH)
    tag = uuid.uuid4().hex
    monkeypatch.setenv("BINDCONFORM_TEST_TAG", tag)
    seen = []
    for workers in ([], ["-n", "2"]):
        out = pytester.path / f"report{len(workers)}.json"
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", f"--bindconform-json={out}", *workers
        )
        assert result.ret == 0, result.stdout.str()
        assert not leftovers(tag), f"a helper or zygote outlived the run {workers}"
        results = json.loads(out.read_text())["results"]
        seen.append({r["id"]: (r["status"], (r["observed"] or {}).get("outcome")) for r in results})
        ran = [r for r in results if r["status"] != "skip"]  # skipped: a library absent here
        assert all(r["status"] != "error" for r in results)
        kills = [r for r in ran if "kill old" in r["scenario"]["steps"]]
        assert len(kills) > 20
        for r in kills:  # the crash released the port: the peer saw its connection reset
            steps = {(s["socket"], s["call"]): s["outcome"] for s in r["observed"]["steps"]}
            assert steps[("peer", "recv")] in ("RESET", "ok"), steps
        dups = [v for k, v in seen[-1].items() if "dup" in k]
        assert len(dups) == 4 and all(v == ("pass", "INUSE") for v in dups)
    assert seen[0] == seen[1]


@pytest.mark.skipif(sys.platform == "win32", reason="on Windows the real run covers it")
def test_windows_spawned_helpers_speak_the_same_protocol(monkeypatch) -> None:
    """windows.Spawner's helper (a fresh interpreter over stdin/stdout, as on Windows) takes
    the hello with this sys.path, serves a cell, is reset, and dies when killed."""
    from pytest_bindconform.platforms import windows

    spawner = windows.owner_starter("process")
    helper = ownerpool.Helper("process", spawner.start())
    try:
        assert helper.do({"socket": "a", **SOCKET})["outcome"] == "ok"
        assert helper.do({"socket": "a", "op": "bind", "address": "127.0.0.1", "port": 0})
        port = int(helper.do({"socket": "a", "op": "sockname"})["port"])
        assert helper.do({"socket": "a", "op": "listen"})["outcome"] == "ok"
        assert not refused(port)
        assert helper.reset()
        assert refused(port)
        assert helper.do({"socket": "b", **SOCKET})["outcome"] == "ok"
        assert helper.do({"socket": "b", "op": "bind", "address": "127.0.0.1", "port": 0})
        assert helper.do({"socket": "b", "op": "listen"})["outcome"] == "ok"
        port = int(helper.do({"socket": "b", "op": "sockname"})["port"])
        helper.dirty = True  # given back after a cell: the next request resets first
        assert helper.do({"socket": "c", **SOCKET})["outcome"] == "ok"
        assert refused(port), "the reset riding on the next request left the listener open"
    finally:
        helper.process.kill()
    assert helper.process.proc.poll() is not None
    monkeypatch.delenv(windows.USER_ENV, raising=False)
    with pytest.raises(PermissionError, match=windows.USER_ENV):
        windows.owner_starter("other-user")


STARTED_AT_COLLECTION = """
import json, os
from pytest_bindconform import ownerpool

def pytest_collection_modifyitems(session, config, items):  # before collection_finish
    if items:  # a process that runs cells (an xdist controller collects none)
        path = os.path.join(os.environ["SEEN_DIR"], f"{os.getpid()}.json")
        with open(path, "w") as fh:
            json.dump(sorted(ownerpool.POOL.starters), fh)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX zygotes; Windows spawns helpers")
@pytest.mark.parametrize("workers", ["0", "2"])
def test_an_owner_starter_is_started_while_cells_are_still_collected(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """The zygote needs about half a second: it starts when the first cell that needs it
    is collected, not when the first such cell runs (every process that runs cells)."""
    from pytest_bindconform.host import os_family
    from pytest_bindconform.oracles import DEFAULT_GATES

    os_name, gate = os_family(), DEFAULT_GATES[os_family()]
    pytester.makepyfile(seen_plugin=STARTED_AT_COLLECTION)
    monkeypatch.setenv("SEEN_DIR", str(pytester.path))
    cells = "".join(
        f"  - id: c{i}\n    sockets: {{a: {{address: specific, owner: process}}}}\n"
        f"    steps: [bind a]\n    expect: {{{gate}: ok}}\n"
        for i in range(4)
    )
    pytester.makefile(
        ".bind.yaml",
        owners=f"format: 1\nid: owners\ntitle: owners\nreferences: []\noracles:\n"
        f"  {gate}: {{kind: measured, source: here, applies: {{os: {os_name}}}}}\n"
        f"cases:\n{cells}",
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "seen_plugin", "-n", workers, "-q",
        "--bindconform-ports=15500-15599",
    )  # fmt: skip
    result.assert_outcomes(passed=4)
    seen = [json.loads(p.read_text()) for p in pytester.path.glob("*.json")]
    assert seen and all(starters == ["process"] for starters in seen), seen


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX zygotes; Windows spawns helpers")
@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_run_that_ends_while_its_zygote_starts_ends_quietly(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """Every cell deselected: the run hangs up on a zygote that is still importing. The
    zygote exits without a traceback on the user's terminal, and leaves nothing behind."""
    pytester.makefile(".bind.yaml", pooled=CASES)
    tag = uuid.uuid4().hex
    monkeypatch.setenv("BINDCONFORM_TEST_TAG", tag)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", workers, "-q", "-k", "no_cell_is_named_this"
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str(), result.stderr.str()
    deadline = time.monotonic() + 10
    while leftovers(tag) and time.monotonic() < deadline:  # the zygote may still be exiting
        time.sleep(0.05)
    assert not leftovers(tag)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX zygotes; Windows spawns helpers")
def test_a_process_that_never_shuts_the_pool_down_still_reaps_it_at_exit(monkeypatch) -> None:
    """The engine used without pytest (a script, the benchmarks): the pool's atexit hook
    closes helpers and zygotes cleanly, with nothing printed about it."""
    import subprocess

    tag = uuid.uuid4().hex
    script = (
        "from pytest_bindconform import ownerpool\n"
        "child = ownerpool.Child('process')\n"
        "child.do({'socket': 'a', 'op': 'socket', 'family': 'inet', 'type': 'stream'})\n"
        "child.close()\n"
        "print('done')\n"
    )
    env = {**os.environ, "BINDCONFORM_TEST_TAG": tag}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, "done\n", "")
    assert not leftovers(tag), "a helper or zygote outlived the process"


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/PID/maps (Linux)")
@pytest.mark.parametrize("kind", ["process", "other-user"])
def test_helpers_speak_the_fast_json_codec_when_their_parent_has_it(pool, kind) -> None:
    """A helper interpreter starts without site-packages (python -S), and orjson is found
    only on the sys.path its parent sends: the zygote imports it then, before forking."""
    pytest.importorskip("orjson")
    if kind == "other-user" and os.geteuid() != 0:
        pytest.skip("other-user needs root")
    child = ownerpool.Child(kind)
    assert child.do({"socket": "a", **SOCKET})["outcome"] == "ok"
    assert child.helper is not None
    zygote = pool.starters[kind].proc.pid  # imported once, not after every fork
    for pid in (zygote, child.helper.process.pid):
        assert "orjson" in Path(f"/proc/{pid}/maps").read_text()
    child.close()


def test_both_json_codecs_read_what_either_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where orjson has no wheel (FreeBSD) the stdlib speaks instead, and a parent and its
    helper may differ: each must read the other's text, one value per line."""
    from pytest_bindconform import jsonline

    fast = jsonline.codec()
    monkeypatch.setattr(jsonline, "_FOUND", [])
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson raises ImportError
    slow = jsonline.codec()
    assert slow[1] is json.loads and jsonline._FOUND == []  # tried again when next asked
    value = {
        "socket": "b",
        "error": "Adresse déjà utilisée\nà la ligne",
        "port": 20001,
        "wait": 0.25,
        "answers": [{"outcome": "ok", "errno": 0}],
        "seen": [["::1", 5, "6269"]],
        7: None,
    }
    for write in (fast[0], slow[0]):
        text = write(value)
        assert "\n" not in text
        for read in (fast[1], slow[1]):
            assert read(text) == {**{k: v for k, v in value.items() if k != 7}, "7": None}


def _two_cpus() -> list[int]:
    mask = sorted(getattr(os, "sched_getaffinity", lambda _: set())(0))
    if sys.platform != "linux" or len(mask) < 2:
        pytest.skip("needs Linux and at least two CPUs this process may run on")
    return mask[:2]


@posix_root
@pytest.mark.parametrize("kind", ["process", "other-user"])
def test_a_linux_helper_is_moved_to_the_cpu_of_the_process_it_serves(pool, kind) -> None:
    """Each request blocks until its answer: on the caller's CPU the two take turns, where
    on another CPU each request and answer wakes a CPU gone idle (docs/speed.md). When
    the caller moves, its helper follows at the next request."""
    first_cpu, second_cpu = _two_cpus()
    mask = os.sched_getaffinity(0)
    child = ownerpool.Child(kind)
    try:
        assert child.helper is not None
        pid = child.helper.process.pid
        for cpu in (first_cpu, second_cpu, first_cpu):
            os.sched_setaffinity(0, {cpu})  # this process moves; its helper must follow
            assert child.do({"socket": "a", **SOCKET})["outcome"] == "ok"
            assert os.sched_getaffinity(pid) == {cpu}
            assert child.do({"socket": "a", "op": "close"})["outcome"] == "ok"
    finally:
        os.sched_setaffinity(0, mask)
        child.close()
    ownerpool.settle()
    assert pool.replaced == 0


def test_colocate_moves_a_helper_only_when_its_caller_moved(monkeypatch) -> None:
    """One sched_getcpu() per request and a sched_setaffinity() only after a move; a helper
    that may not be moved (EPERM) serves where it is, and is not asked again until the
    caller moves; no CPU known (sched_getcpu failed): nothing is touched."""
    from pytest_bindconform.platforms import linux

    moves: list[tuple[int, set[int]]] = []
    refuse = [False]

    def setaffinity(pid: int, cpus: set[int]) -> None:
        moves.append((pid, cpus))
        if refuse[0]:
            raise PermissionError(1, "Operation not permitted")

    cpu = [3]
    monkeypatch.setattr(linux, "_GETCPU", [lambda: cpu[0]])
    monkeypatch.setattr(os, "sched_setaffinity", setaffinity, raising=False)
    assert linux.colocate(41, None) == 3 and moves == [(41, {3})]
    assert linux.colocate(41, 3) == 3 and len(moves) == 1, "moved again without a reason"
    cpu[0], refuse[0] = 0, True
    assert linux.colocate(41, 3) == 0 and moves[-1] == (41, {0})  # refused: it stays put
    assert linux.colocate(41, 0) == 0 and len(moves) == 2
    cpu[0] = -1
    assert linux.colocate(41, 0) == 0 and len(moves) == 2


def test_helpers_stay_where_the_os_runs_them_without_a_colocator(monkeypatch) -> None:
    """macOS and FreeBSD (and a Linux without sched_getcpu) move no helper: follow() does
    nothing there, and a process without follow() (Windows) is asked nothing."""
    from pytest_bindconform.platforms import _posix, darwin, freebsd, linux

    assert darwin.owner_starter is _posix.owner_starter is freebsd.owner_starter
    zygote = _posix.Zygote.__new__(_posix.Zygote)
    zygote.colocate = None
    a, b = socket.socketpair()
    helper = _posix.ForkedHelper(zygote, os.getpid(), a)
    helper.follow()
    assert helper.cpu is None
    helper.close()
    b.close()
    monkeypatch.setattr(linux, "_GETCPU", [None])
    started: list[object] = []

    def init(self: object, owner: str, colocate: object = None) -> None:
        started.append(colocate)

    monkeypatch.setattr(_posix.Zygote, "__init__", init)
    linux.owner_starter("process")
    assert started == [None]
    assert ownerpool.Helper("process", object()).follow is ownerpool._stay
