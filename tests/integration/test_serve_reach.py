"""`wabulk serve` tells how to open the app from another device in the shop."""

from __future__ import annotations

import pytest

from wabulk import lan

from ..support import http_get, run_wabulk, running_server


@pytest.fixture
def instance(tmp_path):
    path = tmp_path / "instance"
    result = run_wabulk(path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    return path


def test_on_this_computer_only_it_says_how_to_open_it_to_the_shop(instance) -> None:
    with running_server(instance, "--no-worker") as server:
        assert server.url.startswith("http://127.0.0.1:")
    printed = "".join(server.output)
    assert "Only this computer can open wabulk now." in printed
    port = server.url.rsplit(":", 1)[1]
    assert f"WABULK_HOST=0.0.0.0 wabulk serve --port {port}" in printed
    assert "can then reach the sign-in page" in printed and "without HTTPS" in printed


def test_on_every_interface_it_lists_the_addresses_to_type(instance) -> None:
    with running_server(instance, "--no-worker", WABULK_HOST="0.0.0.0") as server:  # noqa: S104
        # This computer opens it on its own address, not on 0.0.0.0.
        assert server.url.startswith("http://127.0.0.1:")
        assert http_get(server.url + "/setup")[0] == 200  # no user yet: setup
    printed = "".join(server.output)
    port = server.url.rsplit(":", 1)[1]
    addresses = lan.lan_addresses()
    if addresses:
        assert "On another device in the shop (on the same Wi-Fi or network), open:" in printed
        for address in addresses:
            assert f"    http://{address}:{port}\n" in printed
    else:
        assert "connect it to the shop's Wi-Fi" in printed
    assert "Anyone on the shop's network can reach the sign-in page" in printed
    assert "Only this computer" not in printed
