"""A channel that fails on cue, to test how the engine takes each channel error.

Registered only by the tests that use it (never in the product's registry). The WhatsApp
channels raise the same errors from real pages and HTTP answers; this one raises them
when a test says so.
"""

from __future__ import annotations

from collections.abc import Callable

from wabulk.channels.base import ChannelConfig, OutgoingMessage, Reconciled, SendResult

Script = Callable[["ScriptedChannel", OutgoingMessage], None]  # raises to fail


class ScriptedChannel:
    script: Script | None = None
    sent: list[OutgoingMessage] = []
    prepared: list[int] = []

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config
        self.calls = 0

    def prepare(self, message: OutgoingMessage) -> None:
        ScriptedChannel.prepared.append(message.message_id)

    def send(self, message: OutgoingMessage) -> SendResult:
        self.calls += 1
        if ScriptedChannel.script is not None:
            ScriptedChannel.script(self, message)
        ScriptedChannel.sent.append(message)
        return SendResult(provider_message_id=f"scripted-{message.message_id}")

    def reconcile(self, message: OutgoingMessage) -> Reconciled:
        return "unknown"

    def close(self) -> None:
        pass
