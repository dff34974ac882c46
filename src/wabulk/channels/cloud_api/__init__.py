"""WhatsApp Cloud API (Meta's Graph API): payloads, client, channel, account helpers."""

from .channel import CloudApiChannel

__all__ = ["CloudApiChannel"]
