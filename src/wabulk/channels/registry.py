"""Channel kind → constructor. A new channel is one module and one line here."""

from __future__ import annotations

from collections.abc import Callable

from .base import Channel, ChannelConfig
from .cloud_api import CloudApiChannel
from .dry_run import DryRunChannel
from .whatsapp_web import WhatsAppWebChannel

FACTORIES: dict[str, Callable[[ChannelConfig], Channel]] = {
    "cloud_api": CloudApiChannel,
    "dry_run": DryRunChannel,
    "whatsapp_web": WhatsAppWebChannel,
}


# Channels whose account may be driven by one process at a time (a browser session):
# anything that opens them, recovery included, first takes the sender's lease.
EXCLUSIVE = frozenset({"whatsapp_web"})

# Channels whose sends only the provider's status webhook can prove: after a crash their
# messages become `unknown` without asking the channel, and the webhook settles them.
WEBHOOK_PROVEN = frozenset({"cloud_api"})


def open_channel(kind: str, config: ChannelConfig) -> Channel:
    try:
        factory = FACTORIES[kind]
    except KeyError:
        raise ValueError(f"The {kind} channel is not available in this version.") from None
    return factory(config)
