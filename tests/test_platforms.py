"""The per-OS modules: one API, and parsers checked against output recorded on real systems.

Every fixture under tests/fixtures/recorded/<os>/ is a command's output as pasted on a
public page; sources.json names the page and the system it was recorded on.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_bindconform import platforms
from pytest_bindconform.isolate import IsolationUnavailable
from pytest_bindconform.platforms import _common, _control, darwin, freebsd, linux, windows
from pytest_bindconform.simulate import RECORDED, RecordedSystem

ROOT = Path(__file__).parent / "fixtures" / "recorded"


def recorded(os_name: str, name: str) -> str:
    return (ROOT / os_name / name).read_text(encoding="utf-8")


# -- one API ------------------------------------------------------------------
def test_every_platform_module_offers_the_same_api() -> None:
    signatures: dict[str, set[str]] = {}
    for os_name, module in platforms.MODULES.items():
        missing = [n for n in _common.API if not hasattr(module, n)]
        assert not missing, f"platforms/{os_name}.py lacks {missing}"
        assert os_name == module.NAME
        assert set(module.ERRORS) == set(linux.ERRORS), os_name
        for n in _common.API:
            value = getattr(module, n)
            if callable(value):
                signatures.setdefault(n, set()).add(str(inspect.signature(value)))
    assert {n: s for n, s in signatures.items() if len(s) > 1} == {}


def test_the_module_for_this_machine_is_picked_once_from_sys_platform() -> None:
    assert platforms.family("win32") == "windows"
    assert platforms.family("darwin") == "darwin"
    assert platforms.family("freebsd14") == "freebsd"
    assert platforms.family("linux") == "linux"
    assert platforms.current is platforms.MODULES[platforms.family(sys.platform)]
    with pytest.raises(ValueError, match="known: linux, windows, darwin, freebsd"):
        platforms.for_os("plan9")


@pytest.mark.parametrize("module", [windows, darwin, freebsd])
def test_isolation_exists_only_on_linux(module: object) -> None:
    with pytest.raises(IsolationUnavailable, match="only on Linux"):
        module.enter_isolation()  # type: ignore[attr-defined]


def test_the_linger_struct_differs_per_os() -> None:
    assert windows.rst_linger() == b"\x01\x00\x00\x00"  # two u_shorts
    assert len(linux.rst_linger()) == len(darwin.rst_linger()) == 8  # two ints


# -- every fixture cites where it was recorded --------------------------------
@pytest.mark.parametrize("os_name", ["windows", "darwin", "freebsd"])
def test_every_recorded_output_cites_its_public_source(os_name: str) -> None:
    assert ROOT.resolve() == RECORDED
    sources = json.loads((ROOT / os_name / "sources.json").read_text())
    files = {p.name for p in (ROOT / os_name).glob("*.txt")}
    assert files == set(sources["files"]), "every fixture has an entry and every entry a file"
    for name, entry in sources["files"].items():
        assert entry["url"].startswith("https://"), name
        assert entry["recorded_on"] and entry["command"], name


# -- Windows: netsh, ver -------------------------------------------------------
def test_netsh_excluded_ranges_of_a_github_actions_runner() -> None:
    tcp = recorded("windows", "netsh-excludedportrange-tcp.actions.txt")
    udp = recorded("windows", "netsh-excludedportrange-udp.actions.txt")
    assert windows.parse_excluded_ranges(tcp) == [
        (80, 80),
        (5986, 5986),
        (47001, 47001),
        (51417, 51516),
        (51517, 51616),
    ]
    assert windows.parse_excluded_ranges(udp) == [(56030, 56129), (56130, 56229)]


def test_an_administered_exclusion_keeps_its_range_despite_the_asterisk() -> None:
    text = recorded("windows", "netsh-excludedportrange-tcp.administered.txt")
    marked = [line for line in text.splitlines() if "55679" in line]
    assert marked and marked[0].rstrip().endswith("*")  # as recorded
    assert windows.parse_excluded_ranges(text)[-1] == (55679, 55679)


def test_localised_netsh_headers_do_not_matter() -> None:
    ranges = windows.parse_excluded_ranges(
        recorded("windows", "netsh-excludedportrange-tcp.es.txt")
    )
    assert len(ranges) == 24
    assert ranges[0] == (1025, 1124) and ranges[-1] == (50000, 50059)


def test_dynamic_port_range_clean_and_in_a_prefixed_build_log() -> None:
    assert windows.parse_dynamic_range(recorded("windows", "netsh-dynamicport-tcp.txt")) == (
        49152,
        65535,
    )
    log = recorded("windows", "netsh-dynamicport-tcp.packer-log.txt")
    assert windows.parse_dynamic_range(log) == (1024, 65534)


def test_ver_gives_major_minor_build() -> None:
    assert windows.parse_ver(recorded("windows", "ver.txt")) == "10.0.19041"
    assert windows.parse_ver("Microsoft Windows [Versión 10.0.19045.3570]") == "10.0.19045"
    assert windows.parse_ver("no version here") == ""


def test_windows_facts_from_the_recorded_machine() -> None:
    facts = windows.facts(RecordedSystem("windows"))
    assert (facts.os, facts.os_version, facts.os_release) == ("windows", "10.0.19041", "10")
    assert (51417, 51516) in facts.excluded_ports and (56030, 56129) in facts.excluded_ports
    assert facts.ephemeral_ports == (49152, 65535)


# -- macOS: sw_vers, uname, sysctl, ifconfig ------------------------------------
def test_sw_vers_of_catalina() -> None:
    assert darwin.parse_sw_vers(recorded("darwin", "sw_vers.txt")) == ("Mac OS X", "10.15.5")


def test_uname_a_of_a_mac_and_of_a_rosetta_shell() -> None:
    assert _common.parse_uname_a(recorded("darwin", "uname-a.txt")) == (
        "Darwin",
        "19.6.0",
        "Darwin Kernel Version 19.6.0: Thu Oct 29 22:56:45 PDT 2020; "
        "root:xnu-6153.141.2.2~1/RELEASE_X86_64",
        "x86_64",
    )
    rosetta = _common.parse_uname_a(recorded("darwin", "uname-a.rosetta.txt"))
    assert rosetta is not None
    assert (rosetta[1], rosetta[3]) == ("24.0.0", "x86_64")  # an ARM64 kernel, x86_64 shell
    assert "RELEASE_ARM64" in rosetta[2]


def test_bsd_sysctl_port_ranges() -> None:
    for os_name, name in (
        ("darwin", "sysctl-portrange.txt"),
        ("darwin", "sysctl-a.excerpt.txt"),
        ("freebsd", "sysctl-portrange.txt"),  # indented, as quoted in a mail
    ):
        values = _common.parse_sysctl(recorded(os_name, name))
        assert _common.sysctl_range(values, *darwin._bsd.PORTRANGE) == (49152, 65535), name
    excerpt = _common.parse_sysctl(recorded("darwin", "sysctl-a.excerpt.txt"))
    assert excerpt["net.inet6.ip6.v6only"] == "0"
    assert _common.sysctl_range(excerpt, "net.inet.ip.portrange.lowfirst", "x") is None


def test_ifconfig_lo0_addresses_without_link_local_ones() -> None:
    mac = _common.parse_ifconfig(recorded("darwin", "ifconfig-lo0.txt"))
    assert mac == {"inet": ("127.0.0.1",), "inet6": ("::1",)}
    ula = _common.parse_ifconfig(recorded("darwin", "ifconfig-lo0.ula.txt"))
    assert ula["inet6"] == ("::1", "fd54:185f:37df:cad2:ba8d:12ff:fe3a:32de")
    handbook = _common.parse_ifconfig(recorded("freebsd", "ifconfig-lo0.txt"))
    assert handbook == {"inet": ("127.0.0.1",), "inet6": ("::1",)}  # dc0's address is not lo0's
    opnsense = _common.parse_ifconfig(recorded("freebsd", "ifconfig-lo0.opnsense.txt"))
    assert opnsense == {"inet": ("127.0.0.1",), "inet6": ("fd08::1",)}  # no ::1 there


def test_darwin_facts_from_the_recorded_machine() -> None:
    facts = darwin.facts(RecordedSystem("darwin"))
    assert (facts.os_version, facts.kernel, facts.machine) == (
        "10.15.5",
        "Darwin 19.6.0",
        "x86_64",
    )
    assert facts.ephemeral_ports == (49152, 65535)
    assert facts.addresses == {"inet": ("127.0.0.1",), "inet6": ("::1",)}


# -- FreeBSD: uname, freebsd-version ------------------------------------------
def test_freebsd_versions() -> None:
    assert freebsd.parse_freebsd_version(recorded("freebsd", "freebsd-version.txt")) == (
        "11.0-RELEASE-p10"
    )
    assert freebsd.parse_freebsd_version("14.1-RELEASE-p3\n14.1-RELEASE-p5\n") == "14.1-RELEASE-p5"
    for name, numeric in (
        ("uname-r.txt", "14.0"),
        ("uname-r.patched.txt", "11.4"),
        ("uname-r.rc.txt", "13.0"),
    ):
        assert freebsd.numeric_version(recorded("freebsd", name).strip()) == numeric


def test_freebsd_facts_from_the_recorded_machine() -> None:
    facts = freebsd.facts(RecordedSystem("freebsd"))
    assert (facts.os_release, facts.os_version, facts.kernel, facts.machine) == (
        "14.0-CURRENT",
        "14.0",
        "FreeBSD 14.0-CURRENT",
        "amd64",
    )


def test_linux_facts_read_proc_sys_here() -> None:
    if platforms.NAME != "linux":
        pytest.skip("reads this machine's /proc")
    facts = linux.facts(platforms.LiveSystem())
    text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    assert facts.ephemeral_ports == (int(text[0]), int(text[1]))
    assert linux.parse_port_range("32768\t60999\n") == (32768, 60999)


# -- connect timeouts (issue 9, defect 3) --------------------------------------
def test_a_windows_connect_outlasts_the_syn_retries_unless_they_are_switched_off() -> None:
    seconds, basis = windows.connect_limit(2.0)
    assert seconds > windows.CONNECT_REFUSAL_SECONDS >= 2.0
    assert "SYN retries" in basis and "libuv PR #2896" in basis
    assert windows.connect_limit(2.0, shortened=True) == (
        2.0,
        "SIO_TCP_INITIAL_RTO: no SYN retransmissions (2 s; this OS refuses a loopback connect "
        "at once)",
    )
    for module in (linux, darwin, freebsd):
        assert module.connect_limit(2.0)[0] == 2.0


def test_sio_tcp_initial_rto_parameters_are_those_libuv_and_go_pass() -> None:
    # TCP_INITIAL_RTO_PARAMETERS {Rtt = UNSPECIFIED (0xFFFF), MaxSynRetransmissions =
    # TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS (0xFE)} and its pad byte, little-endian
    assert windows.rto_parameters() == b"\xff\xff\xfe\x00"
    assert windows.SIO_TCP_INITIAL_RTO == 0x98000011  # _WSAIOW(IOC_VENDOR, 17)


def test_the_ioctl_is_not_attempted_where_winsock_is_absent() -> None:
    if sys.platform == "win32":
        pytest.skip("Winsock is here")
    assert windows.prepare_connect(object()) is False


# -- Windows other-user owner (issue 9, defect 6) -------------------------------
def test_without_credentials_the_reason_says_how_to_enable_other_user_cells(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(windows.USER_ENV, raising=False)
    monkeypatch.setenv(windows.PASSWORD_ENV, "x")
    reason = windows.other_user_problem()
    assert reason is not None
    assert "BINDCONFORM_OTHER_USER" in reason and "BINDCONFORM_OTHER_PASSWORD" in reason
    monkeypatch.setenv(windows.USER_ENV, "bindconform-other")
    assert windows.other_user_problem() is None
    assert windows.credentials() == ("bindconform-other", ".", "x")
    monkeypatch.setenv(windows.USER_ENV, "RUNNER\\other")
    assert windows.credentials() == ("other", "RUNNER", "x")


def test_the_logon_child_command_line_and_environment_block() -> None:
    python = "C:\\hostedtoolcache\\windows\\Python\\3.12.0\\x64\\python.exe"
    command = windows.child_command(python, "127.0.0.1:50123")
    assert command == f"{python} -m pytest_bindconform.owner --control 127.0.0.1:50123"
    spaced = windows.child_command("C:\\Program Files\\Python\\python.exe", "127.0.0.1:1")
    assert spaced.startswith('"C:\\Program Files\\Python\\python.exe" -m')
    block = windows.child_environment({"Path": "C:\\x", "PYTHONPATH": "D:\\y", "abc": "1"}, "t0k")
    assert block.endswith("\0\0") and "t0k" not in command
    entries = block[:-2].split("\0")
    names = [e.split("=", 1)[0] for e in entries]
    assert names == sorted(names, key=str.upper)  # Windows wants the block sorted
    env = dict(e.split("=", 1) for e in entries)
    assert env[_control.TOKEN_ENV] == "t0k"
    root = str(Path(windows.__file__).resolve().parents[2])
    assert env["PYTHONPATH"] == os.pathsep.join([root, "D:\\y"])


def _spawn_control_child(address: str, token: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, _control.TOKEN_ENV: token}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest_bindconform.owner", "--control", address], env=env
    )


def test_the_control_channel_serves_real_sockets_to_the_child_with_the_token() -> None:
    listener = _control.Listener()
    child = _spawn_control_child(listener.address, listener.token)
    try:
        rfile, wfile = listener.accept(limit=30)

        def ask(req: dict[str, object]) -> dict[str, object]:
            wfile.write(json.dumps(req) + "\n")
            wfile.flush()
            answer: dict[str, object] = json.loads(rfile.readline())
            return answer

        assert ask({"op": "hello", "socket": "-"})["outcome"] == "ok"
        assert ask({"op": "socket", "socket": "a", "family": "inet", "type": "dgram"})[
            "outcome"
        ] == ("ok")
        assert ask({"op": "bind", "socket": "a", "address": "127.0.0.1", "port": 0})["outcome"] == (
            "ok"
        )
        wfile.close()
        rfile.close()
        listener.close()  # EOF: the child closes its sockets and exits
        assert child.wait(timeout=30) == 0
    finally:
        listener.close()
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_child_with_the_wrong_token_is_never_served() -> None:
    listener = _control.Listener()
    child = _spawn_control_child(listener.address, "not-the-token")
    try:
        with pytest.raises(_control.ControlError, match="with the token within 3 s"):
            listener.accept(limit=3)
    finally:
        listener.close()
        child.kill()
        child.wait()


# -- python -m pytest_bindconform ... | head (issue 9, defect 9) ----------------
def test_a_reader_that_goes_away_ends_the_cli_quietly() -> None:
    cases = Path(__file__).parents[1] / "cases"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_bindconform", "table", "linux", "--format", "json"]
        + ["--cases", str(cases)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.read(64)  # what `head -c 64` takes, then it exits
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141  # 128 + SIGPIPE, as a shell reports for `yes | head`
    assert first.startswith(b"[")
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
