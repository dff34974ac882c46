"""Segments: the list, the builder (new, edit, read-only for viewers), its live count and
sample, and delete. The rules are in `wabulk.segments`; this is only the HTTP."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WResponse

from ...errors import DomainError, ValidationError
from ...models import Campaign, Contact, Role, Segment, utcnow
from ...segments import compile as compile_terms
from ...segments import service as segments
from ...segments import terms as segment_terms
from ..form_state import FormState
from ..helpers import db_session
from ..i18n import format_number, translated
from ..security import requires
from . import form as builder

bp = Blueprint("segments", __name__, url_prefix="/segments")

# The live count's request body: a few kilobytes of terms at most (20 conditions).
MAX_PREVIEW_BYTES = 64 * 1024
SAMPLE_SIZE = 10
# Counts stop here ("100,000+"), as the service's do; the list of segments, which counts
# each of them, and the retarget buttons stop sooner ("10,000+").
COUNT_CAP = 100_000
LIST_CAP = 10_000
# Countries and timezones offered are those of this many newest contacts.
RECENT = 2000
KNOWN = frozenset({"name", "description", "match"})


@bp.get("")
@requires(Role.VIEWER)
def index() -> str:
    session = db_session()
    rows = []
    for seg in segments.list_all(session):
        try:
            counted = count_text(*segments.count(session, seg.terms, cap=LIST_CAP))
        except ValidationError as exc:  # saved under older rules (a zone tzdata dropped)
            counted = _("Needs fixing: %(problem)s", problem=translated(str(exc)))
        rows.append(
            {
                "segment": seg,
                "sentence": describe(session, seg.terms),
                "count": counted,
                "campaigns": used_by(session, seg.id),
            }
        )
    return render_template("segments/index.html", rows=rows)


@bp.get("/new")
@requires(Role.OPERATOR)
def new() -> str:
    state = FormState({"name": "", "description": "", "match": "all"})
    return _render_form(None, state, [builder.blank_row()])


@bp.post("/new")
@requires(Role.OPERATOR)
def create() -> WResponse | tuple[str, int] | str:
    return _save(None)


@bp.get("/<int:segment_id>")
@requires(Role.VIEWER)
def edit(segment_id: int) -> str:
    seg = segments.get(db_session(), segment_id)
    state = FormState({"name": seg.name, "description": seg.description or "", "match": ""})
    state.values["match"] = (seg.terms or {}).get("match", "all")
    rows = builder.rows_of(seg.terms) or [builder.blank_row()]
    return _render_form(seg, state, rows)


@bp.post("/<int:segment_id>")
@requires(Role.OPERATOR)
def update(segment_id: int) -> WResponse | tuple[str, int] | str:
    segments.get(db_session(), segment_id)  # 404 before anything else
    return _save(segment_id)


@bp.post("/<int:segment_id>/delete")
@requires(Role.OPERATOR)
def delete(segment_id: int) -> WResponse:
    session = db_session()
    try:
        done = segments.delete(session, current_user, segment_id)
    except DomainError as exc:
        session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("segments.edit", segment_id=segment_id))
    session.commit()
    flash(done or _("Segment deleted."), "success")
    return redirect(url_for("segments.index"))


@bp.post("/preview.json")
@requires(Role.OPERATOR)
def preview() -> tuple[Response, int] | Response:
    """How many contacts match the terms as typed, and ten of them; or what to fix first.

    - The body is refused above MAX_PREVIEW_BYTES before it is parsed.
    - `row` is the builder's row number (the page sends its rows' numbers as `rows`).
    """
    if (request.content_length or 0) > MAX_PREVIEW_BYTES:
        return jsonify({"ok": False, "error": _("Too many conditions to count.")}), 413
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # "[[[[…" thousands deep: not ValueError, so not silenced
        body = None
    if not isinstance(body, dict):
        return jsonify({"ok": False, "error": _("Send the conditions as JSON.")}), 400
    numbers = body.get("rows")
    numbers = numbers if isinstance(numbers, list) else []
    where = [int(n) for n in numbers if isinstance(n, int)][:100]
    session = db_session()
    try:
        terms = segment_terms.validate(body.get("terms"))
    except ValidationError as exc:
        spot = builder.row_error(exc.field, where) if where else None
        return jsonify(
            {
                "ok": False,
                "error": translated(str(exc)),
                "row": spot[0] if spot else None,
                "part": spot[1] if spot else None,
            }
        )
    return jsonify({"ok": True, **who_matches(session, terms)})


def _save(segment_id: int | None) -> WResponse | tuple[str, int] | str:
    session = db_session()
    form = request.form
    state = FormState(
        {
            "name": form.get("name", "")[:200],
            "description": form.get("description", "")[:600],
            "match": "any" if form.get("match") == "any" else "all",
        }
    )
    rows = builder.rows_from_request(form)
    seg = segments.get(session, segment_id) if segment_id else None
    # Without JavaScript, "Add a condition", "Remove" and "Refresh" post the form to
    # re-draw its rows; nothing is saved.
    if "add_row" in form or "refresh" in form:
        if "add_row" in form:
            rows.append(builder.blank_row())
        return _render_form(seg, state, rows or [builder.blank_row()])
    if "remove_row" in form:
        gone = form.get("remove_row", type=int)
        rows = [row for row in rows if row.get("n") != gone]
        return _render_form(seg, state, rows or [builder.blank_row()])
    raw, where = builder.terms_of(state.values["match"], rows)
    try:
        terms = segment_terms.validate(raw)
        if segment_id is None:
            saved = segments.create(
                session, current_user, state.values["name"], state.values["description"], terms
            )
        else:
            saved = segments.update(
                session,
                current_user,
                segment_id,
                state.values["name"],
                state.values["description"],
                terms,
            )
    except DomainError as exc:
        session.rollback()
        spot = builder.row_error(getattr(exc, "field", None), where)
        # The service's English: the page shows it in the reader's language (|translated).
        if spot is not None:
            rows[spot[0]]["error"] = str(exc)
            rows[spot[0]]["error_part"] = spot[1]
            state.errors["conditions"] = str(exc)
        else:
            state.fail(exc, KNOWN | {"conditions"}, conflict="name")
        seg = segments.get(session, segment_id) if segment_id else None
        return _render_form(seg, state, rows or [builder.blank_row()]), 400
    session.commit()
    flash(_("Segment %(name)s saved.", name=repr(saved.name)), "success")
    return redirect(url_for("segments.index"))


def _render_form(seg: Segment | None, state: FormState, rows: list[dict[str, Any]]) -> str:
    session = db_session()
    live: dict[str, Any] | None = None
    if not any(row.get("error") for row in rows):
        raw, _ = builder.terms_of(state.get("match", "all"), rows)
        try:
            terms = segment_terms.validate(raw)
        except ValidationError as exc:
            live = {"error": translated(str(exc))}
        else:
            live = who_matches(session, terms)
    return render_template(
        "segments/form.html",
        segment=seg,
        state=state,
        rows=rows,
        live=live,
        fields=builder.FIELDS,
        ops=builder.OPS,
        widgets=builder.WIDGETS,
        opt_in=builder.OPT_IN,
        whatsapp=builder.WHATSAPP,
        spec=builder.spec(),
        blank_row=builder.blank_row(),
        choices=choices(session, rows),
        campaigns=used_by(session, seg.id) if seg else [],
        max_conditions=segment_terms.MAX_CONDITIONS,
    )


def choices(session: Session, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The builder's pickers: lists, sheet columns, campaigns (from `terms.FIELD_CHOICES`),
    and the countries and timezones the contacts have (from the newest ones, as the column
    names are found, plus any already chosen): a checkbox for each of the world's ~400
    timezones in every row would drown the page."""
    by_field = {f["field"]: f for f in segment_terms.FIELD_CHOICES(session)}
    recent = (
        select(Contact.country, Contact.timezone).order_by(Contact.id.desc()).limit(RECENT)
    ).subquery()
    seen = session.execute(select(recent.c.country, recent.c.timezone).distinct()).all()
    countries = {c for c, _ in seen if c} | {c for r in rows for c in r["countries"]}
    zones = {z for _, z in seen if z} | {z for r in rows for z in r["zones"]}
    return {
        "lists": [(o["value"], o["label"]) for o in by_field["list"].get("options", [])],
        "keys": [(o["value"], o["label"]) for o in by_field["attribute"].get("keys", [])],
        "countries": sorted(
            ((c, segment_terms.country_name(c)) for c in countries), key=lambda pair: pair[1]
        ),
        "zones": sorted(zones),
        "campaigns": _with_chosen(
            [(o["value"], o["label"]) for o in by_field["outcome"].get("campaigns", [])],
            session,
            rows,
        ),
    }


def _with_chosen(
    offered: list[tuple[int, str]], session: Session, rows: list[dict[str, Any]]
) -> list[tuple[int, str]]:
    """The recent campaigns offered, and any older one a row already names."""
    have = {i for i, _ in offered}
    wanted = {int(r["campaign"]) for r in rows if str(r["campaign"]).isdigit()} - have
    if wanted:
        older = session.execute(select(Campaign.id, Campaign.name).where(Campaign.id.in_(wanted)))
        offered = offered + [(i, n) for i, n in older]
    return offered


def who_matches(session: Session, terms: dict[str, Any]) -> dict[str, Any]:
    """The builder's panel: how many a campaign would reach (capped), the conditions in a
    sentence, and ten who match.

    - Those who match but are not on WhatsApp are counted apart ("not_on_whatsapp"): a
      launch leaves them out, yet "Not on WhatsApp: yes" is how a shop finds them to tidy
      up, so they are in the sample, not hidden behind a count of zero.
    """
    now = utcnow()
    n, capped = segments.count(session, terms, now, cap=COUNT_CAP)
    unreachable = (
        compile_terms.members(terms, now)
        .where(Contact.not_on_whatsapp_at.is_not(None))
        .limit(COUNT_CAP + 1)
        .subquery()
    )
    away = session.scalar(select(func.count()).select_from(unreachable)) or 0
    first = compile_terms.members(terms, now).order_by(Contact.id).limit(SAMPLE_SIZE)
    found: Any = session.execute(first)  # rows of (id, phone)
    ids: list[int] = [row[0] for row in found]
    people = {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(ids)))}
    text = count_text(n, capped)
    return {
        "count": n,
        "capped": capped,
        "text": text,
        # The words beside the number, and the line that jumps to it on a phone.
        "noun": ngettext("contact", "contacts", n),
        "matches": ngettext(
            "%(count)s contact matches now: see who",
            "%(count)s contacts match now: see who",
            n,
            count=text,
        ),
        "not_on_whatsapp": count_text(min(away, COUNT_CAP), away > COUNT_CAP) if away else "",
        "sentence": describe(session, terms),
        "sample": [sample_row(people[i]) for i in ids if i in people],
    }


def describe(session: Session, terms: dict[str, Any] | None) -> str:
    """A segment's conditions in one sentence, in the reader's language."""
    if not (terms or {}).get("conditions"):
        return _("Everyone you can message")
    return segment_terms.describe(terms or {}, session)


def count_text(n: int, capped: bool) -> str:
    return format_number(n) + ("+" if capped else "")


def sample_row(contact: Any) -> dict[str, str]:
    return {"name": contact.name or "", "phone": contact.phone, "country": contact.country or ""}


def used_by(session: Session, segment_id: int) -> list[Campaign]:
    """The campaigns whose audience is this segment, newest first (at most 20 shown)."""
    query = select(Campaign).where(Campaign.segment_id == segment_id).order_by(Campaign.id.desc())
    return list(session.scalars(query.limit(20)))
