"""When WhatsApp Web cannot be opened, the link page and the dashboard speak to the shop."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.analytics_support import signed_in
from wabulk.channels.base import SenderUnavailable
from wabulk.models import Event, Role, Sender, SenderState, utcnow
from wabulk.senders.linking import link_step, link_view, trouble
from wabulk.senders.service import SenderInput, create_sender

RAW = (
    "WhatsApp Web (https://web.whatsapp.com) could not be reached from this machine "
    "(net::ERR_PROXY_CONNECTION_FAILED). Check its internet connection, then try again."
)


class Unreachable:
    """A channel whose browser starts but cannot reach WhatsApp Web (as behind a proxy)."""

    def link_status(self, takeover: bool = False, phone: str | None = None):  # type: ignore[no-untyped-def]
        raise SenderUnavailable(RAW, code="browser_failed", state="browser_failed")

    def close(self) -> None:
        return None


def _web_sender(db, name: str = "Shop phone") -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        sender = create_sender(session, None, SenderInput(name=name, channel="whatsapp_web"))
        sender.link_requested_until = utcnow() + timedelta(minutes=5)
        session.flush()
        return sender.id


def test_a_failed_link_says_what_to_check_and_what_the_phone_will_ask(dual) -> None:
    app, db = dual
    sender_id = _web_sender(db)
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert link_step(session, sender, Unreachable(), utcnow()) is None  # type: ignore[arg-type]
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        assert sender.state == SenderState.BROWSER_FAILED
        assert sender.state_reason == RAW  # kept whole for whoever installs Chrome
        view = link_view(sender)
        event = session.query(Event).filter(Event.kind == "sender.browser_failed").one()
    kind, sentence = trouble(RAW)
    assert kind == "unreachable"
    assert view["reason"] == sentence and view["trouble"] == "unreachable"
    assert view["detail"] == RAW
    assert event.text.startswith(f"Linking Shop phone stopped. {sentence} (The browser said: ")

    client = signed_in(app, db, Role.ADMIN)
    page = client.get(f"/senders/{sender_id}/link").get_data(as_text=True)
    panel = re.search(r'data-testid="link-trouble">(.*?)</details>', page, re.S)
    assert panel, "the failure panel is shown"
    shown = panel.group(1)
    assert "WhatsApp Web could not be opened" in shown
    assert f'data-field="reason">{sentence}</p>' in shown.replace("&#39;", "'")
    flat = " ".join(re.sub(r"<[^>]+>", " ", shown).split())
    for check in (
        "connected to the internet",
        "No firewall, antivirus or proxy blocks web.whatsapp.com",
        "No other Chrome window is using this sender",
        "Once it works , a QR code appears on this page",
        "WhatsApp → Linked devices → Link a device",
    ):
        assert check in flat, check
    # The browser's own words only inside the details, never as the message.
    before_details = shown.split("<details")[0]
    assert "net::ERR_" not in before_details and "net::ERR_PROXY_CONNECTION_FAILED" in shown
    data = client.get(f"/senders/{sender_id}/link.json").get_json()
    assert (data["reason"], data["detail"], data["trouble"]) == (sentence, RAW, "unreachable")


def test_the_dashboard_links_a_sender_in_trouble_to_its_page(dual) -> None:
    app, db = dual
    sender_id = _web_sender(db)
    with db.session() as session:
        sender = session.get(Sender, sender_id)
        sender.state = SenderState.BROWSER_FAILED
        sender.state_reason = RAW
    admin = signed_in(app, db, Role.ADMIN)
    viewer = signed_in(app, db, Role.VIEWER)
    for client, target in ((admin, f"/senders/{sender_id}/link"), (viewer, "/senders")):
        page = client.get("/").get_data(as_text=True)
        line = re.search(rf'data-sender="{sender_id}">(.*?)</li>', page, re.S)
        assert line
        link = re.search(
            r'<a class="small d-block text-wrap" data-testid="sender-problem" href="([^"]+)">',
            line.group(1),
        )
        assert link and link.group(1) == target
        assert "See what is wrong and what to do" in line.group(1)
        assert "could not be reached" not in line.group(1)  # no reason cut short
