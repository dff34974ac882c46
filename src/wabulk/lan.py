"""How other devices in the shop reach `wabulk serve`: the lines it prints at start.

- This computer's network addresses are found without the internet and without sending
  a packet: connecting a UDP socket only asks the system which of its addresses it would
  use for that destination, and the host name's own addresses come from the system.
- Only IPv4 addresses a phone on the shop's Wi-Fi can type are offered: no loopback,
  no link-local (169.254.x.x, a network without a router).
"""

from __future__ import annotations

import ipaddress
import socket

ALL_INTERFACES = frozenset({"0.0.0.0", "", "::", "*"})  # noqa: S104 (names, not a bind)
# Destinations only used to ask for a route: TEST-NET (documentation) and private ranges.
_PROBES = ("192.0.2.1", "10.255.255.255", "172.31.255.255", "192.168.255.255")
SECURITY_NOTE = (
    "Anyone on the shop's network {can} reach the sign-in page: give every user a strong "
    "password, and never put wabulk on the internet without HTTPS (see the README)."
)


def _usable(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return address.version == 4 and not (
        address.is_loopback or address.is_link_local or address.is_unspecified
    )


def lan_addresses() -> list[str]:
    """This computer's addresses on its networks, the one its default route uses first."""
    found: dict[str, None] = {}
    for probe in _PROBES:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.connect((probe, 9))  # UDP: no packet leaves until one is sent
                address = s.getsockname()[0]
            except OSError:
                continue
        if _usable(address):
            found.setdefault(address, None)
    try:
        named = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        named = []
    for *_rest, sockaddr in named:
        if _usable(str(sockaddr[0])):
            found.setdefault(str(sockaddr[0]), None)
    return list(found)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def how_to_reach(host: str, port: int, addresses: list[str] | None = None) -> list[str]:
    """What `wabulk serve` prints under its address, for opening it on another device."""
    flag = "" if port == 5000 else f" --port {port}"
    if is_loopback(host):
        return [
            "Only this computer can open wabulk now. To open it from another device in the "
            "shop (a phone or another computer on the same Wi-Fi), set WABULK_HOST=0.0.0.0 "
            "before starting it, for example:",
            f"    WABULK_HOST=0.0.0.0 wabulk serve{flag}",
            f"    (on Windows: set WABULK_HOST=0.0.0.0, then wabulk serve{flag})",
            SECURITY_NOTE.format(can="can then"),
        ]
    if host not in ALL_INTERFACES:
        return [
            f"On another device in the shop, open http://{_bracketed(host)}:{port}",
            SECURITY_NOTE.format(can="can"),
        ]
    addresses = lan_addresses() if addresses is None else addresses
    if not addresses:
        return [
            "This computer has no network address yet: connect it to the shop's Wi-Fi or "
            f"network, then open http://<this computer's address>:{port} on the other device.",
            SECURITY_NOTE.format(can="can"),
        ]
    lines = ["On another device in the shop (on the same Wi-Fi or network), open:"]
    lines += [f"    http://{address}:{port}" for address in addresses]
    return [*lines, SECURITY_NOTE.format(can="can")]


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
