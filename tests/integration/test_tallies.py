"""Kept contact counts (tallies, list member counts) equal a real count after every write."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select, update

from wabulk.auth import service as users
from wabulk.contacts import importer, lists, tallies
from wabulk.contacts import service as contacts
from wabulk.contacts.bulk import add_members, insert_contacts
from wabulk.db import Database
from wabulk.errors import Conflict, PermissionDenied, ValidationError
from wabulk.models import (
    Contact,
    ContactList,
    Event,
    ImportKind,
    ImportStatus,
    Role,
    Tally,
    utcnow,
)

from ..conftest import PASSWORD, login
from ..importing import exact, import_file, upload
from ..sheet_files import write_csv
from ..support import run_wabulk

A, B, C, D, E = (f"+9198765432{n}" for n in range(10, 15))

FIRST = [
    ["Name", "Phone", "City"],
    ["Asha", "98765 43210", "Pune"],
    ["Ravi", "9876543211", "Delhi"],
    ["Bad", "12345", ""],
    ["Meera", "+91 98765 43212", "Goa"],
    ["Asha again", "09876543210", ""],  # a duplicate in the file
]


@pytest.fixture
def db(dual: tuple[Flask, Database]) -> Database:
    return dual[1]


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


def _sheet(tmp_path: Path, name: str, rows: list[list[str]]) -> Path:
    return write_csv(tmp_path / name, rows)


def _list_id(db: Database, name: str) -> int:
    with db.session() as session:
        found = lists.find_list(session, name)
        assert found is not None
        return found.id


def test_imports_count_created_contacts_and_new_members_once(db, tmp_path, instance) -> None:
    first = _sheet(tmp_path, "first.csv", FIRST)
    import_file(db, instance, first, new_list_name="VIP")
    assert exact(db) == ((3, 0), {"VIP": 3})

    again = import_file(db, instance, first, list_id=_list_id(db, "VIP"))
    assert again.created_count == 0
    assert exact(db) == ((3, 0), {"VIP": 3})

    # Existing phones in the first chunk: its optimistic write is rolled back and done again
    # the careful way; the counts move once, by what was really created and joined.
    newer = [
        ["Name", "Phone", "City"],
        ["Asha Rao", "9876543210", "Mumbai"],
        ["Dev", "9876543213", "Agra"],
        ["Kiran", "9876543214", ""],
        ["Kiran", "9876543214", "Pune"],
    ]
    imp = import_file(
        db, instance, _sheet(tmp_path, "newer.csv", newer), new_list_name="New", chunk_rows=2
    )
    assert (imp.created_count, imp.updated_count) == (2, 1)
    assert exact(db) == ((5, 0), {"VIP": 3, "New": 3})


@pytest.mark.parametrize("chunk_rows", [1, 5000])
def test_opt_out_imports_count_each_newly_opted_out_contact(
    db, tmp_path, instance, chunk_rows
) -> None:
    import_file(db, instance, _sheet(tmp_path, "first.csv", FIRST), new_list_name="VIP")
    stop = [["Phone"], ["9876543211"], ["9876543213"], ["09876543211"]]  # B, a new D, B again
    path = _sheet(tmp_path, "stop.csv", stop)
    imp = import_file(db, instance, path, kind=ImportKind.OPT_OUTS, chunk_rows=chunk_rows)
    assert (imp.created_count, imp.updated_count) == (1, 1)
    assert exact(db) == ((4, 2), {"VIP": 3})
    import_file(db, instance, path, kind=ImportKind.OPT_OUTS, chunk_rows=chunk_rows)
    assert exact(db) == ((4, 2), {"VIP": 3})
    # An ordinary import of opted-out people leaves them out, and the tally as it was.
    import_file(db, instance, _sheet(tmp_path, "again.csv", [["Phone"], ["9876543213"]]))
    assert exact(db) == ((4, 2), {"VIP": 3})


class Crash(RuntimeError):
    pass


def _crash(_imp: object) -> None:
    raise Crash("worker killed")


def test_a_killed_import_resumed_counts_like_an_unbroken_one(db, tmp_path, instance) -> None:
    rows = [
        ["Name", "Phone"],
        ["Asha", "9876543210"],  # chunk 1
        ["Ravi", "9876543211"],
        ["Asha R", "9876543210"],  # chunk 2: a repeat of a committed row
        ["Meera", "9876543212"],
        ["Dev", "9876543213"],  # chunk 3
    ]
    path = _sheet(tmp_path, "big.csv", rows)
    import_id = upload(db, instance, path, new_list_name="Resumed")
    with db.session() as session:
        assert importer.claim_next(session, "worker-1") == import_id
    with pytest.raises(Crash):
        importer.run(db, import_id, instance, "worker-1", progress=_crash, chunk_rows=2)
    assert exact(db) == ((2, 0), {"Resumed": 2})  # the committed chunk, nothing more

    done = importer.run(db, import_id, instance, "worker-1", chunk_rows=2)
    assert done.status is ImportStatus.COMPLETED
    assert exact(db) == ((4, 0), {"Resumed": 4})


def test_opting_out_and_in_by_hand_moves_the_tally(db) -> None:
    with db.session() as session:
        ids = [contacts.upsert_contact(session, None, phone=p)[0].id for p in (A, B, C)]
    with db.session() as session:
        assert contacts.opt_out(session, None, ids[:2], "Asked by phone") == 2
    assert exact(db)[0] == (3, 2)
    with db.session() as session:
        assert contacts.opt_out(session, None, ids, "Asked again") == 1  # two were out already
        reasons = session.execute(select(Contact.phone, Contact.opt_out_reason)).all()
    assert sorted(reasons) == [(A, "Asked by phone"), (B, "Asked by phone"), (C, "Asked again")]
    assert exact(db)[0] == (3, 3)
    with db.session() as session:
        assert contacts.opt_in(session, None, ids[0], "Rejoined").opted_out_at is None
    assert exact(db)[0] == (3, 2)
    with db.session() as session, pytest.raises(Conflict, match=re.escape(f"{A} is not opted out")):
        contacts.opt_in(session, None, ids[0], "Rejoined twice")
    assert exact(db)[0] == (3, 2)
    with db.session() as session:
        opted = session.scalars(select(Event.kind).where(Event.kind.like("contact.opted%"))).all()
    assert sorted(opted) == ["contact.opted_in"] + ["contact.opted_out"] * 3


def test_members_added_and_removed_by_hand_and_a_deleted_list(db) -> None:
    with db.session() as session:
        ids = [contacts.upsert_contact(session, None, phone=p)[0].id for p in (A, B, C)]
        vip = lists.create_list(session, None, "VIP").id
        lists.create_list(session, None, "Other")
    with db.session() as session:
        assert contacts.add_to_list(session, None, vip, ids) == 3
        other = _list_id(db, "Other")
        assert contacts.add_to_list(session, None, other, ids[:1]) == 1
    assert exact(db) == ((3, 0), {"VIP": 3, "Other": 1})
    with db.session() as session:
        # One already in, one that does not exist: neither is counted.
        assert contacts.add_to_list(session, None, vip, [ids[0], 999_999]) == 0
        assert contacts.remove_from_list(session, None, vip, ids[:2]) == 2
        assert contacts.remove_from_list(session, None, vip, ids[:1]) == 0
    assert exact(db) == ((3, 0), {"VIP": 1, "Other": 1})
    with db.session() as session:
        lists.delete_list(session, None, vip)
    assert exact(db) == ((3, 0), {"Other": 1})


def test_upsert_contact_creates_then_updates_without_erasing(db) -> None:
    with db.session() as session:
        vip = lists.create_list(session, None, "VIP").id
        new = lists.create_list(session, None, "New").id
        operator = users.create_user(session, None, "op@example.com", PASSWORD, Role.OPERATOR)
    with db.session() as session:
        contact, created = contacts.upsert_contact(
            session,
            operator,
            phone="098765 43210",
            name="  Asha   Rao ",
            attributes={"City": "Pune", "Due Amount": 1500, "Empty": ""},
            list_ids=[vip],
            default_country="in",
        )
        assert created and contact.id is not None
    assert exact(db) == ((1, 0), {"VIP": 1, "New": 0})
    with db.session() as session:
        contact, created = contacts.upsert_contact(
            session,
            operator,
            phone="+91 98765 43210",
            attributes={"city": "Mumbai", "plan": "Gold", "note": None},
            list_ids=[new, vip],
        )
        assert not created
    assert exact(db) == ((1, 0), {"VIP": 1, "New": 1})
    with db.session() as session:
        saved = session.scalars(select(Contact)).one()
        texts = session.scalars(select(Event.text).order_by(Event.id)).all()
        again, created = contacts.upsert_contact(session, operator, phone=A)
        assert not created and again.id == saved.id
    assert (saved.phone, saved.name, saved.country, saved.timezone) == (
        A,
        "Asha Rao",
        "IN",
        "Asia/Calcutta",
    )
    assert saved.attributes == {"city": "Mumbai", "due_amount": "1500", "plan": "Gold"}
    assert texts[-2:] == [
        f"op@example.com added {A} and put it in 'VIP'",
        f"op@example.com updated {A} (attributes) and put it in 'New'",
    ]
    with db.session() as session:  # the call that changed nothing recorded nothing
        assert session.scalar(select(func.count()).select_from(Event)) == len(texts)
    assert exact(db) == ((1, 0), {"VIP": 1, "New": 1})


def test_upsert_contact_refuses_bad_input_saying_what_is_wrong(db) -> None:
    with db.session() as session:
        lists.create_list(session, None, "VIP")
        viewer = users.create_user(session, None, "v@example.com", PASSWORD, Role.VIEWER)
    cases = [
        (
            dict(phone="12345"),
            "phone",
            "The phone number '12345' is too short for India. Numbers without a country code"
            " are read as numbers in India; set your country under Settings → General.",
        ),
        (dict(phone="  "), "phone", "Give the contact's phone number."),
        (dict(phone="call me"), "phone", "The phone number 'call me' is not a phone number."),
        (
            dict(phone="9876543210 / 9876543211"),
            "phone",
            "'9876543210 / 9876543211' holds more than one phone number; give one per contact.",
        ),
        (
            dict(phone="9876543210", default_country=None),
            "phone",
            "The phone number '9876543210' has no country code: write it with one (such as"
            " +91), or set your country under Settings → General.",
        ),
        (
            dict(phone=A, default_country="XX"),
            "default_country",
            "'XX' is not a country code such as IN or US.",
        ),
        (dict(phone=A, name=42), "name", "The name must be text."),
        (dict(phone=A, name="x" * 201), "name", "A name can have at most 200 characters."),
        (
            dict(phone=A, attributes=["city"]),
            "attributes",
            'Attributes are names with values, such as {"city": "Pune"}.',
        ),
        (
            dict(phone=A, attributes={"tags": ["a", "b"]}),
            "attributes",
            "The attribute 'tags' must be text or a number.",
        ),
        (
            dict(phone=A, attributes={"vip": True}),
            "attributes",
            "The attribute 'vip' must be text or a number.",
        ),
        (dict(phone=A, list_ids=[998, 999]), "list_ids", "There is no list #998, #999."),
        (dict(phone=A, list_ids=["VIP"]), "list_ids", "List ids are whole numbers."),
    ]
    for kwargs, field, message in cases:
        kwargs.setdefault("default_country", "IN")
        with db.session() as session, pytest.raises(ValidationError) as caught:
            contacts.upsert_contact(session, None, **kwargs)
        assert (caught.value.field, str(caught.value)) == (field, message), kwargs
    with db.session() as session, pytest.raises(PermissionDenied):
        contacts.upsert_contact(session, viewer, phone=A, default_country="IN")
    assert exact(db) == ((0, 0), {"VIP": 0})


def test_a_missing_tally_row_is_created_and_recount_repairs_everything(db) -> None:
    with db.session() as session:
        vip = lists.create_list(session, None, "VIP").id
        for phone in (A, B):
            contacts.upsert_contact(session, None, phone=phone, list_ids=[vip])
        session.execute(delete(Tally))
        tallies.add(session, contacts=5, opted_out=0)
    with db.session() as session:
        assert tallies.totals(session) == (5, 0)
        session.execute(update(ContactList).values(member_count=42))
        cached = session.get(ContactList, vip)
        assert cached is not None and cached.member_count == 42
        assert tallies.recount(session) == (2, 0)
        assert cached.member_count == 2  # a list already loaded shows the new count
    assert exact(db) == ((2, 0), {"VIP": 2})


def _add_many(db: Database, worker: int, start: threading.Barrier) -> None:
    start.wait()
    for _ in range(100):
        with db.session() as session:
            tallies.add(session, contacts=1, opted_out=-1 if worker else 1)


def test_concurrent_moves_lose_nothing(db) -> None:
    start = threading.Barrier(2)
    threads = [threading.Thread(target=_add_many, args=(db, n, start)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with db.session() as session:
        assert tallies.totals(session) == (200, 0)
        moved = dict(
            session.execute(
                select(Tally.key, Tally.n).where(Tally.key.in_(("contacts", "contacts_opted_out")))
            ).all()
        )
    assert moved == {"contacts": 200, "contacts_opted_out": 0}


# ---- the Contacts page: counts that never count a million rows ------------------------------


def _signed_in(app: Flask, db: Database) -> FlaskClient:
    client = app.test_client()
    with db.session() as session:
        users.create_user(session, None, "viewer@example.com", PASSWORD, Role.VIEWER)
    assert login(client, "viewer@example.com").status_code == 302
    return client


def _matching(page: str) -> str:
    marker = 'data-testid="matching">'
    assert marker in page
    return page.split(marker, 1)[1].split("</p>", 1)[0]


def test_a_broad_filter_is_counted_up_to_a_cap(dual) -> None:
    app, db = dual
    many = contacts.COUNT_CAP + 50
    with db.session() as session:
        pune = '{"city": "Pune"}'
        rows = [(f"+9190000{n:05d}", f"Customer {n}", pune, "IN", None) for n in range(many)]
        insert_contacts(session, rows, utcnow())
        insert_contacts(session, [(A, "Asha", '{"city": "Goa"}', "IN", None)], utcnow(), True, "x")
        big = lists.create_list(session, None, "Everyone in Pune")
        ids = session.scalars(select(Contact.id).where(Contact.phone != A)).all()
        add_members(session, big.id, list(ids), utcnow())
        tallies.recount(session)
    with db.session() as session:
        count = lambda **f: contacts.count(session, contacts.ContactFilter(**f))  # noqa: E731
        assert count(q="pune") == (10_000, True)
        assert count(q="goa") == (1, False)
        # Filters the kept counts answer stay exact past the cap.
        assert count(list_id=big.id) == (many, False)
        assert count(status="subscribed") == (many, False)
        assert count(status="opted_out") == (1, False)
        assert count(list_id=big.id, status="subscribed") == (10_000, True)

    client = _signed_in(app, db)
    page = client.get("/contacts/?q=pune").get_data(as_text=True)
    assert f"{many + 1:,} in all" in page
    assert _matching(page) == "More than 10,000 matching contacts."
    assert _matching(client.get("/contacts/?q=goa").get_data(as_text=True)) == (
        "1 matching contacts."
    )
    listed = client.get(f"/contacts/?list_id={big.id}").get_data(as_text=True)
    assert _matching(listed) == f"{many:,} matching contacts."
    assert f'<span class="badge text-bg-light">{many:,}</span>' in listed


def test_recount_command_repairs_the_counts(tmp_path) -> None:
    instance = tmp_path / "instance"
    assert run_wabulk(instance, "db", "upgrade").returncode == 0
    sheet = write_csv(tmp_path / "c.csv", [["Phone"], ["9876543210"], ["9876543211"]])
    done = run_wabulk(
        instance, "contacts", "import", str(sheet), "--list", "VIP", "--country", "IN"
    )
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(instance / "wabulk.db") as conn:
        conn.execute("UPDATE tallies SET n = 7")
        conn.execute("UPDATE contact_lists SET member_count = 9")
    result = run_wabulk(instance, "contacts", "recount")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "2 contacts, 0 opted out; list member counts updated.",
        "The kept counts were 7 contacts, 7 opted out.",
    ]
    with sqlite3.connect(instance / "wabulk.db") as conn:
        assert conn.execute("SELECT member_count FROM contact_lists").fetchall() == [(2,)]
