"""Segment number conditions in the reader's way of writing numbers: "300,00" typed on a
Portuguese page is 300 (not 30000) and is saved as 300; contacts' values imported from a
Brazilian sheet ("23,70", "1.234,56") compare as the numbers they are; the saved value goes
back into the box as the reader writes it; English reads "1,000.50" as before. On SQLite
and PostgreSQL."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.analytics_support import signed_in
from tests.campaigns_support import make_contacts, phones
from tests.conftest import csrf_from
from wabulk.models import Contact, Role, Segment, User
from wabulk.segments import service as segments

GASTOS = ["23,70", "53,48", "300,00", "350", "1.234,56", "1,250", "999,9", "abc"]
SHOP = phones(len(GASTOS), "+5511987")


def _shop(db) -> int:  # type: ignore[no-untyped-def]
    list_id = make_contacts(db, SHOP, "Clientes")
    with db.session() as session:
        for phone, gasto in zip(SHOP, GASTOS, strict=True):
            contact = session.scalar(select(Contact).where(Contact.phone == phone))
            assert contact is not None
            contact.attributes = {"total_gasto": gasto}
    return list_id


def _client(app, db, language: str | None):  # type: ignore[no-untyped-def]
    client = signed_in(app, db, Role.OPERATOR)
    with db.session() as session:
        user = session.scalar(select(User).where(User.email == "operator-utc@example.com"))
        assert user is not None
        user.language = language
    return client


def _save(client, name: str, op: str, value: str):  # type: ignore[no-untyped-def]
    data = {
        "csrf_token": csrf_from(client.get("/segments/new").get_data(as_text=True)),
        "name": name,
        "match": "all",
        "c-0-field": "attribute",
        "c-0-key": "total_gasto",
        "c-0-op": op,
        "c-0-value": value,
    }
    return client.post("/segments/new", data=data)


def _members(db, name: str) -> tuple[object, list[str]]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        seg = session.scalar(select(Segment).where(Segment.name == name))
        assert seg is not None
        value = seg.terms["conditions"][0]["value"]
        phones_found = {c.phone for c in segments.sample(session, seg.terms, n=50)}
    return value, sorted(GASTOS[SHOP.index(p)] for p in phones_found)


def test_a_value_typed_with_a_decimal_comma_is_read_in_portuguese(dual) -> None:
    app, db = dual
    _shop(db)
    client = _client(app, db, "pt_BR")
    assert _save(client, "Acima de 300", "gt", "300,00").status_code == 302
    assert _save(client, "Acima de mil", "gt", "1.000,00").status_code == 302
    assert _save(client, "Até 53,48", "lte", "53,48").status_code == 302

    value, members = _members(db, "Acima de 300")
    assert value == 300
    assert members == sorted(["350", "1.234,56", "1,250", "999,9"])
    value, members = _members(db, "Acima de mil")
    assert value == 1000
    assert members == sorted(["1.234,56", "1,250"])
    value, members = _members(db, "Até 53,48")
    assert value == 53.48
    assert members == sorted(["23,70", "53,48"])

    with db.session() as session:
        seg_id = session.scalar(select(Segment.id).where(Segment.name == "Acima de mil"))
    page = client.get(f"/segments/{seg_id}").get_data(as_text=True)
    assert re.search(r'name="c-0-value"[^>]*value="1\.000"', page)
    listing = client.get("/segments").get_data(as_text=True)
    assert "Total Gasto &gt; 1.000" in listing and "Total Gasto ≤ 53,48" in listing


def test_english_reads_a_thousands_comma_as_before(dual) -> None:
    app, db = dual
    _shop(db)
    client = _client(app, db, None)
    assert _save(client, "Over a thousand", "gt", "1,000.50").status_code == 302
    value, members = _members(db, "Over a thousand")
    assert value == 1000.5
    assert members == sorted(["1.234,56", "1,250"])
