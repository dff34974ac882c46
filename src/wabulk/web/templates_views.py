"""Message templates: the list, the editor with its live preview, attachments, delete."""

from __future__ import annotations

import random
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response as WResponse

from ..campaigns import samples
from ..campaigns import templates as service
from ..campaigns.fields import CONTACT_FIELDS
from ..campaigns.media import find_media, get_media, media_kind, media_path
from ..campaigns.queries import templates_with_attachments
from ..campaigns.render_budget import limit_for
from ..campaigns.templates import MAX_BODY
from ..campaigns.wa_format import to_json
from ..contacts import lists
from ..contacts.service import placeholder_keys
from ..errors import DomainError, NotFound
from ..models import Media, Role, Template
from ..words import said
from . import campaign_form, cloud_form, i18n
from .form_state import FormState, attachment, ids
from .helpers import apply_action, db_session, get_settings, id_value, id_values
from .security import requires

bp = Blueprint("templates", __name__, url_prefix="/templates")

FIELDS = frozenset({"name", "body", "media"})


@bp.get("")
@requires(Role.VIEWER)
def index() -> str:
    rows = db_session().execute(templates_with_attachments()).all()
    return render_template("templates/index.html", rows=rows)


@bp.get("/new")
@requires(Role.OPERATOR)
def new() -> str:
    return _render(None, FormState())


@bp.post("/new")
@requires(Role.OPERATOR)
def create() -> WResponse | tuple[str, int]:
    return _save(None)


@bp.get("/<int:template_id>")
@requires(Role.VIEWER)
def edit(template_id: int) -> str:
    session = db_session()
    template = service.get_template(session, template_id)
    state = FormState({"name": template.name, "body": template.body, "media_id": template.media_id})
    state.values.update(cloud_form.values_of(session, template))
    return _render(template, state)


@bp.post("/<int:template_id>")
@requires(Role.OPERATOR)
def update(template_id: int) -> WResponse | tuple[str, int]:
    service.get_template(db_session(), template_id)  # 404 before anything is stored
    return _save(template_id)


def _save(template_id: int | None) -> WResponse | tuple[str, int]:
    session = db_session()
    name = request.form.get("name", "")
    body = request.form.get("body", "")
    state = FormState({"name": name, "body": body, **cloud_form.values_from_request()})
    ok, media_id = attachment(session, state)
    if ok:
        try:
            cloud = cloud_form.choice(session, state.values)
            if template_id is None:
                saved = service.create_template(
                    session, current_user, name, body, media_id, cloud=cloud
                )
            else:
                saved = service.update_template(
                    session,
                    current_user,
                    template_id,
                    name,
                    body,
                    media_id,
                    cloud=cloud,
                    keep_cloud="cloud_template_id" not in request.form,
                )
        except DomainError as exc:
            session.rollback()
            state.fail(
                exc, FIELDS | cloud_form.error_fields(session, state.values), conflict="name"
            )
        else:
            session.commit()
            flash(_("Template %(name)s saved.", name=repr(saved.name)), "success")
            return redirect(url_for("templates.index"))
    template = service.get_template(session, template_id) if template_id else None
    return _render(template, state), 400


def _render(template: Template | None, state: FormState) -> str:
    session = db_session()
    attribute_keys = placeholder_keys(session)
    return render_template(
        "templates/edit.html",
        template=template,
        state=state,
        media=find_media(session, state.get("media_id", None)),
        lists=session.execute(lists.lists_with_counts()).all(),
        contact_fields=CONTACT_FIELDS,
        attribute_keys=attribute_keys,
        max_mb=get_settings().max_upload_mb,
        max_body=MAX_BODY,
        cloud=cloud_form.editor_context(session, state, attribute_keys),
    )


@bp.post("/<int:template_id>/delete")
@requires(Role.OPERATOR)
def delete(template_id: int) -> WResponse:
    deleted = apply_action(
        lambda s: _(
            "Template %(name)s deleted.",
            name=repr(service.delete_template(s, current_user, template_id)),
        )
    )
    if deleted:
        return redirect(url_for("templates.index"))
    return redirect(url_for("templates.edit", template_id=template_id))


@bp.post("/preview.json")
@requires(Role.VIEWER)  # reads only; a viewer looking at a template sees it rendered too
def preview() -> Response:
    """The body as the first recipients of the chosen lists would get it.

    - `template_id` previews a saved template's body instead of `body` (campaign wizard).
    - `media_id` (else the saved template's attachment): a photo or video carries the text
      as a caption, so the preview holds it to WhatsApp's caption length.
    - `contact_ids` (a search's choice) or `random=1` show those customers instead of the
      first ones of the lists; `segment_id` (the wizard's audience) its first recipients.
    """
    session = db_session()
    body = request.form.get("body", "")
    template_id = request.form.get("template_id", type=id_value)
    media_id = request.form.get("media_id", type=id_value)
    if template_id is not None:
        template = service.get_template(session, template_id)
        body, media_id = template.body, media_id or template.media_id
    if not body.strip():
        return jsonify(_preview_json(None))
    media = find_media(session, media_id)
    limit = limit_for(media.mime_type if media else None)
    list_ids = ids("list_ids")
    chosen = id_values(request.form.getlist("contact_ids"))[:SAMPLES] or None
    segment_id = request.form.get("segment_id", type=id_value)
    among = samples.segment_first_ids(session, segment_id, CHECKED) if segment_id else None
    if chosen is None and request.form.get("random") and among is not None:
        chosen = random.sample(among, min(SAMPLES, len(among))) or None  # of the segment's
    elif chosen is None and request.form.get("random"):
        chosen = samples.random_contacts(session, list_ids[:100], SAMPLES) or None
    pv = service.preview(
        session, body, list_ids, samples=SAMPLES, limit=limit, chosen=chosen, among=among
    )
    return jsonify(_preview_json(pv) | {"attachment": _attachment_json(media)})


SAMPLES = 3  # customers a preview shows
CHECKED = 500  # a segment's first recipients whose fields a preview checks (as for lists)


@bp.get("/sample-contacts.json")
@requires(Role.VIEWER)
def sample_contacts() -> Response:
    """A few customers whose name or number holds `q`, to preview the message for them."""
    query = request.args.get("q", "")[: samples.MAX_QUERY]
    found = samples.find_contacts(db_session(), query, limit=5)
    return jsonify({"contacts": [{"id": f.id, "name": f.name, "phone": f.phone} for f in found]})


def _attachment_json(media: Media | None) -> dict[str, Any] | None:
    """What the preview shows above the text: a photo itself, else the file's kind and name."""
    if media is None:
        return None
    return {
        "kind": media_kind(media.mime_type),
        "name": media.original_name,
        "size": media.size,
        "url": url_for("templates.attachment_file", media_id=media.id),
    }


@bp.post("/cloud-preview.json")
@requires(Role.VIEWER)  # reads only, like the body's preview
def cloud_preview() -> Response:
    """The chosen WhatsApp template filled in by the form's mapping for real contacts: the
    first of the chosen list, or the contact with the phone typed in `preview_phone`."""
    session = db_session()
    values = cloud_form.values_from_request()
    row = cloud_form.chosen_row(session, values)
    if row is None:
        return jsonify({"samples": [], "error": None, "empty": True})
    phone = cloud_form.phone_of(request.form.get("preview_phone", ""))
    result = service.cloud_preview(
        session, row.components, cloud_form.mapping_of(row, values), ids("list_ids"), phone
    )
    answer: dict[str, Any] = {
        "samples": result.samples,
        "error": i18n.translated(result.error),
        "empty": False,
    }
    if result.error and not result.samples:
        answer["skeleton"] = cloud_form.skeleton(row)
    return jsonify(answer)


@bp.get("/cloud-notes.json")
@requires(Role.VIEWER)
def cloud_notes() -> Response:
    """What the campaign wizard says about Cloud API senders for its current choices."""
    notes = campaign_form.cloud_notes(
        db_session(),
        request.args.get("template_id", type=id_value),
        id_values(request.args.getlist("sender_ids"))[:100],
        id_values(request.args.getlist("list_ids"))[:1000],
        request.args.get("media_id", type=id_value),
        # A segment audience (the wizard's "A segment"): counted instead of the lists.
        campaign_form.chosen_segment(
            {
                "audience": request.args.get("audience", "")[:20],
                "segment_id": request.args.get("segment_id", "")[:20],
            }
        ),
    )
    return jsonify(
        {"notes": [{"text": i18n.translated(n.text), "blocking": n.blocking} for n in notes]}
    )


# The body (at most MAX_BODY characters: 4 bytes each in UTF-8 and 3 per byte once
# percent-encoded), the chosen lists and the form's framing: far above any real preview.
PREVIEW_MAX_BYTES = MAX_BODY * 12 + 16 * 1024


@bp.url_value_preprocessor
def _preview_size(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """Refuse an oversized preview before anything reads its form.

    URL value preprocessors run before every `before_request` hook, and the CSRF check is
    one of those: it would otherwise parse whatever a signed-in viewer sent.
    """
    if endpoint == "templates.cloud_preview":
        _cloud_preview_size()
        return
    if endpoint != "templates.preview":
        return
    # A body without a declared length (none at all, or chunked) is held to the same bound
    # by max_content_length as it is read; refusing it here would answer an anonymous
    # visitor 413 instead of sending them to sign in.
    length = request.content_length
    if length is not None and length > PREVIEW_MAX_BYTES:
        sentence = _(
            "The message is too long to preview; WhatsApp allows %(max)s characters.",
            max=i18n.format_number(MAX_BODY),
        )
        empty = _preview_json(None) | {"error": sentence, "empty": False}
        abort(make_response(jsonify(empty), 413))
    request.max_content_length = PREVIEW_MAX_BYTES


# One WhatsApp template's boxes: Meta allows a few dozen variables, each value at most a
# message long (4,096 characters, up to 12 bytes each once encoded) in the worst case.
CLOUD_PREVIEW_MAX_BYTES = 1024 * 1024


def _cloud_preview_size() -> None:
    """The WhatsApp template preview's bound, the same way as the body's."""
    length = request.content_length
    if length is not None and length > CLOUD_PREVIEW_MAX_BYTES:
        sentence = _("The values are too long to preview; shorten the fixed texts.")
        abort(make_response(jsonify({"samples": [], "error": sentence, "empty": False}), 413))
    request.max_content_length = CLOUD_PREVIEW_MAX_BYTES


def _preview_json(pv: service.Preview | None) -> dict[str, Any]:
    if pv is None:
        return {"samples": [], "warnings": [], "error": None, "checked": 0, "empty": True}
    return {
        "samples": [
            {"phone": s.phone, "name": s.name, "text": s.text, "parts": to_json(s.text)}
            for s in pv.samples
        ],
        "warnings": [i18n.translated(w) for w in pv.warnings],
        "error": i18n.translated(pv.error),
        "checked": pv.checked,
        "placeholders": pv.placeholders,
        "empty": False,
    }


@bp.get("/attachments/<int:media_id>")
@requires(Role.VIEWER)
def attachment_file(media_id: int) -> Response:
    """An attachment as uploaded: images shown inline, everything else downloaded."""
    media = get_media(db_session(), media_id)
    path = media_path(get_settings().instance_path, media)
    if not path.is_file():
        raise NotFound(
            said(
                "The file of %(name)s is missing from the instance folder.",
                name=media.original_name,
            )
        )
    inline = media_kind(media.mime_type) == "image"
    return send_file(
        path,
        mimetype=media.mime_type,
        as_attachment=not inline,
        download_name=media.original_name,
    )
