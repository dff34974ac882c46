"""Hearing back (DESIGN §8): statuses, replies, opt-outs and account news from any channel.

Channels hand plain values (`wabulk.channels.heard`); this package applies them to the
database. It never imports a channel: the Cloud API webhooks and the WhatsApp Web chat
list come through the same `apply`.
"""

from .apply import Applied, apply, hold_writes

__all__ = ["Applied", "apply", "hold_writes"]
