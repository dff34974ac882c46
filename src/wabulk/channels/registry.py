"""Channel kind → constructor. A new channel is one module and one line here."""

from __future__ import annotations

from collections.abc import Callable

from .base import Channel, ChannelConfig
from .dry_run import DryRunChannel

FACTORIES: dict[str, Callable[[ChannelConfig], Channel]] = {
    "dry_run": DryRunChannel,
}


def open_channel(kind: str, config: ChannelConfig) -> Channel:
    try:
        factory = FACTORIES[kind]
    except KeyError:
        raise ValueError(f"The {kind} channel is not available in this version.") from None
    return factory(config)
