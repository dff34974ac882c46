"""Senders: the table everyone can read; admins add, edit, disable, enable and link them.

- A new sender is WhatsApp Web (a phone linked by QR code), the Cloud API (Meta's official
  API, with an access token) or a dry run (a rehearsal that writes to a file). A new
  WhatsApp Web sender goes straight to its link page, a Cloud API one to its own page:
  the webhook address to paste into Meta, the connection check and the synced templates.
- Secrets typed into the form are never written back into a page, not even the form shown
  again after a mistake: only their last four characters, from the stored hints.
- The link page polls `link.json` every second (senders.js): the worker holding the
  sender's browser copies WhatsApp's QR into the row, so the page only ever reads the row.
- Screenshots of what WhatsApp Web showed when something went wrong are served by name
  only, and only names the channel itself writes.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from flask import (
    Blueprint,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response as WResponse

from ..channels.whatsapp_web import settings as web_settings
from ..channels.whatsapp_web.channel import screenshots_folder
from ..errors import DomainError, NotFound
from ..models import Channel, Role, Sender, SenderState, utcnow
from ..senders import cloud, cloud_input, linking, pace, warmup
from ..senders import service as senders
from ..senders.queries import senders_by_name
from ..senders.secrets import SECRET_FIELDS
from ..words import N_, said
from . import i18n
from .campaign_form import PACING_FIELDS, PACING_KEYS, sender_pace
from .form_state import FormState
from .helpers import apply_action, db_session, format_datetime, get_settings
from .security import requires
from .sender_words import state_words

bp = Blueprint("senders", __name__, url_prefix="/senders")


@bp.app_template_global("sender_state")
def sender_state(sender: Sender) -> str:
    """A sender's state badge words on every page (its channel decides them)."""
    return state_words(sender.state, sender.channel)


# English here, translated where the form shows them.
DRY_RUN_FIELDS = (
    ("latency_seconds", N_("Latency (s)"), N_("How long each simulated send takes.")),
    (
        "failure_rate",
        N_("Failure rate"),
        N_("0 to 1: 0.1 makes one number in ten fail, as if not on WhatsApp."),
    ),
    (
        "transient_rate",
        N_("Temporary failures"),
        N_("0 to 1: the share of attempts that fail and retry."),
    ),
)
# Meta's own words for a template's category and status and a number's throughput, as the
# sender page shows them (lower case, first letter capital): translated there.
META_WORDS = (
    N_("Marketing"),
    N_("Utility"),
    N_("Authentication"),
    N_("Pending"),
    N_("Rejected"),
    N_("Paused"),
    N_("Disabled"),
    N_("In appeal"),
    N_("Pending deletion"),
    N_("Deleted"),
    N_("Flagged"),
    N_("Limit exceeded"),
    N_("Standard"),
    N_("High"),
    N_("Not known"),
    # A quality rating inside an Event ("quality high").
    N_("high"),
    N_("medium"),
    N_("low"),
)
DRY_RUN_KEYS = tuple(key for key, _, _ in DRY_RUN_FIELDS)
WEB_KEYS = ("visible", "user_data_dir", "profile_directory", "read_replies", "hear_days")
CLOUD_KEYS = (*cloud_input.FIELDS, "max_per_second")
KNOWN = frozenset(
    {
        "name",
        "timezone",
        "channel",
        "worker_label",
        *PACING_KEYS,
        *DRY_RUN_KEYS,
        *WEB_KEYS,
        *CLOUD_KEYS,
    }
)
# The kinds that can be added, first the one a real campaign needs.
KINDS = (Channel.WHATSAPP_WEB, Channel.CLOUD_API, Channel.DRY_RUN)
# What the new form starts from for each kind: a real account needs the safe pacing, a
# rehearsal may go at full speed.
NEW_VALUES: dict[Channel, dict[str, str]] = {
    Channel.WHATSAPP_WEB: {
        **dict.fromkeys(PACING_KEYS, ""),
        **{key: str(value) for key, value in senders.WEB_PACING.items()},
    },
    # Meta paces the Cloud API itself: no delay, no daily cap (the messaging tier is the
    # budget), only a rate ceiling.
    Channel.CLOUD_API: {
        **dict.fromkeys(PACING_KEYS, ""),
        "max_per_second": f"{cloud_input.DEFAULT_RATE:g}",
    },
    Channel.DRY_RUN: dict.fromkeys(PACING_KEYS, ""),
}
# Exactly the names WhatsAppWebChannel._screenshot writes: a UTC stamp, the message id when
# there is one, and what went wrong. Anything else is never looked up on disk.
SCREENSHOT_NAME = re.compile(r"[0-9T]+(-m\d+)?-[a-z-]+\.png")


@lru_cache(maxsize=1)
def timezone_names() -> list[str]:
    return sorted(available_timezones() - {"localtime", "Factory"})


@bp.get("")
@requires(Role.VIEWER)
def index() -> str:
    session = db_session()
    rows = session.scalars(senders_by_name()).all()
    now = utcnow()
    warm = {s.id: warmup.status(session, s, now) for s in rows}
    return render_template(
        "senders/index.html",
        senders=rows,
        today={s.id: senders.sent_today(session, s) for s in rows},
        warm=warm,
        cap_today={s.id: _cap_today(s, warm[s.id]) for s in rows},
        skipped=warmup.skipped,
        dry_run=Channel.DRY_RUN,
        web=Channel.WHATSAPP_WEB,
        cloud_api=Channel.CLOUD_API,
        tier_words=tier_shown,
    )


@bp.get("/new")
@requires(Role.ADMIN)
def new() -> str:
    kind = _kind(request.args.get("channel"))
    zone = getattr(current_user, "timezone", None) or "UTC"
    values = {"timezone": zone, "channel": kind.value, "latency_seconds": "1", **NEW_VALUES[kind]}
    # A WhatsApp Web sender reads replies for three days unless told otherwise.
    values |= {"read_replies": "1", "hear_days": str(web_settings.HEAR_DAYS)}
    values["api_version"] = get_settings().cloud_api_version
    values["verify_token"] = cloud_input.new_verify_token()
    return _render(None, FormState(values))


@bp.post("/new")
@requires(Role.ADMIN)
def create() -> WResponse | tuple[str, int]:
    return _save(None)


@bp.get("/<int:sender_id>/edit")
@requires(Role.ADMIN)
def edit(sender_id: int) -> str:
    sender = senders.get_sender(db_session(), sender_id)
    settings = sender.settings or {}
    values: dict[str, Any] = {
        "name": sender.name,
        "timezone": sender.timezone,
        "channel": sender.channel.value,
        "worker_label": sender.worker_label or "",
        **sender_pace(sender),
    }
    if sender.channel == Channel.WHATSAPP_WEB:
        values["visible"] = "1" if settings.get("visible") else ""
        values["user_data_dir"] = _text(settings.get("user_data_dir"))
        values["profile_directory"] = _text(settings.get("profile_directory"))
        values["read_replies"] = "1" if settings.get("read_replies", True) else ""
        values["hear_days"] = _text(settings.get("hear_days", web_settings.HEAR_DAYS))
    elif sender.channel == Channel.CLOUD_API:
        values.update({key: _text(settings.get(key)) for key in cloud_input.PLAIN_FIELDS})
        values["use_marketing_messages"] = "1" if settings.get("use_marketing_messages") else ""
        values["max_per_second"] = _text(sender.max_per_second)
    else:
        values.update({key: _text(settings.get(key)) for key in DRY_RUN_KEYS})
    return _render(sender, FormState(values))


@bp.post("/<int:sender_id>/edit")
@requires(Role.ADMIN)
def update(sender_id: int) -> WResponse | tuple[str, int]:
    senders.get_sender(db_session(), sender_id)  # 404 before anything else
    return _save(sender_id)


def _save(sender_id: int | None) -> WResponse | tuple[str, int]:
    session = db_session()
    form = request.form
    existing = senders.get_sender(session, sender_id) if sender_id else None
    # The kind is chosen once, when adding; an edit keeps the sender's own. A post without
    # one adds a dry run, as SenderInput does: never a real account by accident.
    kind = existing.channel.value if existing else form.get("channel") or Channel.DRY_RUN.value
    state = FormState({key: form.get(key, "").strip() for key in KNOWN - {"channel"}})
    state.values["name"] = form.get("name", "")
    state.values["channel"] = kind
    state.values["visible"] = "1" if form.get("visible") else ""
    state.values["read_replies"] = "1" if form.get("read_replies") else ""
    state.values["use_marketing_messages"] = "1" if form.get("use_marketing_messages") else ""
    max_per_second = None
    if kind == Channel.WHATSAPP_WEB:
        settings: dict[str, Any] = {key: state.values[key] for key in WEB_KEYS}
        settings["visible"] = bool(settings["visible"])
        settings["read_replies"] = bool(settings["read_replies"])
    elif kind == Channel.CLOUD_API:
        settings = {key: state.values[key] for key in cloud_input.FIELDS}
        settings["use_marketing_messages"] = bool(settings["use_marketing_messages"])
        max_per_second = state.values["max_per_second"]
    else:
        settings = {key: state.values[key] for key in DRY_RUN_KEYS}
    data = senders.SenderInput(
        name=state.values["name"],
        channel=kind,
        timezone=state.values["timezone"],
        pacing={key: state.values[key] for key in PACING_KEYS},
        settings=settings,
        max_per_second=max_per_second,
        worker_label=state.values["worker_label"],
    )
    config = get_settings()
    keys = senders.Keys(config.secret_key, config.cloud_api_version)
    try:
        if sender_id is None:
            saved = senders.create_sender(session, current_user, data, keys)
        else:
            saved = senders.update_sender(session, current_user, sender_id, data, keys)
    except DomainError as exc:
        session.rollback()
        state.fail(exc, KNOWN, conflict="name")  # the form reads each box's error back
        for key in SECRET_FIELDS:  # typed secrets are never sent back to a browser
            state.values[key] = ""
        if sender_id is None:
            state.values["verify_token"] = cloud_input.new_verify_token()
        sender = senders.get_sender(session, sender_id) if sender_id else None
        return _render(sender, state), 400
    session.commit()
    if sender_id is None and saved.channel == Channel.WHATSAPP_WEB:
        flash(
            _("Sender %(name)s added. Link it to its phone now.", name=repr(saved.name)), "success"
        )
        return redirect(url_for("senders.link", sender_id=saved.id))
    if saved.channel == Channel.CLOUD_API:
        check = saved.state == SenderState.NEEDS_LINK
        if sender_id is None:
            done = (
                _(
                    "Sender %(name)s added. Check the connection to start sending.",
                    name=repr(saved.name),
                )
                if check
                else _("Sender %(name)s added.", name=repr(saved.name))
            )
        else:
            done = (
                _(
                    "Sender %(name)s saved. Check the connection to start sending.",
                    name=repr(saved.name),
                )
                if check
                else _("Sender %(name)s saved.", name=repr(saved.name))
            )
        flash(done, "success")
        return redirect(url_for("senders.show", sender_id=saved.id))
    flash(_("Sender %(name)s saved.", name=repr(saved.name)), "success")
    return redirect(url_for("senders.index"))


def _kind(raw: str | None) -> Channel:
    """The kind a new-sender form is about; an unknown one is left to the service to refuse."""
    for kind in KINDS:
        if raw == kind.value:
            return kind
    return KINDS[0]


def _render(sender: Sender | None, state: FormState) -> str:
    return render_template(
        "senders/form.html",
        sender=sender,
        state=state,
        zones=timezone_names(),
        pacing_fields=PACING_FIELDS,
        dry_run_fields=DRY_RUN_FIELDS,
        kinds=KINDS,
        new_values={kind.value: values for kind, values in NEW_VALUES.items()},
        show_dry_run=sender is None or sender.channel == Channel.DRY_RUN,
        show_web=sender is None or sender.channel == Channel.WHATSAPP_WEB,
        show_cloud=sender is None or sender.channel == Channel.CLOUD_API,
        hints=(sender.settings or {}).get("hints", {}) if sender else {},
        ttl_range=cloud_input.TTL_RANGE,
    )


@bp.post("/<int:sender_id>/disable")
@requires(Role.ADMIN)
def disable(sender_id: int) -> WResponse:
    apply_action(
        lambda s: senders.set_enabled(s, current_user, sender_id, False),
        _(
            "Sender disabled: no campaign sends through it until it is enabled again. A running "
            "campaign with no other sender pauses, saying why."
        ),
        category="info",
    )
    return redirect(url_for("senders.index"))


@bp.post("/<int:sender_id>/enable")
@requires(Role.ADMIN)
def enable(sender_id: int) -> WResponse:
    apply_action(lambda s: senders.set_enabled(s, current_user, sender_id, True), _("Enabled."))
    return redirect(url_for("senders.index"))


def _cap_today(sender: Sender, warm: warmup.Warmup | None) -> int | None:
    """Today's daily cap as the lane applies it: the warm-up's when lower."""
    if warm is None or warmup.skipped(sender):
        return sender.daily_cap
    return warm.cap if sender.daily_cap is None else min(sender.daily_cap, warm.cap)


@bp.post("/<int:sender_id>/warmup")
@requires(Role.ADMIN)
def set_warmup(sender_id: int) -> WResponse:
    """Skip a new number's warm-up (skip=1), or turn it back on (skip=0)."""
    skip = request.form.get("skip") == "1"
    apply_action(
        lambda s: senders.set_warmup(s, current_user, sender_id, skip),
        _("Warm-up skipped: this number may now send up to its full daily cap.")
        if skip
        else _("Warm-up on again: today's cap follows the day this number has reached."),
        category="warning" if skip else "success",
    )
    return redirect(url_for("senders.index"))


@bp.post("/<int:sender_id>/resume")
@requires(Role.ADMIN)
def resume(sender_id: int) -> WResponse:
    apply_action(
        lambda s: senders.resume(s, current_user, sender_id),
        _("Resumed: campaigns send through this sender again."),
    )
    sender = senders.get_sender(db_session(), sender_id)
    if sender.channel == Channel.CLOUD_API:
        return redirect(url_for("senders.show", sender_id=sender_id))
    return redirect(url_for("senders.index"))


# --- a Cloud API sender's page --------------------------------------------------------


def _cloud_sender(sender_id: int) -> Sender:
    sender = senders.get_sender(db_session(), sender_id)
    if sender.channel != Channel.CLOUD_API:
        raise NotFound(said("%(name)s is not a Cloud API sender.", name=sender.name))
    return sender


def tier_shown(health: dict[str, Any] | None) -> str:
    """The messaging-limit tier in the reader's words and numbers ("up to 2,000 customers a
    day" in English, as `cloud.tier_words` says it for the Activity log)."""
    tier = str((health or {}).get("messaging_tier") or "").upper()
    limit = pace.TIERS.get(tier)
    if limit is None:
        return i18n.translated(cloud.tier_words(health)) or ""
    return _("up to %(limit)s customers a day", limit=i18n.format_number(limit))


def webhook_url(sender: Sender) -> str:
    """The address to paste into Meta's app settings (Webhooks → Callback URL)."""
    base = get_settings().public_url or request.host_url
    return f"{base.rstrip('/')}/webhooks/whatsapp/{sender.id}"


@bp.get("/<int:sender_id>")
@requires(Role.VIEWER)
def show(sender_id: int) -> str:
    sender = _cloud_sender(sender_id)
    session = db_session()
    health = sender.health or {}
    return render_template(
        "senders/cloud.html",
        sender=sender,
        health=health,
        hints=(sender.settings or {}).get("hints", {}),
        webhook_url=webhook_url(sender),
        quality=cloud.quality_words(health),
        tier=tier_shown(health),
        templates=session.scalars(cloud.templates_of(sender.id)).all(),
        removed=cloud.REMOVED,
        stamp=_stamp,
    )


@bp.post("/<int:sender_id>/check")
@requires(Role.ADMIN)
def check(sender_id: int) -> WResponse:
    """Ask Meta about the account; the outcome (either way) is kept and shown."""
    sender = _cloud_sender(sender_id)
    config = get_settings()
    result = cloud.check_connection(
        db_session(), sender, config.secret_key, config.channel_options(), current_user
    )
    db_session().commit()
    if result.ok:
        flash(_("Connected: Meta answered for this number. The details are below."), "success")
    else:
        # In English: the page's flashes read it, and Meta's problem inside it, back once.
        flash(said("The connection check failed: %(problem)s", problem=result.problem), "danger")
    return redirect(url_for("senders.show", sender_id=sender_id))


@bp.post("/<int:sender_id>/sync-templates")
@requires(Role.OPERATOR)
def sync_templates(sender_id: int) -> WResponse:
    sender = _cloud_sender(sender_id)
    config = get_settings()
    result = cloud.sync_templates(
        db_session(), sender, config.secret_key, config.channel_options(), current_user
    )
    db_session().commit()
    flash(result.sentence(), "success" if result.ok else "danger")  # read back by the page
    return redirect(url_for("senders.show", sender_id=sender_id) + "#templates")


def _stamp(value: object) -> str:
    """An ISO time kept in `health`, in the user's timezone; "—" when never."""
    if not value:
        return "—"
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return "—"
    return format_datetime(when)


# --- linking a WhatsApp Web sender ------------------------------------------------------


def _web_sender(sender_id: int) -> Sender:
    sender = senders.get_sender(db_session(), sender_id)
    if sender.channel != Channel.WHATSAPP_WEB:
        raise NotFound(
            said("%(name)s is not a WhatsApp Web sender: it has nothing to link.", name=sender.name)
        )
    return sender


@bp.get("/<int:sender_id>/link")
@requires(Role.ADMIN)
def link(sender_id: int) -> str:
    sender = _web_sender(sender_id)
    return render_template(
        "senders/link.html",
        sender=sender,
        view=_link_view(sender),
        # Seen before: the page was opened after a request ran out, not before any.
        expired=sender.link_requested_until is not None,
        worker=get_settings().worker,
    )


@bp.get("/<int:sender_id>/link.json")
@requires(Role.ADMIN)
def link_json(sender_id: int) -> Response:
    """Polled every second by the link page: what the worker last wrote to the row.

    - Never cached (a QR is one-time and short-lived): security.py sends no-store on every
      page and JSON answer.
    """
    return jsonify(_link_view(_web_sender(sender_id)))


def _link_view(sender: Sender) -> dict[str, object]:
    """The link page's view, its sentences in the reader's language (the browser's own
    error inside "detail" stays as it was)."""
    view = linking.link_view(sender)
    for key in ("reason", "detail"):
        text = view.get(key)
        view[key] = i18n.translated(text) if isinstance(text, str) else text
    return view


@bp.post("/<int:sender_id>/link")
@requires(Role.ADMIN)
def request_link(sender_id: int) -> WResponse:
    sender = _web_sender(sender_id)
    takeover = request.form.get("takeover") == "1"
    # Present (even empty) only in the "link with phone number" form.
    phone = request.form.get("phone")
    if takeover:
        done = _("Taking WhatsApp back from the other browser…")
    elif phone is not None:
        done = _("Asking WhatsApp for a code: type it on the phone when it appears below.")
    else:
        done = _("Opening the browser: scan the QR code below when it appears.")
    apply_action(
        lambda s: linking.request_link(s, current_user, sender, takeover=takeover, phone=phone),
        done,
        category="info",
    )
    return redirect(url_for("senders.link", sender_id=sender_id))


@bp.get("/screenshots/<name>")
@requires(Role.OPERATOR)
def screenshot(name: str) -> Response:
    """What WhatsApp Web showed when a send went wrong (linked from the campaign log)."""
    if not SCREENSHOT_NAME.fullmatch(name):
        raise NotFound(N_("There is no such screenshot."))
    folder = screenshots_folder(get_settings().instance_path)
    return send_from_directory(folder, name, mimetype="image/png")


def _text(value: object) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)
