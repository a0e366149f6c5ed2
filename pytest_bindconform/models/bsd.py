"""The rules FreeBSD and macOS share: in_pcbbind() checks only the new socket's
options for a wildcard/specific overlap, and needs SO_REUSEPORT on both for an
exact duplicate.

Source: docs/reference/posix-semantics.md, columns "FreeBSD 14/15 (derived)"
and "macOS / xnu (derived)", which cite the kernel functions; the exemptions
are quoted from the kernel source at their rule. Nothing here has been run on
either OS: every prediction is derived and must be labelled so wherever it is
used. A socket of another user is checked by each OS's own `cross_user`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .base import CONNECTED, RA, UNKNOWN, Event, Meeting, ModelSocket, is_v4mapped, rivals

CrossUser = Callable[[ModelSocket, ModelSocket, Meeting], "bool | None"]
"""(old, new, meeting) -> may an unprivileged new socket overlap another user's
old one (True), is that refused (False), or does no derivation decide (None)."""


def _dual_over_v4_wildcard(old: ModelSocket, new: ModelSocket, met: Meeting) -> bool:
    # Row "0.0.0.0 vs [::] dual, no options": [::] after 0.0.0.0 is ok, the
    # reverse is EADDRINUSE: the IPv4 half of a dual-stack bind passes over an
    # AF_INET 0.0.0.0 owner. FreeBSD sys/netinet6/in6_pcb.c in6_pcbbind()
    # (in6_pcbbind_avail() since 15.0): EADDRINUSE only if
    # "(!in_nullhost(t->inp_laddr) || (t->inp_vflag & INP_IPV6PROTO) != 0)";
    # xnu bsd/netinet6/in6_pcb.c in6_pcbbind(): "(t->inp_laddr.s_addr !=
    # INADDR_ANY || SOCK_DOM(so) == SOCK_DOM(t->inp_socket))".
    return (
        new.family == "inet6"
        and not is_v4mapped(new)
        and old.family == "inet"
        and met.stack == "v4"
        and met.old_wildcard
    )


def _mapped_wildcard_over_inet6_wildcard(old: ModelSocket, new: ModelSocket, met: Meeting) -> bool:
    # A v4-mapped bind on a dual-stack AF_INET6 socket goes through the IPv4 code
    # with the IPv4 address (FreeBSD udp6_bind()/tcp6_usr_bind(), xnu the same:
    # "in6_sin6_2_sin(&sin, sin6p); ... error = in_pcbbind(inp, &sin, ...)"), and
    # the IPv4 conflict test there exempts two wildcards of two AF_INET6 sockets:
    #   FreeBSD sys/netinet/in_pcb.c in_pcbbind_setup() (14.x):
    #     t = in_pcblookup_local(pcbinfo, sin->sin_addr, lport, lookupflags, cred);
    #     if (t != NULL && (reuseport & t->inp_socket->so_options) == 0 && ...) {
    #         if (ntohl(sin->sin_addr.s_addr) != INADDR_ANY ||
    #             ntohl(t->inp_laddr.s_addr) != INADDR_ANY ||
    #             (inp->inp_vflag & INP_IPV6PROTO) == 0 ||
    #             (t->inp_vflag & INP_IPV6PROTO) == 0)
    #                 return (EADDRINUSE);
    #   xnu bsd/netinet/in_pcb.c in_pcbbind(): the same test with
    #     SOCK_DOM(so) != PF_INET6 || SOCK_DOM(t->inp_socket) != PF_INET6.
    # So ::ffff:0.0.0.0 binds over [::] dual-stack or another ::ffff:0.0.0.0
    # whatever the options. The reverse ([::] dual after ::ffff:0.0.0.0) is not
    # exempt: in6_pcbbind() fails when "(t->inp_vflag & INP_IPV6PROTO) != 0"
    # (xnu: "SOCK_DOM(so) == SOCK_DOM(t->inp_socket)").
    return (
        is_v4mapped(new)
        and old.family == "inet6"
        and met.stack == "v4"
        and met.old_wildcard
        and met.new_wildcard
    )


def unprivileged_stranger(old: ModelSocket, new: ModelSocket) -> bool:
    """Does the kernel's other-user test run for this pair? Only for an
    unprivileged new socket (FreeBSD: priv_check_cred(PRIV_NETINET_REUSEPORT)
    fails; xnu: kauth_cred_getuid(so->so_cred) != 0) over another user's socket.
    The 'other-user' owner is nobody; a run with such a socket runs as root
    (owner.py needs it), so a 'self' socket is privileged and skips the test."""
    return new.owner == "other-user" and old.user != new.user


def allowed(
    old: ModelSocket,
    new: ModelSocket,
    met: Meeting,
    exact_ok: tuple[str, ...],
    cross_user: CrossUser,
) -> bool | None:
    """May `new` overlap `old` where they meet? None: no derivation decides.
    exact_ok: the options that make an exact duplicate legal when both sockets
    carry the same one."""
    if unprivileged_stranger(old, new):
        verdict = cross_user(old, new, met)
        if verdict is not True:
            return verdict  # row "different users": refused, or not derived
    new_opts = (RA, *exact_ok)
    if old.state == "time-wait" or old.state in CONNECTED:
        # Row "TIME_WAIT blocks a new bind?": only if the new socket has none of
        # RA / RP (/ RPLB). Extended (derived, not in the reference) to live
        # connections: like a TIME_WAIT entry they are connected PCBs, which the
        # exact-address lookup made for a socket with an option does not see.
        return new.has(*new_opts)
    if _dual_over_v4_wildcard(old, new, met):
        return True
    if _mapped_wildcard_over_inet6_wildcard(old, new, met):
        return True
    if met.exact:
        # Rows "exact duplicate" and "must the old socket carry the option too?":
        # the same option on both (RA is not enough; mixing RP and RPLB fails).
        return any(old.has(o) and new.has(o) for o in exact_ok)
    # Rows "W and S on one port" and "must the old socket carry...? RA: no":
    # the new socket's option alone decides. Row "does listening state matter?": no.
    return new.has(*new_opts)


def bind(
    existing: Sequence[ModelSocket],
    new: ModelSocket,
    exact_ok: tuple[str, ...],
    cross_user: CrossUser,
) -> str:
    if is_v4mapped(new) and new.v6only:
        return UNKNOWN  # not in the reference: no derivation for a v4-mapped v6only bind
    verdicts = {
        allowed(old, new, m, exact_ok, cross_user)
        for old, met in rivals(existing, new)
        for m in met
    }
    if False in verdicts:
        return "INUSE"  # row "conflict errno": EADDRINUSE whatever refused it
    return UNKNOWN if None in verdicts else "ok"


def listen(
    existing: Sequence[ModelSocket], sock: ModelSocket, history: Sequence[Event] = ()
) -> str:
    del existing, sock, history
    return "ok"  # row "does listening state matter?": no; conflicts are decided at bind
