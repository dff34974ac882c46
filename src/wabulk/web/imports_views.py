"""Importing a sheet through the page: upload, check the columns, watch it run, see results."""

from __future__ import annotations

import io

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response as WResponse

from .. import app_settings
from ..contacts import export, importer, lists
from ..contacts import service as contacts
from ..contacts.phones import country_choices
from ..contacts.sheets import SheetError
from ..errors import DomainError
from ..models import ImportKind, ImportStatus, Role
from . import i18n
from .helpers import apply_action, db_session, get_settings, optional_id
from .security import requires

bp = Blueprint("imports", __name__, url_prefix="/contacts/imports")


@bp.get("/new")
@requires(Role.OPERATOR)
def new() -> str:
    kind = "opt_outs" if request.args.get("kind") == "opt_outs" else "contacts"
    return render_template(
        "contacts/import_new.html", kind=kind, error=None, max_mb=get_settings().max_upload_mb
    )


@bp.post("/new")
@requires(Role.OPERATOR)
def upload() -> WResponse | tuple[str, int]:
    kind = ImportKind.OPT_OUTS if request.form.get("kind") == "opt_outs" else ImportKind.CONTACTS
    file = request.files.get("file")
    if file is None or not file.filename:
        return _upload_error(kind, _("Choose a file to upload."))
    session = db_session()
    try:
        imp = importer.save_upload(
            session, current_user, get_settings().instance_path, file.stream, file.filename, kind
        )
        session.commit()
    except SheetError as exc:
        session.rollback()
        return _upload_error(kind, str(exc))
    return redirect(url_for("imports.show", import_id=imp.id))


def _upload_error(kind: ImportKind, message: str) -> tuple[str, int]:
    return render_template(
        "contacts/import_new.html",
        kind=kind.value,
        error=message,
        max_mb=get_settings().max_upload_mb,
    ), 400


@bp.get("/<int:import_id>")
@requires(Role.VIEWER)
def show(import_id: int) -> str | tuple[str, int]:
    session = db_session()
    imp = importer.get_import(session, import_id)
    if imp.status == ImportStatus.DRAFT:
        return _render_mapping(imp)
    return render_template(
        "contacts/import_status.html",
        imp=imp,
        list_name=_list_name(imp),
        issues=session.scalars(importer.issues_of(imp.id).limit(20)).all(),
        landlines=contacts.import_landlines(session, imp.id),
    )


def _list_name(imp) -> str | None:  # type: ignore[no-untyped-def]
    if not imp.list_id:
        return None
    found = db_session().get(lists.ContactList, imp.list_id)
    return found.name if found else None


def _render_mapping(imp, error: str | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    session = db_session()
    country = request.form.get("default_country") or app_settings.default_country(session) or ""
    pv = importer.preview(imp, get_settings().instance_path, country or "US")
    mapping = pv.mapping
    if request.method == "POST":
        mapping = _mapping_from_form(pv.sheet.header)
    suggested = imp.original_name.rsplit(".", 1)[0][:120]
    same_name = lists.find_list(session, suggested)
    chosen = request.form.get("list_choice") or (str(same_name.id) if same_name else "new")
    return render_template(
        "contacts/import_mapping.html",
        imp=imp,
        pv=pv,
        mapping=mapping,
        duplicates=mapping.get("duplicates") or "first",
        error=error,
        country=country,
        regions=i18n.country_choices(country_choices()),
        list_choice=chosen,
        new_list=request.form.get("new_list") or suggested,
        lists=[row[0] for row in session.execute(lists.lists_with_counts())],
    ), status


def _mapping_from_form(header: list[str]) -> dict:  # type: ignore[type-arg]
    roles = {h: request.form.get(f"role_{i}", "attribute") for i, h in enumerate(header)}
    phone = next((h for h, r in roles.items() if r == "phone"), None)
    names = [h for h, r in roles.items() if r == "name"]
    attributes = {
        h: (request.form.get(f"key_{i}") or h)
        for i, h in enumerate(header)
        if roles[h] == "attribute"
    }
    # Checked (and refused with a message) by mapping.validate; bounded here for the page.
    duplicates = (request.form.get("duplicates") or "first")[:20]
    return {"phone": phone, "name": names, "attributes": attributes, "duplicates": duplicates}


@bp.post("/<int:import_id>/start")
@requires(Role.OPERATOR)
def start(import_id: int) -> WResponse | tuple[str, int]:
    session = db_session()
    settings = get_settings()
    imp = importer.get_import(session, import_id)
    if imp.status != ImportStatus.DRAFT:
        return redirect(url_for("imports.show", import_id=import_id))
    header = importer.columns_of(imp)
    mapping = _mapping_from_form(header)
    roles = [request.form.get(f"role_{i}") for i in range(len(header))]
    if roles.count("phone") > 1:
        return _render_mapping(imp, _("Mark only one column as the phone number."), 400)
    target = request.form.get("list_choice", "")
    try:
        importer.configure(
            session,
            current_user,
            imp,
            settings.instance_path,
            mapping,
            request.form.get("default_country", ""),
            list_id=optional_id(target),
            new_list_name=request.form.get("new_list", "") if target == "new" else None,
            opt_out_reason=request.form.get("reason"),
        )
        session.commit()
    except DomainError as exc:
        session.rollback()
        imp = importer.get_import(session, import_id)
        return _render_mapping(imp, str(exc), 400)
    return redirect(url_for("imports.show", import_id=import_id))


@bp.get("/<int:import_id>/status.json")
@requires(Role.VIEWER)
def status(import_id: int) -> Response:
    imp = importer.get_import(db_session(), import_id)
    total = max(imp.rows_total or 0, imp.rows_read, 1)
    return jsonify(
        {
            "status": imp.status.value,
            "rows_read": imp.rows_read,
            "rows_total": imp.rows_total,
            "percent": 100
            if imp.status == ImportStatus.COMPLETED
            else min(99, int(imp.rows_read * 100 / total)),
            "created": imp.created_count,
            "updated": imp.updated_count,
            "unchanged": imp.unchanged_count,
            "duplicates": imp.duplicate_count,
            "invalid": imp.invalid_count,
            "opted_out": imp.opted_out_count,
            "error": i18n.translated(imp.error),
        }
    )


@bp.get("/<int:import_id>/report.csv")
@requires(Role.VIEWER)
def report(import_id: int) -> Response:
    session = db_session()
    imp = importer.get_import(session, import_id)
    out = io.StringIO()
    out.write("\ufeff")
    export.write_import_report(session, imp, out, words=_, reasons=i18n.translated)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-{imp.id}-report.csv"'},
    )


@bp.post("/<int:import_id>/discard")
@requires(Role.OPERATOR)
def discard(import_id: int) -> WResponse:
    apply_action(
        lambda session: importer.discard(
            session,
            current_user,
            importer.get_import(session, import_id),
            get_settings().instance_path,
        ),
        _("Upload discarded; nothing was imported."),
        category="info",
    )
    return redirect(url_for("contacts.index"))
