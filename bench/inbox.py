"""Inbox: pages at 100,000 conversations beside 1,000, and events out beside a bare loop.

Pages. Builds two SQLite databases of the same shape (migrated with wabulk.migrate):

- big: 100,000 contacts, two senders, 10 finished campaigns of 100,000 messages each
  (1,000,000 messages), one or two replies from every contact to the last campaign, so
  100,000 conversations (a third unread, a tenth done, some assigned), 20,000 answers and
  5,000 notes;
- small: the same with 1,000 contacts (1,000 conversations, 10,000 messages).

A real `wabulk serve --no-worker` runs on each; a signed-in client requests each Inbox page
alternately on both (so machine noise hits both alike) and the median of each is printed
with the ratio big ÷ small (target ≤ 2: cost must not grow with the data).

Deliveries. N events (`message.status`, a realistic payload) are written for one endpoint
with the product's own `wabulk.outbox.emit`, then delivered by the product's own delivery
step to a local receiver (a threaded HTTP server on loopback that checks every signature);
beside it, a bare loop posts the same bodies to the same receiver with one kept-alive
connection. Deliveries per second of each, and the ratio (target ≥ 0.5).

Prints; never fails on a slow machine. The last line is the JSON summary.

    .venv/bin/python bench/inbox.py [--quick] [--requests N]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pages import Client, _p95, measure, serve
from sqlite_setup import CITIES, FIRST, LAST
from sqlite_setup import connect as _connect
from sqlite_setup import stamp as _stamp

BENCH = "inbox"
SEED = 20261206
FULL = {"small": 1_000, "big": 100_000}
QUICK = {"small": 1_000, "big": 20_000}
CAMPAIGNS = 10
TARGET_PAGES = 2.0
TARGET_DELIVERIES = 0.5
EMAIL = "bench@example.com"
PASSWORD = "bench-password-1"  # noqa: S105 (a throwaway database)
REPLIES = (
    "Price?",
    "Do you deliver to Pune?",
    "Book me for Saturday please",
    "Is the offer still on?",
    "Thanks!",
)


# ---- setup (not timed) -----------------------------------------------------------------------


def build(path: Path, n: int) -> dict[str, Any]:
    """One database: `n` contacts and conversations, `n` x CAMPAIGNS campaign messages."""
    from wabulk import migrate
    from wabulk.auth.service import create_user
    from wabulk.db import Database
    from wabulk.models import Role
    from wabulk.senders.service import SenderInput, create_sender

    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    with db.session() as session:
        admin = create_user(session, None, EMAIL, PASSWORD, Role.ADMIN)
        mate = create_user(session, admin, "mate@example.com", PASSWORD, Role.OPERATOR)
        senders = [
            create_sender(session, None, SenderInput(name=f"Shop phone {k}")).id for k in (1, 2)
        ]
        session.commit()
        users = [admin.id, mate.id]
    db.dispose()

    con = _connect(path)
    con.execute("BEGIN")
    created = _stamp(now - timedelta(days=40))
    con.executemany(
        "INSERT INTO contacts (phone, name, attributes, country, timezone, created_at, "
        "updated_at, is_demo) VALUES (?, ?, ?, 'IN', 'Asia/Kolkata', ?, ?, 0)",
        [
            (
                f"+91{9_000_000_000 + i}",
                f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                json.dumps({"city": rng.choice(CITIES)}),
                created,
                created,
            )
            for i in range(n)
        ],
    )
    campaigns = []
    for k in range(CAMPAIGNS):
        launched = now - timedelta(days=3 * (CAMPAIGNS - k))
        campaigns.append(
            con.execute(
                "INSERT INTO campaigns (name, status, body, pacing, max_attempts, "
                "text_before_document, total, n_queued, n_sending, n_sent, n_delivered, "
                "n_read, n_failed, n_skipped, n_unknown, n_replied, created_at, launched_at, "
                "finished_at, is_demo) VALUES (?, 'completed', 'Hello, new stock.', '{}', 3, "
                "0, ?, 0, 0, 0, 0, ?, 0, 0, 0, 0, ?, ?, ?, 0) RETURNING id",
                (
                    f"Offer {k + 1:02d}",
                    n,
                    n,
                    _stamp(launched),
                    _stamp(launched),
                    _stamp(launched + timedelta(hours=2)),
                ),
            ).fetchone()[0]
        )
    sql = (
        "INSERT INTO messages (campaign_id, contact_id, phone, body, status, sender_id, "
        "attempts, next_attempt_at, provider_message_id, queued_at, sending_at, sent_at, "
        "delivered_at, read_at, updated_at) VALUES (?, ?, ?, 'Hello, new stock.', 'read', ?, "
        "1, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    last_message: dict[int, int] = {}
    for k, campaign in enumerate(campaigns):
        launched = now - timedelta(days=3 * (CAMPAIGNS - k))
        rows = []
        for i in range(n):
            sent = _stamp(launched + timedelta(seconds=i / 10))
            rows.append(
                (
                    campaign,
                    i + 1,
                    f"+91{9_000_000_000 + i}",
                    senders[i % 2],
                    sent,
                    f"wamid.{k}.{i}",
                    sent,
                    sent,
                    sent,
                    sent,
                    sent,
                    sent,
                )
            )
        con.executemany(sql, rows)
    for mid, contact in con.execute(
        "SELECT id, contact_id FROM messages WHERE campaign_id = ?", (campaigns[-1],)
    ):
        last_message[contact] = mid
    last_launch = now - timedelta(days=3)
    inbound, conversations = [], []
    for i in range(n):
        contact = i + 1
        sender = senders[i % 2]
        at = last_launch + timedelta(hours=1, seconds=i / 5)
        for r in range(1 + (i % 2)):
            inbound.append(
                (
                    f"+91{9_000_000_000 + i}",
                    contact,
                    campaigns[-1],
                    last_message[contact],
                    sender,
                    f"in.{i}.{r}",
                    rng.choice(REPLIES),
                    _stamp(at + timedelta(minutes=r)),
                )
            )
        last = at + timedelta(minutes=i % 2)
        conversations.append(
            (
                contact,
                sender,
                campaigns[-1],
                users[i % 2] if i % 4 == 0 else None,
                "done" if i % 10 == 0 else "open",
                1 if i % 3 == 0 else 0,
                _stamp(last),
                _stamp(last),
                inbound[-1][6],
                _stamp(at),
                _stamp(last),
            )
        )
    con.executemany(
        "INSERT INTO inbound (phone, contact_id, campaign_id, message_id, sender_id, "
        "provider_message_id, kind, body, opted_out, received_at) "
        "VALUES (?, ?, ?, ?, ?, ?, 'text', ?, 0, ?)",
        inbound,
    )
    con.executemany(
        "INSERT INTO conversations (contact_id, sender_id, campaign_id, assignee_id, state, "
        "unread, last_activity_at, last_inbound_at, preview, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        conversations,
    )
    # Answers on every fifth conversation, a note on every twentieth.
    answered = con.execute(
        "SELECT id, contact_id, sender_id, last_activity_at FROM conversations WHERE id % 5 = 0"
    ).fetchall()
    for conv, contact, sender, at in answered:
        mid = con.execute(
            "INSERT INTO messages (campaign_id, contact_id, phone, body, status, sender_id, "
            "attempts, next_attempt_at, queued_at, sending_at, sent_at, delivered_at, "
            "updated_at) SELECT NULL, id, phone, 'Yes, we deliver there.', 'delivered', ?, 1, "
            "?, ?, ?, ?, ?, ? FROM contacts WHERE id = ? RETURNING id",
            (sender, at, at, at, at, at, at, contact),
        ).fetchone()[0]
        con.execute(
            "INSERT INTO answers (message_id, conversation_id, author_id, created_at) "
            "VALUES (?, ?, ?, ?)",
            (mid, conv, users[conv % 2], at),
        )
    con.execute(
        "INSERT INTO conversation_notes (conversation_id, user_id, body, at) "
        "SELECT id, ?, 'Called them back; wants the blue one.', last_activity_at "
        "FROM conversations WHERE id % 20 = 0",
        (users[0],),
    )
    con.execute("COMMIT")
    con.close()
    # A conversation in the middle with an answer and a note (ids divisible by 20).
    return {"conversation": max(20, n // 2 // 20 * 20), "n": n}


def pages(info: dict[str, Any]) -> dict[str, str]:
    conv = info["conversation"]
    return {
        "inbox (open)": "/inbox",
        "inbox (unread)": "/inbox?f=unread",
        "inbox (search)": "/inbox?q=Sharma",
        "conversation": f"/inbox/{conv}",
        "live (inbox)": f"/inbox/live.json?c={conv}",
        "unread count": "/inbox/unread.json",
    }


# ---- deliveries ---------------------------------------------------------------------------------


class Receiver:
    """A local endpoint that checks every signature, as a careful receiver would."""

    def __init__(self) -> None:
        import http.server
        import threading

        from wabulk.outbox import signing

        self.secret = ""
        self.got = 0
        self.bad = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # kept-alive connections, as real receivers offer
            # Headers and body go in two writes; with Nagle on, each answer waits for the
            # client's delayed ACK (40 ms), and both sides would measure that instead.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = signing.verify(
                    outer.secret,
                    self.headers.get(signing.SIGNATURE_HEADER, ""),
                    self.headers.get(signing.TIMESTAMP_HEADER, ""),
                    body,
                    time.time(),
                )
                with outer.lock:
                    outer.got += 1
                    outer.bad += not ok
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def deliveries(folder: Path, n: int) -> dict[str, Any]:
    """The product's delivery step beside a bare loop, to the same receiver, same bodies."""
    import httpx
    from sqlalchemy import func, select

    from wabulk import migrate
    from wabulk.auth.service import create_user
    from wabulk.db import Database
    from wabulk.models import DeliveryStatus, OutboxEvent, Role
    from wabulk.outbox import endpoints, signing
    from wabulk.outbox.delivery import body_of, deliver_due
    from wabulk.outbox.emit import emit

    secret_key = "bench-secret-key-not-for-use"  # noqa: S105 (a throwaway database)
    receiver = Receiver()
    db = Database(f"sqlite:///{folder / 'deliveries.db'}")
    migrate.upgrade(db.engine)
    now = datetime.now(UTC)
    with db.session() as session:
        admin = create_user(session, None, EMAIL, PASSWORD, Role.ADMIN)
        _endpoint, secret = endpoints.create(
            session,
            admin,
            secret_key,
            name="Bench receiver",
            url=receiver.url,
            events_wanted=["message.status"],
        )
        for i in range(n):
            emit(
                session,
                "message.status",
                {
                    "message_id": i + 1,
                    "campaign_id": 7,
                    "phone": f"+91{9_000_000_000 + i}",
                    "status": "delivered",
                    "at": now.isoformat(),
                },
                now,
            )
        session.commit()
        payloads = [
            body_of(p)
            for p in session.scalars(select(OutboxEvent.payload).order_by(OutboxEvent.id))
        ]
    receiver.secret = secret

    # Product: the worker's own step, batch after batch, until nothing is due.
    start = time.perf_counter()
    while deliver_due(db, secret_key, "bench-worker"):
        pass
    product_s = time.perf_counter() - start
    with db.session() as session:
        delivered = session.scalar(
            select(func.count()).where(OutboxEvent.status == DeliveryStatus.DELIVERED)
        )
    got_product, bad_product = receiver.got, receiver.bad

    # Bare loop: the same bodies, signed the same way, one kept-alive connection.
    receiver.got = receiver.bad = 0
    start = time.perf_counter()
    with httpx.Client(trust_env=False) as client:
        for body in payloads:
            stamp = int(time.time())
            client.post(
                receiver.url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    signing.TIMESTAMP_HEADER: str(stamp),
                    signing.SIGNATURE_HEADER: signing.signature(secret, stamp, body),
                },
            )
    bare_s = time.perf_counter() - start
    got_bare = receiver.got
    receiver.stop()
    db.dispose()
    return {
        "events": n,
        "delivered": delivered,
        "received": got_product,
        "bad_signatures": bad_product,
        "product_per_s": n / product_s,
        "bare_per_s": got_bare / bare_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 conversations, not 100,000")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--events", type=int, default=0, help="deliveries (default 5,000)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    events_n = args.events or (1_000 if args.quick else 5_000)

    with tempfile.TemporaryDirectory(prefix="wabulk-bench-") as tmp:
        folder = Path(tmp)
        info, paths = {}, {}
        for size, n in sizes.items():
            start = time.perf_counter()
            path = folder / f"{size}.db"
            info[size] = build(path, n)
            print(
                f"built {size}: {n:,} conversations, {n * CAMPAIGNS:,} campaign messages "
                f"in {time.perf_counter() - start:.1f} s ({path.stat().st_size / 2**20:.0f} MiB)"
            )
            paths[size] = pages(info[size])
        with (
            serve(folder / "small.db", folder / "instance-small") as small_base,
            serve(folder / "big.db", folder / "instance-big") as big_base,
        ):
            clients = {"small": Client(small_base), "big": Client(big_base)}
            for c in clients.values():
                c.sign_in()
            results = measure(clients, paths, args.requests)
        out = deliveries(folder, events_n)

    big_n = sizes["big"]
    print(
        f"\n{'page':<16} {'small median':>13} {'p95':>8} {f'{big_n:,} median':>17} "
        f"{'p95':>8} {'ratio':>7}"
    )
    ratios: dict[str, float] = {}
    figures: dict[str, float] = {}
    baseline: dict[str, float] = {}
    for page, times in results.items():
        small_med = statistics.median(times["small"]) * 1000
        big_med = statistics.median(times["big"]) * 1000
        ratio = big_med / small_med
        ratios[page] = round(ratio, 2)
        figures[page] = round(big_med, 2)
        baseline[page] = round(small_med, 2)
        print(
            f"{page:<16} {small_med:>10.1f} ms {_p95(times['small']) * 1000:>5.1f} ms "
            f"{big_med:>14.1f} ms {_p95(times['big']) * 1000:>5.1f} ms {ratio:>6.2f}x "
            f"{'met' if ratio <= TARGET_PAGES else 'MISSED'}"
        )
    deliveries_ratio = out["product_per_s"] / out["bare_per_s"]
    print(
        f"\nwebhook deliveries: {out['events']:,} events, {out['delivered']:,} delivered, "
        f"{out['received']:,} received, {out['bad_signatures']} bad signatures; "
        f"product {out['product_per_s']:.0f}/s, bare loop {out['bare_per_s']:.0f}/s, "
        f"ratio {deliveries_ratio:.2f} "
        f"{'met' if deliveries_ratio >= TARGET_DELIVERIES else 'MISSED'}"
    )
    print(
        json.dumps(
            {
                "bench": BENCH,
                "unit": f"median ms per page at {big_n:,} conversations (baseline: at "
                f"{sizes['small']:,}); webhook deliveries per second",
                "product": {"pages_ms": figures, "deliveries_per_s": round(out["product_per_s"])},
                "baseline": {
                    "small_database_ms": baseline,
                    "bare_loop_per_s": round(out["bare_per_s"]),
                },
                "ratio": {
                    "big_over_small": ratios,
                    "product_over_bare_loop": round(deliveries_ratio, 3),
                },
                "target": {
                    "big_over_small_max": TARGET_PAGES,
                    "product_over_bare_loop_min": TARGET_DELIVERIES,
                },
                "lost": out["events"] - out["delivered"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
