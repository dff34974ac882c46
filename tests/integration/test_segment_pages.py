"""Segments pages: the list, the builder (create, a bad value kept beside its row, delete
with its refusal while in use), the live count's JSON, and who may do what. On SQLite and
PostgreSQL."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from tests.analytics_support import signed_in
from tests.campaigns_support import make_campaign, make_contacts, make_sender, phones
from tests.conftest import csrf_from
from wabulk.campaigns import lifecycle
from wabulk.campaigns.service import DraftInput, save_draft
from wabulk.models import Contact, Event, Role, Segment
from wabulk.segments import service as segments
from wabulk.web.segments import views as segment_views

PUNE = phones(6, "+9198711")
MUMBAI = phones(4, "+9198722")


def _flat(text: str) -> str:
    return " ".join(html.unescape(text).split())


def _shop(db) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Six in Pune (dues 100…600), four in Mumbai (dues 900); one Pune contact opted out."""
    pune = make_contacts(db, PUNE, "Pune")
    mumbai = make_contacts(db, MUMBAI, "Mumbai", attributes={"due_amount": "900"})
    with db.session() as session:
        for i, phone in enumerate(PUNE):
            contact = session.scalar(select(Contact).where(Contact.phone == phone))
            assert contact is not None
            contact.attributes = {"due_amount": str(100 * (i + 1))}
            contact.name = f"Pune {i}"
            if i == 0:
                contact.opted_out_at = contact.created_at
    return {"pune": pune, "mumbai": mumbai}


def _rows(page: str) -> list[str]:
    """The condition rows shown (not the blank one kept in a <template> for new rows)."""
    shown = page.split("<template")[0]
    return re.findall(r'data-testid="condition">(.*?)data-remove-row', shown, re.S)


def _form(client, url: str, **fields: object) -> dict[str, object]:  # type: ignore[no-untyped-def]
    data: dict[str, object] = {"csrf_token": csrf_from(client.get(url).get_data(as_text=True))}
    data.update(fields)
    return data


def _pune_over(lists: dict[str, int], amount: str) -> dict[str, object]:
    return {
        "name": "Pune dues",
        "description": "Reminders",
        "match": "all",
        "c-0-field": "list",
        "c-0-op": "in",
        "c-0-lists": [str(lists["pune"])],
        "c-1-field": "attribute",
        "c-1-key": "due_amount",
        "c-1-op": "gt",
        "c-1-value": amount,
    }


def test_create_shows_the_segment_with_its_sentence_count_and_campaigns(dual) -> None:
    app, db = dual
    lists = _shop(db)
    client = signed_in(app, db, Role.OPERATOR)
    empty = _flat(client.get("/segments").get_data(as_text=True))
    assert "No segments yet" in empty and "for example" in empty

    response = client.post(
        "/segments/new", data=_form(client, "/segments/new", **_pune_over(lists, "250"))
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with db.session() as session:
        seg = session.scalar(select(Segment).where(Segment.name == "Pune dues"))
        assert seg is not None
        assert seg.terms["match"] == "all" and len(seg.terms["conditions"]) == 2
        sentence = segments.terms_mod.describe(seg.terms, session)
        seg_id = seg.id
    page = client.get("/segments").get_data(as_text=True)
    row = _flat(re.search(rf'data-segment="{seg_id}"(.*?)</tr>', page, re.S).group(1))
    # 300, 400, 500, 600 are over 250; 100 is opted out anyway, 200 is not over.
    assert "Pune dues" in row and _flat(sentence) in row and "No campaign yet" in row
    assert re.search(r'data-field="count">4<', page)

    sender = make_sender(db)
    with db.session() as session:
        save_draft(
            session, None, DraftInput(name="Dues May", sender_ids=[sender], segment_id=seg_id)
        )
    assert "Dues May" in _flat(client.get("/segments").get_data(as_text=True))


def test_a_bad_value_is_named_beside_its_row_and_the_other_rows_are_kept(dual) -> None:
    app, db = dual
    lists = _shop(db)
    client = signed_in(app, db, Role.OPERATOR)
    with db.session() as session:
        seg = segments.create(
            session,
            None,
            "Pune dues",
            None,
            {
                "match": "all",
                "conditions": [{"field": "list", "op": "in", "value": [lists["pune"]]}],
            },
        )
        seg_id, before = seg.id, dict(seg.terms)
    url = f"/segments/{seg_id}"
    response = client.post(url, data=_form(client, url, **_pune_over(lists, "lots")))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    rows = _rows(page)
    assert len(rows) == 2
    first_error = re.search(r'data-testid="condition-error"([^>]*)>([^<]*)<', rows[0])
    second_error = re.search(r'data-testid="condition-error"([^>]*)>([^<]*)<', rows[1])
    assert "hidden" in first_error.group(1) and not first_error.group(2).strip()
    assert "hidden" not in second_error.group(1) and "Condition 2" in second_error.group(2)
    # The first row's list stays ticked, the typed value and name stay as typed.
    assert re.search(rf'name="c-0-lists" value="{lists["pune"]}"[^>]*checked', rows[0])
    assert 'value="lots"' in rows[1] and 'value="Pune dues"' in page
    with db.session() as session:
        assert session.get(Segment, seg_id).terms == before  # nothing saved


def test_without_javascript_rows_are_added_and_removed_by_the_server(dual) -> None:
    app, db = dual
    lists = _shop(db)
    client = signed_in(app, db, Role.OPERATOR)
    fields = _pune_over(lists, "250")
    page = client.post(
        "/segments/new", data=_form(client, "/segments/new", add_row="1", **fields)
    ).get_data(as_text=True)
    assert len(_rows(page)) == 3
    page = client.post(
        "/segments/new", data=_form(client, "/segments/new", remove_row="0", **fields)
    ).get_data(as_text=True)
    assert len(_rows(page)) == 1
    assert 'name="c-0-key"' in page and 'value="250"' in page
    with db.session() as session:
        assert session.scalar(select(Segment.id)) is None  # neither saved anything


def _preview(client, terms: object, rows: list[int] | None = None):  # type: ignore[no-untyped-def]
    token = csrf_from(client.get("/segments/new").get_data(as_text=True))
    return client.post(
        "/segments/preview.json",
        data=json.dumps({"terms": terms, "rows": rows or []}),
        headers={"X-CSRFToken": token, "Content-Type": "application/json"},
    )


def test_live_count_sample_and_unfinished_rows(dual) -> None:
    app, db = dual
    lists = _shop(db)
    client = signed_in(app, db, Role.OPERATOR)
    either = {
        "match": "any",
        "conditions": [
            {"field": "list", "op": "in", "value": [lists["mumbai"]]},
            {"field": "attribute", "key": "due_amount", "op": "gte", "value": 500},
        ],
    }
    answer = _preview(client, either, [0, 1]).get_json()
    assert answer["ok"] and answer["count"] == 6 and answer["text"] == "6"
    assert not answer["capped"] and answer["not_on_whatsapp"] == ""
    assert sorted(c["phone"] for c in answer["sample"]) == sorted(MUMBAI + PUNE[4:])
    assert answer["sentence"].startswith("In list Mumbai or")

    # Not on WhatsApp: out of the count a launch reaches, said apart, still in the sample.
    with db.session() as session:
        gone = session.scalar(select(Contact).where(Contact.phone == MUMBAI[0]))
        gone.not_on_whatsapp_at = gone.created_at
    answer = _preview(client, either, [0, 1]).get_json()
    assert (answer["count"], answer["not_on_whatsapp"]) == (5, "1")
    assert MUMBAI[0] in {c["phone"] for c in answer["sample"]}

    unfinished = {"match": "all", "conditions": [{"field": "attribute", "op": "gt", "value": 5}]}
    answer = _preview(client, unfinished, [2]).get_json()
    assert not answer["ok"] and answer["row"] == 2 and answer["error"].startswith("Condition 1")

    big = {
        "match": "all",
        "conditions": [{"field": "name", "op": "contains", "value": "x" * 70_000}],
    }
    assert _preview(client, big).status_code == 413
    # Without the page's token the post is refused.
    assert client.post("/segments/preview.json", json={"terms": either}).status_code == 400


def test_counts_stop_at_their_cap_and_say_so(dual, monkeypatch) -> None:
    app, db = dual
    lists = _shop(db)
    monkeypatch.setattr(segment_views, "COUNT_CAP", 3)
    monkeypatch.setattr(segment_views, "LIST_CAP", 2)
    client = signed_in(app, db, Role.OPERATOR)
    mumbai = {
        "match": "all",
        "conditions": [{"field": "list", "op": "in", "value": [lists["mumbai"]]}],
    }
    answer = _preview(client, mumbai).get_json()
    assert (answer["count"], answer["capped"], answer["text"]) == (3, True, "3+")
    with db.session() as session:
        segments.create(session, None, "Mumbai", None, mumbai)
    assert re.search(r'data-field="count">2\+<', client.get("/segments").get_data(as_text=True))


def test_delete_asks_first_and_is_refused_while_a_draft_uses_it(dual) -> None:
    app, db = dual
    _shop(db)
    client = signed_in(app, db, Role.OPERATOR)
    with db.session() as session:
        seg_id = segments.create(
            session, None, "Pune all", None, {"match": "all", "conditions": []}
        ).id
    page = client.get(f"/segments/{seg_id}").get_data(as_text=True)
    assert re.search(
        r'data-testid="delete-segment"\s+data-confirm="Delete the segment Pune all\?', page
    )

    campaign = make_campaign(db, [], [make_sender(db)], launch=False, segment_id=seg_id)
    url = f"/segments/{seg_id}/delete"
    response = client.post(url, data=_form(client, f"/segments/{seg_id}"), follow_redirects=True)
    assert "still sends to the segment" in _flat(response.get_data(as_text=True))
    with db.session() as session:
        assert session.get(Segment, seg_id) is not None
        lifecycle.delete_draft(session, None, campaign)
    response = client.post(url, data=_form(client, f"/segments/{seg_id}"))
    assert response.status_code == 302
    with db.session() as session:
        assert session.get(Segment, seg_id) is None
        assert session.scalar(select(Event.kind).where(Event.kind == "segment.deleted"))


def test_viewers_read_and_never_change(dual) -> None:
    app, db = dual
    lists = _shop(db)
    with db.session() as session:
        seg_id = segments.create(
            session,
            None,
            "Pune",
            None,
            {
                "match": "all",
                "conditions": [{"field": "list", "op": "in", "value": [lists["pune"]]}],
            },
        ).id
    client = signed_in(app, db, Role.VIEWER)
    assert client.get("/segments").status_code == 200
    page = client.get(f"/segments/{seg_id}").get_data(as_text=True)
    assert "<fieldset disabled>" in page and "save-segment" not in page
    assert "delete-segment" not in page and "segments.js" not in page
    assert re.search(r"data-count>5<", page)  # the count, drawn by the server
    token = csrf_from(page)
    for url in ("/segments/new", f"/segments/{seg_id}", f"/segments/{seg_id}/delete"):
        assert client.post(url, data={"csrf_token": token, "name": "x"}).status_code == 403
    assert client.get("/segments/new").status_code == 403
    answer = client.post(
        "/segments/preview.json", json={"terms": {}}, headers={"X-CSRFToken": token}
    )
    assert answer.status_code == 403


class _FormValues(HTMLParser):
    """What a browser would post from the page's segment form, as it stands."""

    def __init__(self) -> None:
        super().__init__()
        self.data: list[tuple[str, str]] = []
        self._select: str | None = None
        self._in_template = 0
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "template":
            self._in_template += 1
        if self._in_template or ("name" not in a and tag != "option"):
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind not in ("submit", "button"):
                self.data.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.data.append((self._select, a.get("value", "")))
        elif tag == "textarea":
            self._textarea = a["name"]
            self.data.append((a["name"], ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self._in_template -= 1
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea and not self._in_template:
            name, text = self.data[-1]
            self.data[-1] = (name, text + data)


def test_every_kind_of_condition_comes_back_from_the_page_unchanged(dual) -> None:
    app, db = dual
    lists = _shop(db)
    campaign_id = make_campaign(db, [lists["mumbai"]], [make_sender(db)], name="May offer")
    with db.session() as session:
        for phone, country, zone in (
            (PUNE[1], "IN", "Asia/Kolkata"),
            (MUMBAI[1], "AE", "Asia/Dubai"),
        ):
            contact = session.scalar(select(Contact).where(Contact.phone == phone))
            contact.country, contact.timezone = country, zone
    conditions = [
        {"field": "list", "op": "not_in", "value": [lists["pune"]]},
        {"field": "attribute", "key": "due_amount", "op": "within_days", "value": 90},
        {"field": "attribute", "key": "due_amount", "op": "not_empty", "value": None},
        {"field": "country", "op": "in", "value": ["AE", "IN"]},
        {"field": "timezone", "op": "not_in", "value": ["Asia/Dubai"]},
        {"field": "name", "op": "contains", "value": "Pune"},
        {"field": "opt_in", "op": "eq", "value": "opted_back_in"},
        {"field": "not_on_whatsapp", "op": "eq", "value": False},
        {"field": "outcome", "campaign_id": campaign_id, "op": "failed", "value": "131049"},
        {"field": "outcome", "campaign_id": campaign_id, "op": "replied", "value": None},
    ]
    with db.session() as session:
        seg = segments.create(
            session, None, "Everything", "All kinds", {"match": "any", "conditions": conditions}
        )
        seg_id, saved = seg.id, seg.terms
    client = signed_in(app, db, Role.OPERATOR)
    form = _FormValues()
    form.feed(client.get(f"/segments/{seg_id}").get_data(as_text=True))
    assert ("c-9-op", "replied") in form.data and ("match", "any") in form.data
    response = client.post(f"/segments/{seg_id}", data=MultiDict(form.data))
    assert response.status_code == 302, response.get_data(as_text=True)
    with db.session() as session:
        # The same conditions (a choice of several comes back in the page's order).
        assert _unordered(session.get(Segment, seg_id).terms) == _unordered(saved)


def _unordered(terms: dict) -> dict:  # type: ignore[type-arg]
    conditions = [
        {k: sorted(v) if isinstance(v, list) else v for k, v in c.items()}
        for c in terms["conditions"]
    ]
    return {**terms, "conditions": conditions}
