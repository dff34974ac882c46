"""What `wabulk serve` says about opening it from another device in the shop."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from wabulk import lan

NOTE = "Anyone on the shop's network can"
EVERY = "0.0.0.0"  # noqa: S104 (what the user sets, never bound here)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.1.1"])
def test_on_loopback_it_says_how_to_open_it_to_the_shop_and_what_that_risks(host) -> None:
    lines = lan.how_to_reach(host, 5000, addresses=["192.168.1.20"])
    text = "\n".join(lines)
    assert text.startswith("Only this computer can open wabulk now.")
    assert "    WABULK_HOST=0.0.0.0 wabulk serve\n" in text
    assert "set WABULK_HOST=0.0.0.0, then wabulk serve)" in text
    assert lines[-1] == (
        "Anyone on the shop's network can then reach the sign-in page: give every user a "
        "strong password, and never put wabulk on the internet without HTTPS (see the README)."
    )
    assert "192.168.1.20" not in text  # not reachable yet: no address to offer


def test_another_port_is_part_of_the_command_to_type() -> None:
    text = "\n".join(lan.how_to_reach("127.0.0.1", 8080))
    assert "WABULK_HOST=0.0.0.0 wabulk serve --port 8080\n" in text


def test_on_every_interface_it_lists_the_addresses_to_type() -> None:
    lines = lan.how_to_reach(EVERY, 5000, addresses=["192.168.1.20", "10.0.0.7"])
    assert lines[0] == "On another device in the shop (on the same Wi-Fi or network), open:"
    assert lines[1:3] == ["    http://192.168.1.20:5000", "    http://10.0.0.7:5000"]
    assert lines[-1].startswith(NOTE + " reach the sign-in page")


def test_without_a_network_it_says_to_connect_first() -> None:
    lines = lan.how_to_reach(EVERY, 5000, addresses=[])
    assert "connect it to the shop's Wi-Fi" in lines[0]
    assert lines[-1].startswith(NOTE)


def test_a_chosen_address_is_the_one_to_type() -> None:
    assert lan.how_to_reach("192.168.1.20", 5001)[0] == (
        "On another device in the shop, open http://192.168.1.20:5001"
    )
    assert "http://[fd00::5]:5000" in lan.how_to_reach("fd00::5", 5000)[0]


def test_found_addresses_are_ipv4_a_phone_can_type(monkeypatch) -> None:
    found = lan.lan_addresses()
    for address in found:
        parsed = ipaddress.ip_address(address)
        assert parsed.version == 4 and not parsed.is_loopback and not parsed.is_link_local

    # The system's answers are filtered: loopback, link-local and bad names are left out.
    class Probe:
        def __init__(self, *_args: object) -> None:
            self.target = ""

        def __enter__(self) -> Probe:
            return self

        def __exit__(self, *_args: object) -> None:
            return None

        def connect(self, target: tuple[str, int]) -> None:
            if target[0] != "192.0.2.1":
                raise OSError("Network is unreachable")  # no route: skipped, not fatal

        def getsockname(self) -> tuple[str, int]:
            return ("192.168.1.20", 40000)

    monkeypatch.setattr(lan.socket, "socket", Probe)
    monkeypatch.setattr(
        lan.socket,
        "getaddrinfo",
        lambda *_a: [
            (socket.AF_INET, 0, 0, "", ("127.0.1.1", 0)),
            (socket.AF_INET, 0, 0, "", ("169.254.3.4", 0)),
            (socket.AF_INET, 0, 0, "", ("10.0.0.7", 0)),
            (socket.AF_INET, 0, 0, "", ("192.168.1.20", 0)),
        ],
    )
    assert lan.lan_addresses() == ["192.168.1.20", "10.0.0.7"]
