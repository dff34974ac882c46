"""Contacts area: the table, one contact, lists, bulk actions and export."""

from __future__ import annotations

import io
import tempfile
from itertools import chain
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    after_this_request,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WResponse

from ..analytics.billing import category_label
from ..contacts import edit, export, lists
from ..contacts import service as contacts
from ..contacts.importer import recent_imports
from ..contacts.phone_rules import is_landline
from ..contacts.phones import LANDLINE
from ..errors import DomainError, ValidationError
from ..models import Contact, Role
from ..words import N_, said
from .form_state import FormState
from .forms import ListForm
from .helpers import apply_action, cursor_value, db_session, id_value, id_values
from .security import requires

bp = Blueprint("contacts", __name__, url_prefix="/contacts")
PAGE_SIZE = 50


def _filter_from_args() -> contacts.ContactFilter:
    status = request.args.get("status", "all")
    if status not in contacts.OPT_STATUSES:
        status = "all"
    return contacts.ContactFilter(
        q=request.args.get("q", "")[:200],
        list_id=request.args.get("list_id", type=cursor_value),
        status=status,
    )


@bp.get("/")
@requires(Role.VIEWER)
def index() -> str:
    return _render(ListForm())


def _render(form: ListForm, status: int = 200) -> str:
    session = db_session()
    f = _filter_from_args()
    before = request.args.get("before", type=cursor_value)
    rows, next_before = contacts.page(session, f, before, PAGE_SIZE)
    list_rows = session.execute(lists.lists_with_counts()).all()
    return render_template(
        "contacts/index.html",
        lists=list_rows,
        form=form,
        rows=rows,
        f=f,
        next_before=next_before,
        total=lists.count_contacts(session),
        matching=contacts.count(session, f) if (f.q or f.list_id or f.status != "all") else None,
        imports=session.scalars(recent_imports(5)).all(),
        first_page=request.args.get("before") is None,
        landline=is_landline,
        landline_note=LANDLINE,
    ), status  # type: ignore[return-value]


@bp.post("/lists")
@requires(Role.OPERATOR)
def create_list() -> WResponse | str:
    form = ListForm()
    if form.validate_on_submit():
        session = db_session()
        try:
            created = lists.create_list(
                session, current_user, form.name.data or "", form.description.data
            )
        except DomainError as exc:
            session.rollback()
            form.name.errors = [str(exc)]
        else:
            session.commit()
            flash(_("List %(name)s created.", name=repr(created.name)), "success")
            return redirect(url_for("contacts.index"))
    return _render(form, 400)


@bp.post("/lists/<int:list_id>/rename")
@requires(Role.OPERATOR)
def rename_list(list_id: int) -> WResponse:
    return _list_action(
        lambda s: lists.rename_list(s, current_user, list_id, request.form.get("name", "")),
        _("List renamed."),
    )


@bp.post("/lists/<int:list_id>/delete")
@requires(Role.OPERATOR)
def delete_list(list_id: int) -> WResponse:
    return _list_action(
        lambda s: lists.delete_list(s, current_user, list_id),
        _("List deleted; its contacts were kept."),
    )


def _list_action(action, message: str) -> WResponse:  # type: ignore[no-untyped-def]
    apply_action(action, message)
    return redirect(url_for("contacts.index"))


@bp.post("/bulk")
@requires(Role.OPERATOR)
def bulk() -> WResponse:
    action = request.form.get("action", "")
    ids = request.form.getlist("contact_ids", type=id_value)
    back = request.form.get("back") or url_for("contacts.index")
    if not back.startswith("/contacts"):
        back = url_for("contacts.index")

    def run(session: Session) -> str:
        if action == "add":
            n = contacts.add_to_list(session, current_user, _list_id(), ids)
            return _("Added %(n)s contact(s) to the list.", n=n)
        if action == "remove":
            n = contacts.remove_from_list(session, current_user, _list_id(), ids)
            return _("Removed %(n)s contact(s) from the list.", n=n)
        if action == "opt_out":
            n = contacts.opt_out(session, current_user, ids, request.form.get("reason", ""))
            if n == 0:
                return _("The selected contacts were already opted out; nothing changed.")
            return _("%(n)s contact(s) opted out; no campaign will message them.", n=n)
        raise DomainError(N_("Choose what to do with the selected contacts."))

    apply_action(run)
    return redirect(back)


def _list_id() -> int:
    value = request.form.get("list_id", type=id_value)
    if value is None:
        raise DomainError(N_("Choose a list."))
    return value


@bp.get("/<int:contact_id>")
@requires(Role.VIEWER)
def detail(contact_id: int) -> str:
    session = db_session()
    contact = contacts.get_contact(session, contact_id)
    member_of = contacts.contact_lists(session, contact_id)
    member_ids = {c.id for c in member_of}
    return render_template(
        "contacts/detail.html",
        contact=contact,
        member_of=member_of,
        other_lists=[
            row[0]
            for row in session.execute(lists.lists_with_counts())
            if row[0].id not in member_ids
        ],
        history=session.execute(contacts.contact_history(contact_id)).all(),
        landline=LANDLINE if is_landline(contact.phone) else None,
        **_messages_context(session, contact_id),
    )


# --- adding and editing one contact ----------------------------------------------------

EDIT_FIELDS = frozenset({"phone", "name", "fields", "list_ids"})
NEW_FIELD_ROWS = 3  # empty name/value rows for fields no contact has yet


@bp.route("/new", methods=["GET", "POST"])
@requires(Role.OPERATOR)
def new() -> WResponse | tuple[str, int]:
    if request.method == "GET":
        return _render_form(None, FormState({"list_ids": _preset_lists()}))
    state = _posted()
    session = db_session()
    try:
        contact = edit.create_contact(
            session,
            current_user,
            phone=state.get("phone"),
            name=state.get("name"),
            fields=_fields_of(state),
            list_ids=state.get("list_ids", []),
        )
    except DomainError as exc:
        session.rollback()
        return _failed(None, state, exc)
    session.commit()
    if is_landline(contact.phone):
        flash(
            _(
                "%(name)s added. %(phone)s is a landline: it may not reach a phone.",
                name=contact.name or contact.phone,
                phone=contact.phone,
            ),
            "success",
        )
    else:
        flash(_("%(name)s added.", name=contact.name or contact.phone), "success")
    return redirect(url_for("contacts.detail", contact_id=contact.id))


@bp.route("/<int:contact_id>/edit", methods=["GET", "POST"])
@requires(Role.OPERATOR)
def edit_form(contact_id: int) -> WResponse | tuple[str, int]:
    session = db_session()
    contact = contacts.get_contact(session, contact_id)
    if request.method == "GET":
        values = {
            "phone": contact.phone,
            "name": contact.name or "",
            "list_ids": [c.id for c in contacts.contact_lists(session, contact_id)],
            "fields": [(k, str(v)) for k, v in (contact.attributes or {}).items()],
        }
        return _render_form(contact, FormState(values))
    state = _posted()
    try:
        changes = edit.edit_contact(
            session,
            current_user,
            contact_id,
            phone=state.get("phone"),
            name=state.get("name"),
            fields=_fields_of(state),
            list_ids=state.get("list_ids", []),
        )
    except DomainError as exc:
        session.rollback()
        return _failed(contact_id, state, exc)
    session.commit()
    if changes:
        if is_landline(contact.phone):
            flash(
                _(
                    "Saved. %(phone)s is a landline: it may not reach a phone.",
                    phone=contact.phone,
                ),
                "success",
            )
        else:
            flash(_("Saved."), "success")
    else:
        flash(_("Nothing changed."), "info")
    return redirect(url_for("contacts.detail", contact_id=contact_id))


def _posted() -> FormState:
    """The form as typed, bounded before any work: kept whole to show again on an error."""
    names = request.form.getlist("field_name")[: edit.MAX_FIELDS + 1]
    values = request.form.getlist("field_value")[: edit.MAX_FIELDS + 1]
    list_ids = id_values(request.form.getlist("list_ids")[:1000])
    return FormState(
        {
            "phone": request.form.get("phone", "")[:200],
            "name": request.form.get("name", "")[:1000],
            "fields": [(n[:200], v[:5000]) for n, v in zip(names, values, strict=False)],
            "list_ids": list_ids,
        }
    )


def _fields_of(state: FormState) -> dict[str, str]:
    pairs = state.get("fields", [])
    if len(pairs) > edit.MAX_FIELDS:
        raise ValidationError(
            said("A contact can have at most %(n)s fields.", n=edit.MAX_FIELDS), field="fields"
        )
    fields: dict[str, str] = {}
    for name, value in pairs:
        if not name.strip() and value.strip():
            fields[""] = value  # refused by the service with a sentence saying so
        elif name.strip():
            fields[name] = value
    return fields


def _failed(contact_id: int | None, state: FormState, exc: DomainError) -> tuple[str, int]:
    session = db_session()
    state.fail(exc, EDIT_FIELDS)
    taken = getattr(exc, "contact_id", None)
    contact = contacts.get_contact(session, contact_id) if contact_id else None
    return _render_form(contact, state, taken=taken, status=409 if taken else 400)


def _render_form(
    contact: Contact | None, state: FormState, *, taken: int | None = None, status: int = 200
) -> tuple[str, int]:
    session = db_session()
    shown = [name for name, _ in state.get("fields", []) if name]
    # Every field the shop's contacts have, so a new contact gets the same boxes as imported
    # ones; bounded so the form stays a form.
    for key in contacts.placeholder_keys(session):
        if len(shown) >= edit.MAX_FIELDS - NEW_FIELD_ROWS:
            break
        if key not in shown:
            shown.append(key)
    typed = dict(state.get("fields", []))
    rows = [(name, typed.get(name, ""), True) for name in shown]
    rows += [(name, value, False) for name, value in state.get("fields", []) if not name]
    rows += [("", "", False)] * max(0, NEW_FIELD_ROWS - sum(1 for r in rows if not r[2]))
    return render_template(
        "contacts/form.html",
        contact=contact,
        state=state,
        field_rows=rows,
        all_lists=[row[0] for row in session.execute(lists.lists_with_counts())],
        taken=taken,
        limits={"fields": edit.MAX_FIELDS, "value": edit.MAX_VALUE},
    ), status


def _preset_lists() -> list[int]:
    """ "Add contact" from a list's view starts with that list ticked."""
    value = request.args.get("list_id", type=cursor_value)
    return [value] if value else []


def _messages_context(session: Session, contact_id: int) -> dict[str, object]:
    """The contact's campaign messages, a keyset page at a time (?messages_before=)."""
    before = request.args.get("messages_before", type=cursor_value)
    messages, older = contacts.message_history(session, contact_id, before, PAGE_SIZE)
    return {
        "messages": messages,
        "messages_older": older,
        "messages_first_page": before is None,
        "other_replies": session.scalars(contacts.other_replies(contact_id)).all(),
        "billed_label": category_label,
    }


@bp.post("/<int:contact_id>/opt-out")
@requires(Role.OPERATOR)
def opt_out(contact_id: int) -> WResponse:
    return _contact_action(
        contact_id,
        lambda s: contacts.opt_out(s, current_user, [contact_id], request.form.get("reason", "")),
        _("Opted out: no campaign will message this contact."),
    )


@bp.post("/<int:contact_id>/opt-in")
@requires(Role.OPERATOR)
def opt_in(contact_id: int) -> WResponse:
    return _contact_action(
        contact_id,
        lambda s: contacts.opt_in(s, current_user, contact_id, request.form.get("reason", "")),
        _("Opted back in."),
    )


@bp.post("/<int:contact_id>/whatsapp-check")
@requires(Role.OPERATOR)
def check_whatsapp_again(contact_id: int) -> WResponse:
    return _contact_action(
        contact_id,
        lambda s: contacts.clear_not_on_whatsapp(s, current_user, contact_id),
        _("The next campaign that includes this contact tries its number on WhatsApp again."),
    )


@bp.post("/<int:contact_id>/lists")
@requires(Role.OPERATOR)
def change_lists(contact_id: int) -> WResponse:
    remove = request.form.get("remove", type=id_value)
    return _contact_action(
        contact_id,
        lambda s: (
            contacts.remove_from_list(s, current_user, remove, [contact_id])
            if remove
            else contacts.add_to_list(s, current_user, _list_id(), [contact_id])
        ),
        _("Lists updated."),
    )


def _contact_action(contact_id: int, action, message: str) -> WResponse:  # type: ignore[no-untyped-def]
    session = db_session()
    contacts.get_contact(session, contact_id)
    apply_action(action, message)
    return redirect(url_for("contacts.detail", contact_id=contact_id))


@bp.get("/export.<fmt>")
@requires(Role.VIEWER)
def export_file(fmt: str) -> Response:
    if fmt not in {"csv", "xlsx"}:
        abort(404)
    session = db_session()
    f = _filter_from_args()
    name = f"contacts.{fmt}"
    if fmt == "csv":
        # Streamed: a million contacts never sit in memory. The BOM makes Excel read UTF-8.
        body = stream_with_context(chain(["\ufeff"], export.csv_chunks(session, f, words=_)))
        return Response(
            body,
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    tmp = Path(tempfile.mkstemp(suffix=".xlsx")[1])
    export.write_xlsx(session, f, tmp, words=_)

    @after_this_request
    def _cleanup(response: Response) -> Response:
        tmp.unlink(missing_ok=True)
        return response

    return send_file(
        tmp,
        as_attachment=True,
        download_name=name,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


@bp.get("/sample.<fmt>")
@requires(Role.VIEWER)
def sample(fmt: str) -> Response:
    if fmt == "csv":
        return Response(
            "\ufeff" + export.sample_csv(),
            mimetype="text/csv",
            headers={"Content-Disposition": 'attachment; filename="wabulk-sample.csv"'},
        )
    if fmt != "xlsx":
        abort(404)
    buf = io.BytesIO()
    export.write_sample_xlsx(buf)
    buf.seek(0)
    return send_file(
        buf,
        as_attachment=True,
        download_name="wabulk-sample.xlsx",
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
