"""A campaign keeps sending while a storm of webhook deliveries is stored and applied.

On SQLite the receiver's inserts, the receipts worker and the campaign's lane share one
write lock. Before they took turns (db.WriteGate), the stored deliveries kept the lock
busy and the lane, waiting in SQLite's busy handler, sent a fraction of its pace. Counted,
not timed: the campaign must be sent in full while the storm is still going.
"""

from __future__ import annotations

import json
import threading

from sqlalchemy import func, select

from tests.cloud_support import (
    PHONE_NUMBER_ID,
    WABA_ID,
    Rig,
    add_sender,
    cloud_settings,
    customers,
    launch,
    spring_template,
)
from wabulk.dispatch import receipts
from wabulk.dispatch.worker import Dispatcher
from wabulk.models import WebhookReceipt, utcnow

CUSTOMERS = 30
STORM_THREADS = 6
# Far more deliveries than a campaign of 30 at 80 a second needs to go out beside.
STORM_CAP = 20_000


def _delivery(k: int) -> bytes:
    """20 statuses about messages this shop never sent: matched to nothing, but stored,
    claimed and marked processed like any others."""
    statuses = [
        {
            "id": f"wamid.storm.{k}.{j}",
            "status": "delivered",
            "timestamp": "1764936000",
            "recipient_id": "919811000000",
        }
        for j in range(20)
    ]
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID},
        "statuses": statuses,
    }
    entry = {"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


def _receipts(db, condition) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalar(select(func.count()).where(condition)) or 0


def test_a_campaign_is_sent_in_full_during_a_webhook_storm(
    migrated_db, settings, fake_cloud
) -> None:
    db = migrated_db
    settings = cloud_settings(settings, fake_cloud)
    sender_id = add_sender(db, settings, fake_cloud)
    rig = Rig(fake_cloud, db, settings, sender_id)
    template_id = spring_template(db, settings)
    list_id = customers(db, CUSTOMERS, "Storm customers")

    stop = threading.Event()
    lock = threading.Lock()
    stored = [0]

    def storm() -> None:
        while not stop.is_set():
            with lock:
                if stored[0] >= STORM_CAP:
                    return
                stored[0] += 1
                k = stored[0]
            with db.session() as session:
                receipts.store_receipt(session, sender_id, _delivery(k), utcnow())
            receipts.nudge()

    dispatcher = Dispatcher(db, settings)
    threads = [threading.Thread(target=storm) for _ in range(STORM_THREADS)]
    for thread in threads:
        thread.start()
    try:
        rig.wait("the storm under way", lambda: stored[0] >= 200)
        dispatcher.start_thread()
        campaign_id = launch(db, "Sale in a storm", list_id, sender_id, template_id)
        done = rig.wait(
            "the campaign sent or the storm over",
            lambda: rig.campaign(campaign_id).n_sent == CUSTOMERS or stored[0] >= STORM_CAP,
            timeout=600,
        )
        stored_by_then = stored[0]
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    try:
        assert done
        campaign = rig.campaign(campaign_id)
        assert (campaign.n_sent, campaign.n_failed, campaign.n_unknown) == (CUSTOMERS, 0, 0)
        assert stored_by_then < STORM_CAP, "the campaign went out only after the storm"
        assert len([s for s in fake_cloud.sent if s["type"] == "template"]) == CUSTOMERS

        rig.wait(
            "every stored delivery applied",
            lambda: _receipts(db, WebhookReceipt.processed_at.is_(None)) == 0,
            timeout=300,
        )
        assert _receipts(db, WebhookReceipt.attempts > 0) == 0
    finally:
        dispatcher.stop()
