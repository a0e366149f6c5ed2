"""Library profiles: the shipped data, its provenance, and the standard library's real calls.

The readback tests are the point: a profile's options come from the library's source (a
described fact), the readback from the kernel after the real call ran here. They agree or
the test fails, on whatever OS and Python version runs it.
"""

from __future__ import annotations

import re
import socket
import sys
from pathlib import Path

import pytest

from pytest_bindconform.host import can_bind, os_family
from pytest_bindconform.libraries import LibraryProfile, factory, load_file, profiles
from pytest_bindconform.libraries.loader import MOVING_REFS, check_unique
from pytest_bindconform.libraries.readback import called, read, v6only_default
from pytest_bindconform.libraries.table import markdown
from pytest_bindconform.model import OPTION_NAMES, OS_FAMILIES
from pytest_bindconform.yamlsrc import CaseFileError

PINNED = re.compile(r"^https://github\.com/[^/]+/[^/]+/blob/([^/]+)/[^#\s]+#L(\d+)(?:-L(\d+))?$")
CALLED = [p for p in profiles() if factory(p.id) is not None]
ADDRESSES = [("inet", "127.0.0.1"), ("inet6", "::1"), ("inet6", "::")]
SOCK_TYPES = {"tcp": ("stream", socket.SOCK_STREAM), "udp": ("dgram", socket.SOCK_DGRAM)}
FAMILIES = {"inet": socket.AF_INET, "inet6": getattr(socket, "AF_INET6", -1)}


def test_shipped_profiles_cover_the_libraries_asked_for() -> None:
    found = profiles()
    ids = [p.id for p in found]
    assert len(ids) == len(set(ids))
    assert len(found) >= 8
    names = {p.name for p in found}
    for library in ("CPython asyncio", "Go net", "Rust std::net", "libuv", "Node.js", "trio"):
        assert library in names
    for p in found:
        assert p.transport in ("tcp", "udp")
        assert p.basis == "described"
        assert set(p.options) <= set(OS_FAMILIES)
        assert set(p.v6only) <= set(OS_FAMILIES)
        assert all(set(opts) <= set(OPTION_NAMES) for opts in p.options.values())
        assert not set(p.options) & set(p.fails), p.id
        assert p.options or p.fails, f"{p.id} claims nothing for any OS"


def test_per_os_differences_are_in_the_data() -> None:
    """The point of the profiles: the same call sets different options per OS."""
    by_id = {p.id: p for p in profiles()}
    assert by_id["asyncio.create_server"].options["windows"] == ()
    assert by_id["asyncio.create_server"].options["linux"] == ("SO_REUSEADDR",)
    assert by_id["http.server.HTTPServer"].options["windows"] == ("SO_REUSEADDR",)
    assert by_id["libuv.uv_udp_bind.reuseaddr"].options["darwin"] == ("SO_REUSEPORT",)
    assert by_id["dotnet.Socket.ReuseAddress"].options["linux"] == ("SO_REUSEADDR", "SO_REUSEPORT")
    assert by_id["dotnet.Socket.ExclusiveAddressUse"].options["windows"] == ("SO_EXCLUSIVEADDRUSE",)
    assert "windows" not in by_id["gunicorn.bind"].options  # gunicorn does not run there


@pytest.mark.parametrize("profile", profiles(), ids=lambda p: p.id)
def test_every_profile_cites_a_pinned_public_source_line(profile: LibraryProfile) -> None:
    for url in (profile.source, *profile.evidence):
        match = PINNED.match(url)
        assert match, url
        assert match.group(1) not in MOVING_REFS, url
        first, last = int(match.group(2)), int(match.group(3) or match.group(2))
        assert 1 <= first <= last, url
    for thread in profile.threads:
        assert thread.startswith(("https://github.com/", "https://bugs.python.org/")), thread
    assert profile.version and profile.name and profile.call


def test_only_the_standard_library_is_called() -> None:
    assert {p.id for p in CALLED} == {
        "socket.create_server",
        "socketserver.TCPServer",
        "socketserver.UDPServer",
        "http.server.HTTPServer",
        "http.server.ThreadingHTTPServer",
        "asyncio.create_server",
        "asyncio.create_datagram_endpoint",
    }
    assert factory("go.net.Listen") is None
    assert factory("no.such.library") is None


def _ipv6_or_skip(family: str, address: str) -> None:
    if family == "inet6" and not (socket.has_ipv6 and can_bind("inet6", address)):
        pytest.skip(f"IPv6 address {address} is not configured here (enable IPv6 on loopback)")


@pytest.mark.parametrize("family,address", ADDRESSES, ids=lambda v: str(v))
@pytest.mark.parametrize("profile", CALLED, ids=lambda p: p.id)
def test_real_call_sets_what_the_source_says(
    profile: LibraryProfile, family: str, address: str
) -> None:
    _ipv6_or_skip(family, address)
    here = os_family()
    if here not in profile.options:
        pytest.skip(f"{profile.id}: the profile does not describe {here} (unknown)")
    python = "{}.{}.{}".format(*sys.version_info[:3])
    if python not in (profile.version, *profile.same_in):
        pytest.skip(
            f"{profile.id} describes CPython {profile.version} (same in "
            f"{', '.join(profile.same_in)}); this is {python}: read its Lib/ and add it"
        )
    kind, sock_type = SOCK_TYPES[profile.transport]
    make = factory(profile.id)
    assert make is not None
    sock = make(family, kind, address, 0)
    try:
        assert sock.family == FAMILIES[family]
        assert sock.type == sock_type
        bound, port = sock.getsockname()[:2]
        assert port != 0 and bound == address
        got = read(sock)
        assert got.options == profile.options[here], (
            f"{profile.id} on {here}: the source ({profile.source}) says "
            f"{profile.options[here]}, the kernel reports {got.options}"
        )
        if family == "inet6" and address == "::" and here in profile.v6only:
            described = profile.v6only[here]
            expected = v6only_default(sock_type) if described is None else described
            assert got.v6only == expected, f"{profile.id}: IPV6_V6ONLY {got.v6only}"
    finally:
        sock.close()


@pytest.mark.skipif(sys.platform != "linux", reason="Linux kernel behaviour")
def test_linux_marks_a_specific_ipv6_bind_v6only_whatever_the_call_set() -> None:
    """Measured here: why IPV6_V6ONLY is compared on the wildcard only."""
    _ipv6_or_skip("inet6", "::1")
    make = factory("socketserver.TCPServer")  # sets no IPV6_V6ONLY itself
    assert make is not None
    with make("inet6", "stream", "::", 0) as wildcard, make("inet6", "stream", "::1", 0) as one:
        assert read(wildcard).v6only == v6only_default(socket.SOCK_STREAM)
        assert read(one).v6only is True


@pytest.mark.parametrize("profile", CALLED, ids=lambda p: p.id)
def test_factory_stays_usable_after_its_loop_or_server_is_gone(profile: LibraryProfile) -> None:
    kind, _ = SOCK_TYPES[profile.transport]
    make = factory(profile.id)
    assert make is not None
    with make("inet", kind, "127.0.0.1", 0) as sock:
        port = sock.getsockname()[1]
        if profile.transport == "tcp":
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                sock.settimeout(2)
                conn, _ = sock.accept()  # it is listening, and still ours
                conn.close()
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
                peer.sendto(b"x", ("127.0.0.1", port))
                sock.settimeout(2)
                assert sock.recv(16) == b"x"


def test_called_reads_the_real_call_and_declines_the_rest() -> None:
    assert called("go.net.Listen", "inet", "stream", "127.0.0.1") is None
    got = called("socketserver.UDPServer", "inet", "dgram", "127.0.0.1")
    assert got is not None and got.v6only is None
    assert got.options == ()  # UDPServer sets nothing, on every OS the profile describes


def test_factory_refuses_the_wrong_socket_type() -> None:
    make = factory("socket.create_server")
    assert make is not None
    with pytest.raises(ValueError, match="stream sockets only"):
        make("inet", "dgram", "127.0.0.1", 0)
    with pytest.raises(ValueError, match="family 'inet7' is not one of inet, inet6"):
        make("inet7", "stream", "127.0.0.1", 0)


GOOD = """\
name: Example
version: "1.0"
profiles:
  - id: example.listen
    call: "example.listen(port)"
    transport: tcp
    source: https://github.com/example/example/blob/v1.0/src/net.c#L10-L12
    options:
      linux: [SO_REUSEADDR]
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(CaseFileError) as info:
        load_file(text, "bad.yaml")
    return [str(e) for e in info.value.errors]


def test_a_good_file_loads_with_unknown_oses_left_out() -> None:
    (profile,) = load_file(GOOD, "good.yaml")
    assert profile.options == {"linux": ("SO_REUSEADDR",)}
    assert "windows" not in profile.options and profile.v6only == {}
    assert profile.file == "good.yaml:4" and profile.name == "Example"


@pytest.mark.parametrize(
    "change,expected",
    [
        (
            ("linux: [SO_REUSEADDR]", "linx: [SO_REUSEADDR]"),
            "bad.yaml:9:7: unknown key 'linx' in profiles[0].options; valid choices: "
            "windows, linux, darwin, freebsd; did you mean 'linux'?",
        ),
        (
            ("[SO_REUSEADDR]", "[SO_REUSEADRR]"),
            "bad.yaml:9:15: profiles[0].options.linux[0]: 'SO_REUSEADRR' is not allowed; "
            "valid choices: SO_REUSEADDR, SO_REUSEPORT, SO_REUSEPORT_LB, SO_EXCLUSIVEADDRUSE; "
            "did you mean 'SO_REUSEADDR'?",
        ),
        (
            ("transport: tcp", "transport: sctp"),
            "bad.yaml:6:16: profiles[0].transport: 'sctp' is not allowed; valid choices: tcp, udp",
        ),
        (
            ("#L10-L12", ""),
            "bad.yaml:7:13: profiles[0].source: "
            "'https://github.com/example/example/blob/v1.0/src/net.c' is not a GitHub source URL "
            "pinned at a tag or commit, with a line anchor",
        ),
        (('    call: "example.listen(port)"\n', ""), "required key 'call' is missing"),
        (("id: example.listen", "id: 'bad id'"), "profile id 'bad id' is not valid"),
        (('version: "1.0"', "version: 1.0"), "expected a string, got the number 1.0"),
    ],
)
def test_a_bad_profile_file_says_where_and_what(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in GOOD
    errors = _errors(GOOD.replace(old, new, 1))
    assert any(e.startswith(expected) or expected in e for e in errors), errors


def test_a_moving_branch_is_refused_with_the_reason() -> None:
    (error,) = _errors(GOOD.replace("/blob/v1.0/", "/blob/main/"))
    assert error.startswith("bad.yaml:7:13: ")
    assert "branch 'main'" in error and "pin a tag or a commit" in error


def test_an_os_cannot_both_set_options_and_fail() -> None:
    text = GOOD + '    fails:\n      linux: "ENOTSUP"\n'
    (error,) = _errors(text)
    assert error.startswith("bad.yaml:11:7: ") and "both options and fails" in error


def test_yaml_syntax_errors_keep_their_position() -> None:
    (error,) = _errors(GOOD.replace("options:\n", "options: [\n"))
    assert error.startswith("bad.yaml:") and "YAML syntax error" in error


def test_a_duplicate_id_across_files_names_both_places(tmp_path: Path) -> None:
    (first,) = load_file(GOOD, "a.yaml")
    with pytest.raises(
        CaseFileError,
        match=r"b\.yaml:4:1: duplicate profile id 'example.listen' "
        r"\(first at a\.yaml:4\)",
    ):
        check_unique([first, *load_file(GOOD, "b.yaml")])


def test_the_docs_table_is_what_the_data_says() -> None:
    page = (Path(__file__).parent.parent / "docs" / "libraries.md").read_text(encoding="utf-8")
    begin = page.index("<!-- library-table")
    start = page.index("\n", begin) + 1
    end = page.index("<!-- /library-table -->")
    assert page[start:end] == markdown(profiles()), (
        "docs/libraries.md is out of date: paste pytest_bindconform.libraries.table.markdown()"
    )
