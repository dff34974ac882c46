"""Webhooks of users and of Meta itself that a test triggers: inbound texts, button taps,
marketing opt-outs, quality and tier changes, and raw payloads with any signature.

- Each call posts one signed webhook at once (not through the status lanes) and, from a
  test's thread, returns only when the receiver answered or the retries ran out.
- A mixin of `FakeCloudApi`: the public methods block, their `_`-prefixed coroutines are
  what the `/_control` handlers await on the server's own loop.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Coroutine
from typing import Any

from tests.fakes.cloud_api.state import Number, digits
from tests.fakes.cloud_api.webhooks import (
    Poster,
    encode,
    envelope,
    inbound_value,
    messages_value,
    new_wamid,
    now_string,
    sign,
)

TIER_LIMITS = {
    "TIER_50": 50,
    "TIER_250": 250,
    "TIER_1K": 1000,
    "TIER_2K": 2000,
    "TIER_10K": 10000,
    "TIER_100K": 100000,
    "TIER_UNLIMITED": -1,
}


class UserEvents:
    numbers: dict[str, Number]
    _poster: Poster

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        raise NotImplementedError  # provided by FakeCloudApi

    def _number(self, phone_number_id: str) -> Number:
        raise NotImplementedError  # provided by FakeCloudApi

    async def _emit(self, number: Number, field: str, value: dict[str, Any]) -> int:
        if number.webhook_url is None:
            raise KeyError(f"number {number.phone_number_id} has no webhook url (set_webhook)")
        body = encode(envelope([(number, field, value)]))
        return await self._poster.post(number.webhook_url, body, sign(number.app_secret, body))

    def inbound(
        self,
        phone_number_id: str,
        from_phone: str = "+919876500001",
        text: str = "STOP",
        context_id: str | None = None,
        user_id: str | None = None,
        name: str = "Deepa",
        no_phone: bool = False,
    ) -> str:
        """Post a user's text; returns its wamid once the receiver answered (or retries ran out)."""
        return self._call(
            self._inbound(phone_number_id, from_phone, text, context_id, user_id, name, no_phone)
        )

    async def _inbound(
        self,
        phone_number_id: str,
        from_phone: str = "+919876500001",
        text: str = "STOP",
        context_id: str | None = None,
        user_id: str | None = None,
        name: str = "Deepa",
        no_phone: bool = False,
    ) -> str:
        message = {"type": "text", "text": {"body": text}}
        return await self._user_message(
            phone_number_id, from_phone, message, context_id, user_id, name, no_phone
        )

    def button_tap(
        self,
        phone_number_id: str,
        from_phone: str,
        payload: str,
        text: str,
        context_id: str | None,
        user_id: str | None = None,
        name: str = "Deepa",
        no_phone: bool = False,
    ) -> str:
        """A tap on a template's quick-reply button; returns the inbound wamid."""
        return self._call(
            self._button_tap(
                phone_number_id, from_phone, payload, text, context_id, user_id, name, no_phone
            )
        )

    async def _button_tap(
        self,
        phone_number_id: str,
        from_phone: str,
        payload: str,
        text: str,
        context_id: str | None,
        user_id: str | None = None,
        name: str = "Deepa",
        no_phone: bool = False,
    ) -> str:
        message = {"type": "button", "button": {"payload": payload, "text": text}}
        return await self._user_message(
            phone_number_id, from_phone, message, context_id, user_id, name, no_phone
        )

    async def _user_message(
        self,
        phone_number_id: str,
        from_phone: str,
        message: dict[str, Any],
        context_id: str | None,
        user_id: str | None,
        name: str,
        no_phone: bool,
    ) -> str:
        number = self._number(phone_number_id)
        if no_phone and user_id is None:
            user_id = "IN." + "".join(secrets.choice("0123456789") for _ in range(18))
        wamid = new_wamid(digits(from_phone))
        record: dict[str, Any] = {"id": wamid, "timestamp": now_string(), **message}
        if context_id is not None:
            record["context"] = {"from": digits(number.display_phone), "id": context_id}
        value = inbound_value(number, record, None if no_phone else from_phone, user_id, name)
        await self._emit(number, "messages", value)
        return wamid

    def user_preference(
        self, phone_number_id: str, from_phone: str, stop: bool = True, name: str = "Deepa"
    ) -> int:
        return self._call(self._user_preference(phone_number_id, from_phone, stop, name))

    async def _user_preference(
        self, phone_number_id: str, from_phone: str, stop: bool = True, name: str = "Deepa"
    ) -> int:
        number = self._number(phone_number_id)
        word = "stop" if stop else "resume"
        preference = {
            "wa_id": digits(from_phone),
            "detail": f"User requested to {word} marketing messages",
            "category": "marketing_messages",
            "value": word,
            "timestamp": int(time.time()),
        }
        contact = {"profile": {"name": name}, "wa_id": digits(from_phone)}
        value = messages_value(number, contacts=[contact], user_preferences=[preference])
        return await self._emit(number, "user_preferences", value)

    def quality_update(
        self, phone_number_id: str, event: str = "DOWNGRADE", rating: str = "RED"
    ) -> int:
        return self._call(self._quality_update(phone_number_id, event, rating))

    async def _quality_update(
        self, phone_number_id: str, event: str = "DOWNGRADE", rating: str = "RED"
    ) -> int:
        number = self._number(phone_number_id)
        number.quality = rating
        value = {
            "display_phone_number": digits(number.display_phone),
            "event": event,
            "current_limit": number.tier,
            "max_daily_conversations_per_business": TIER_LIMITS.get(number.tier, 250),
        }
        return await self._emit(number, "phone_number_quality_update", value)

    def tier_update(self, waba_id: str, tier: str = "TIER_2K") -> int:
        return self._call(self._tier_update(waba_id, tier))

    async def _tier_update(self, waba_id: str, tier: str = "TIER_2K") -> int:
        numbers = [n for n in self.numbers.values() if n.waba_id == str(waba_id)]
        for number in numbers:
            number.tier = tier
        hooked = [n for n in numbers if n.webhook_url]
        if not hooked:
            raise KeyError(f"no number of account {waba_id} has a webhook url")
        limit = TIER_LIMITS.get(tier, 250)
        value = {
            "max_daily_conversation_per_phone": limit,
            "max_daily_conversations_per_business": limit,
            "max_phone_numbers_per_business": 2,
            "max_phone_numbers_per_waba": 2,
        }
        return await self._emit(hooked[0], "business_capability_update", value)

    def post_raw(
        self,
        phone_number_id: str,
        payload: dict[str, Any],
        signature: str | None = "good",
        retry: bool = False,
    ) -> int:
        """One POST of any payload; signature "good", "bad" (wrong secret), None (no header) or
        a literal header value. Returns the receiver's HTTP status."""
        return self._call(self._post_raw(phone_number_id, payload, signature, retry))

    async def _post_raw(
        self,
        phone_number_id: str,
        payload: dict[str, Any],
        signature: str | None = "good",
        retry: bool = False,
    ) -> int:
        number = self._number(phone_number_id)
        if number.webhook_url is None:
            raise KeyError(f"number {phone_number_id} has no webhook url (set_webhook)")
        body = encode(payload)
        header = {
            "good": sign(number.app_secret, body),
            "bad": sign(number.app_secret + "x", body),
        }.get(signature or "", signature)
        return await self._poster.post(number.webhook_url, body, header, retry=retry)
