"""`/_control/*`: the fake's Python API over HTTP, for a benchmark driving it as a process.

- `POST /_control/<action>` with a JSON object of keyword arguments calls the method of the
  same name (`add_number`, `add_template`, `set_webhook`, `auto_statuses`, the faults, the
  user and Meta webhooks) and answers `{"ok": true, "result": ...}`, or 400 with the reason.
- `GET /_control/counters` and `GET /_control/sent?offset=N` read what happened.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.cloud_api.server import FakeCloudApi

SETTERS = (
    "add_number",
    "add_template",
    "set_webhook",
    "auto_statuses",
    "fail_recipient",
    "reject_recipient",
    "fail_next",
    "hang_next",
    "set_latency",
    "revoke_token",
    "reset",
)
# These post webhooks: the handler awaits their coroutine instead of blocking the loop.
EMITTERS = ("inbound", "button_tap", "user_preference", "quality_update", "tier_update", "post_raw")


def _answer(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json"
    )


def add_routes(app: web.Application, fake: FakeCloudApi) -> None:
    async def act(request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action not in SETTERS and action not in EMITTERS:
            return _answer({"ok": False, "error": f"unknown action {action!r}"}, 404)
        try:
            kwargs = await request.json() if request.can_read_body else {}
            if not isinstance(kwargs, dict):
                raise TypeError("the body must be a JSON object of keyword arguments")
            if action == "reset":
                fake._reset_now()
                result = None
            elif action in SETTERS:
                result = getattr(fake, action)(**kwargs)
            else:
                result = await getattr(fake, "_" + action)(**kwargs)
        except (TypeError, ValueError, KeyError) as exc:
            return _answer({"ok": False, "error": str(exc)}, 400)
        return _answer({"ok": True, "result": result})

    async def counters(request: web.Request) -> web.Response:
        return _answer(fake.counters())

    async def sent(request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        return _answer(fake.sent[offset:])

    app.router.add_get("/_control/counters", counters)
    app.router.add_get("/_control/sent", sent)
    app.router.add_post("/_control/{action}", act)
