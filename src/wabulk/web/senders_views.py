"""Senders: the table everyone can read; admins add, edit, disable and enable dry-run senders."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as WResponse

from ..errors import DomainError
from ..models import Channel, Role, Sender
from ..senders import service as senders
from ..senders.queries import senders_by_name
from .campaign_form import PACING_FIELDS, PACING_KEYS, sender_pace
from .form_state import FormState
from .helpers import apply_action, db_session
from .security import requires

bp = Blueprint("senders", __name__, url_prefix="/senders")

DRY_RUN_FIELDS = (
    ("latency_seconds", "Latency (s)", "How long each simulated send takes."),
    (
        "failure_rate",
        "Failure rate",
        "0 to 1: 0.1 makes one number in ten fail, as if not on WhatsApp.",
    ),
    ("transient_rate", "Temporary failures", "0 to 1: the share of attempts that fail and retry."),
)
DRY_RUN_KEYS = tuple(key for key, _, _ in DRY_RUN_FIELDS)
KNOWN = frozenset({"name", "timezone", "channel", *PACING_KEYS, *DRY_RUN_KEYS})


@lru_cache(maxsize=1)
def timezone_names() -> list[str]:
    return sorted(available_timezones() - {"localtime", "Factory"})


@bp.get("")
@requires(Role.VIEWER)
def index() -> str:
    session = db_session()
    rows = session.scalars(senders_by_name()).all()
    return render_template(
        "senders/index.html",
        senders=rows,
        today={s.id: senders.sent_today(session, s) for s in rows},
        dry_run=Channel.DRY_RUN,
    )


@bp.get("/new")
@requires(Role.ADMIN)
def new() -> str:
    zone = getattr(current_user, "timezone", None) or "UTC"
    return _render(None, FormState({"timezone": zone, "latency_seconds": "1"}))


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
        **sender_pace(sender),
        **{key: _text(settings.get(key)) for key in DRY_RUN_KEYS},
    }
    return _render(sender, FormState(values))


@bp.post("/<int:sender_id>/edit")
@requires(Role.ADMIN)
def update(sender_id: int) -> WResponse | tuple[str, int]:
    senders.get_sender(db_session(), sender_id)  # 404 before anything else
    return _save(sender_id)


def _save(sender_id: int | None) -> WResponse | tuple[str, int]:
    session = db_session()
    form = request.form
    state = FormState({key: form.get(key, "").strip() for key in KNOWN - {"channel"}})
    state.values["name"] = form.get("name", "")
    data = senders.SenderInput(
        name=state.values["name"],
        timezone=state.values["timezone"],
        pacing={key: state.values[key] for key in PACING_KEYS},
        settings={key: state.values[key] for key in DRY_RUN_KEYS},
    )
    try:
        if sender_id is None:
            saved = senders.create_sender(session, current_user, data)
        else:
            saved = senders.update_sender(session, current_user, sender_id, data)
    except DomainError as exc:
        session.rollback()
        state.fail(exc, KNOWN, conflict="name")
        sender = senders.get_sender(session, sender_id) if sender_id else None
        return _render(sender, state), 400
    session.commit()
    flash(f"Sender {saved.name!r} saved.", "success")
    return redirect(url_for("senders.index"))


def _render(sender: Sender | None, state: FormState) -> str:
    return render_template(
        "senders/form.html",
        sender=sender,
        state=state,
        zones=timezone_names(),
        pacing_fields=PACING_FIELDS,
        dry_run_fields=DRY_RUN_FIELDS,
        is_dry_run=sender is None or sender.channel == Channel.DRY_RUN,
    )


@bp.post("/<int:sender_id>/disable")
@requires(Role.ADMIN)
def disable(sender_id: int) -> WResponse:
    apply_action(
        lambda s: senders.set_enabled(s, current_user, sender_id, False),
        "Sender disabled: no campaign sends through it until it is enabled again. A running "
        "campaign with no other sender pauses, saying why.",
        category="info",
    )
    return redirect(url_for("senders.index"))


@bp.post("/<int:sender_id>/enable")
@requires(Role.ADMIN)
def enable(sender_id: int) -> WResponse:
    apply_action(lambda s: senders.set_enabled(s, current_user, sender_id, True), "Enabled.")
    return redirect(url_for("senders.index"))


def _text(value: object) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)
