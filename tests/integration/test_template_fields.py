"""Fields a template may use: a misspelt one is refused before saving, with a suggestion;
the preview shows customers found by a search or picked at random (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.analytics_support import signed_in
from tests.campaigns_support import make_contacts, phones
from wabulk.campaigns import fields, samples, service, templates
from wabulk.campaigns.rendering import TemplateError
from wabulk.models import Contact, Role, Template

from ..conftest import get_csrf


def _form(client, url: str, **data):  # type: ignore[no-untyped-def]
    data.setdefault("csrf_token", get_csrf(client, "/templates/new"))
    return client.post(url, data=data, content_type="multipart/form-data")


def _preview(client, **data) -> dict:  # type: ignore[no-untyped-def, type-arg]
    token = get_csrf(client, "/templates/new")
    response = client.post("/templates/preview.json", data=data, headers={"X-CSRFToken": token})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def test_saving_a_template_with_a_misspelt_field_is_refused_and_loses_nothing(dual) -> None:
    app, db = dual
    make_contacts(db, phones(3), "VIP", attributes={"city": "Pune"})
    client = signed_in(app, db, Role.OPERATOR)

    body = "Hello\n{{ nmae }} from {{ city }}"
    response = _form(client, "/templates/new", name="Typo", body=body)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Line 2: &#34;nmae&#34; is not a field; did you mean &#34;name&#34;?" in page
    assert "Typo" in page and "{{ nmae }} from {{ city }}" in page  # what was typed stays
    assert "empty for" not in page
    with db.session() as session:
        assert session.scalars(select(Template)).all() == []

    fixed = _form(client, "/templates/new", name="Typo", body="Hello {{ name }} from {{ city }}")
    assert fixed.status_code == 302


def test_a_field_only_old_contacts_have_is_still_a_field(dual) -> None:
    _app, db = dual
    make_contacts(db, phones(3), "Old", attributes={"loyalty_tier": "gold"})
    make_contacts(db, phones(3, prefix="+9199999"), "New")
    with db.session() as session:
        # Not among the newest contacts the suggestions read, nor in any import.
        fields.check_fields(session, {"loyalty_tier"}, "{{ loyalty_tier }}")
        with pytest.raises(TemplateError, match='"loyalty_tiers" is not a field'):
            fields.check_fields(session, {"loyalty_tiers"}, "x")


def test_the_preview_names_an_unknown_field_while_typing(dual) -> None:
    app, db = dual
    vip = make_contacts(db, phones(3), "VIP", attributes={"city": "Pune"})
    client = signed_in(app, db, Role.VIEWER)
    result = _preview(client, body="Hi {{ ctiy }}", list_ids=[vip])
    assert result["error"] == 'Line 1: "ctiy" is not a field; did you mean "city"?'
    assert result["warnings"] == [] and result["samples"] == []


def test_the_api_refuses_an_unknown_field_too(dual) -> None:
    _app, db = dual
    with db.session() as session, pytest.raises(TemplateError, match="did you mean"):
        templates.create_template(session, None, "T", "Hi {{ nmae }}")


def test_the_preview_shows_formatting_the_attachment_and_chosen_customers(dual) -> None:
    app, db = dual
    vip = make_contacts(db, phones(5), "VIP", attributes={"city": "Pune"})
    client = signed_in(app, db, Role.VIEWER)
    with db.session() as session:
        last = session.scalars(select(Contact).order_by(Contact.id.desc())).first()
        last_id, last_phone = last.id, last.phone

    chosen = _preview(client, body="*Hi* {{ name }}", list_ids=[vip], contact_ids=[last_id])
    assert [s["phone"] for s in chosen["samples"]] == [last_phone]
    assert chosen["samples"][0]["parts"] == [
        {"style": "b", "children": ["Hi"]},
        " Person 4",
    ]
    assert chosen["attachment"] is None

    picked = _preview(client, body="Hi {{ name }}", list_ids=[vip], random="1")
    assert 1 <= len(picked["samples"]) <= 3
    assert len({s["phone"] for s in picked["samples"]}) == len(picked["samples"])
    assert {s["phone"] for s in picked["samples"]} <= set(phones(5))


def test_random_picks_stay_in_the_lists_and_skip_opted_out(dual) -> None:
    import random

    _app, db = dual
    make_contacts(db, phones(20, prefix="+9188888"), "Others")
    vip = make_contacts(db, phones(4), "VIP")
    with db.session() as session:
        gone = session.scalar(select(Contact).where(Contact.phone == phones(4)[0]))
        gone.opted_out_at = gone.created_at
    with db.session() as session:
        allowed = set(session.scalars(select(Contact.id).where(Contact.phone.in_(phones(4)[1:]))))
        for seed in range(10):
            picked = samples.random_contacts(session, [vip], 3, random.Random(seed))
            assert set(picked) <= allowed and len(picked) == len(set(picked)) >= 1


def test_the_sample_search_needs_a_login_and_returns_a_few_contacts(dual) -> None:
    app, db = dual
    make_contacts(db, phones(12), "VIP")
    client = signed_in(app, db, Role.VIEWER)
    anonymous = app.test_client().get("/templates/sample-contacts.json?q=Person")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]

    found = client.get("/templates/sample-contacts.json?q=Person").get_json()["contacts"]
    assert len(found) == 5 and all(c["name"].startswith("Person") for c in found)
    by_number = client.get(f"/templates/sample-contacts.json?q={phones(12)[7][-6:]}")
    assert [c["phone"] for c in by_number.get_json()["contacts"]] == [phones(12)[7]]
    huge = client.get("/templates/sample-contacts.json?q=" + "Person" * 5000)
    assert huge.status_code == 200 and huge.get_json()["contacts"] == []
    assert client.get("/templates/sample-contacts.json?q=").get_json()["contacts"] == []


def test_a_campaigns_own_message_with_a_misspelt_field_is_refused_at_save(dual) -> None:
    _app, db = dual
    vip = make_contacts(db, phones(2), "VIP", attributes={"city": "Pune"})
    with db.session() as session, pytest.raises(TemplateError, match='did you mean "city"'):
        service.save_draft(
            session, None, service.DraftInput(name="Typo", list_ids=[vip], body="Hi {{ ctiy }}")
        )
    with db.session() as session:
        saved = service.save_draft(
            session, None, service.DraftInput(name="Ok", list_ids=[vip], body="Hi {{ city }}")
        )
        assert saved.body == "Hi {{ city }}"
