"""The campaign wizard's form: to and from a DraftInput, and what the page shows beside it.

- The schedule is typed in the user's timezone (their setting, else UTC) and stored in UTC.
- Pacing boxes left blank mean "the sender's own"; their placeholders show those defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, time
from typing import Any

from flask import request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from ..campaigns import audience, cloud_launch, outlook
from ..campaigns.media import find_media
from ..campaigns.queries import templates_with_attachments
from ..campaigns.service import DEFAULT_RETRY_SECONDS, DraftInput, pace_overrides, retry_seconds
from ..contacts import lists
from ..contacts.service import placeholder_keys
from ..errors import ValidationError
from ..models import Campaign, Channel, Media, Segment, Sender, SenderState, Template, utcnow
from ..segments import service as segments
from ..segments.terms import describe
from ..senders.pace import validate_overrides
from ..senders.queries import senders_by_name
from ..words import N_
from . import i18n
from .form_state import FormState, ids
from .helpers import get_settings, id_values, optional_id, user_zone

# (form box, label) in the order the page shows them.
PACING_FIELDS = (
    ("min_delay_seconds", _l("Shortest delay (s)")),
    ("max_delay_seconds", _l("Longest delay (s)")),
    ("daily_cap", _l("Daily cap")),
    ("active_from", _l("Active from")),
    ("active_until", _l("Active until")),
    ("break_every", _l("Break every (msgs)")),
    ("break_seconds", _l("Break length (s)")),
)
PACING_KEYS = tuple(key for key, _ in PACING_FIELDS)
KNOWN = frozenset(
    {
        "name",
        "list_ids",
        "segment_id",
        "sender_ids",
        "template_id",
        "body",
        "media",
        "scheduled_at",
        "ends_at",
        "max_attempts",
        "retry_seconds",
        *PACING_KEYS,
    }
)
CONTACT_FIELDS = ("name", "first_name", "phone", "country")
# At most this many lists or senders are read from the plan's query string.
MAX_CHOSEN = 200
# What a start or finish-by time that is not a date and time is told.
START_WRONG = N_("The start time must be a date and time like 2025-05-01 09:30.")
FINISH_WRONG = N_("The finish-by time must be a date and time like 2025-05-01 09:30.")
# The service's field names → the boxes on this form.
RENAME = {"lists": "list_ids", "senders": "sender_ids", "media_id": "media"}


def new_values(
    template_id: int | None = None, segment_id: int | None = None, name: str = ""
) -> dict[str, Any]:
    return {
        "name": name,
        "audience": "segment" if segment_id else "lists",
        "segment_id": str(segment_id or ""),
        "list_ids": [],
        "sender_ids": [],
        "template_id": str(template_id or ""),
        "body": "",
        "media_id": None,
        "schedule": "now",
        "scheduled_at": "",
        "ends_at": "",
        "max_attempts": "3",
        "retry_seconds": str(DEFAULT_RETRY_SECONDS),
        "text_before_document": False,
        **dict.fromkeys(PACING_KEYS, ""),
    }


def values_of(campaign: Campaign) -> dict[str, Any]:
    """A draft as the form shows it."""
    overrides = pace_overrides(campaign)
    local = campaign.scheduled_at.astimezone(user_zone()) if campaign.scheduled_at else None
    ends = campaign.ends_at.astimezone(user_zone()) if campaign.ends_at else None
    return {
        "name": campaign.name,
        "audience": "segment" if campaign.segment_id else "lists",
        "segment_id": str(campaign.segment_id or ""),
        "list_ids": [lst.id for lst in campaign.lists],
        "sender_ids": [s.id for s in campaign.senders],
        "template_id": str(campaign.template_id or ""),
        "body": campaign.body if campaign.template_id is None else "",
        "media_id": campaign.media_id,
        "schedule": "later" if local else "now",
        "scheduled_at": local.strftime("%Y-%m-%dT%H:%M") if local else "",
        "ends_at": ends.strftime("%Y-%m-%dT%H:%M") if ends else "",
        "max_attempts": str(campaign.max_attempts),
        "retry_seconds": str(retry_seconds(campaign)),
        "text_before_document": campaign.text_before_document,
        **{key: _text(overrides.get(key)) for key in PACING_KEYS},
    }


def values_from_request() -> dict[str, Any]:
    """What the user sent, kept as typed so an error page shows it again."""
    form = request.form
    return {
        "name": form.get("name", ""),
        "audience": "segment" if form.get("audience") == "segment" else "lists",
        "segment_id": form.get("segment_id", "").strip()[:20],
        "list_ids": ids("list_ids"),
        "sender_ids": ids("sender_ids"),
        "template_id": form.get("template_id", ""),
        "body": form.get("body", ""),
        "schedule": "later" if form.get("schedule") == "later" else "now",
        "scheduled_at": form.get("scheduled_at", "").strip(),
        "ends_at": form.get("ends_at", "").strip(),
        "max_attempts": form.get("max_attempts", "").strip(),
        "retry_seconds": form.get("retry_seconds", "").strip(),
        "text_before_document": form.get("text_before_document") == "1",
        **{key: form.get(key, "").strip() for key in PACING_KEYS},
    }


def draft_input(values: dict[str, Any], media_id: int | None) -> DraftInput:
    """The form as the service takes it; a ValidationError naming the box if a box is malformed."""
    scheduled_at = None
    if values["schedule"] == "later":
        if not values["scheduled_at"]:
            raise ValidationError(
                N_("Choose the date and time to start, or “As soon as I launch”."),
                field="scheduled_at",
            )
        scheduled_at = local_time(values["scheduled_at"], "scheduled_at", START_WRONG)
    ends_at = None
    if values.get("ends_at"):
        ends_at = local_time(values["ends_at"], "ends_at", FINISH_WRONG)
    template = values["template_id"]
    form = {k: str(values[k]) for k in ("max_attempts", "retry_seconds")}
    segment_id = chosen_segment(values)
    if values.get("audience") == "segment" and segment_id is None:
        raise ValidationError(N_("Choose the segment to send to."), field="segment_id")
    return DraftInput(
        name=values["name"],
        list_ids=[] if segment_id else values["list_ids"],
        segment_id=segment_id,
        sender_ids=values["sender_ids"],
        template_id=optional_id(template),
        body=values["body"],
        media_id=media_id,
        scheduled_at=scheduled_at,
        ends_at=ends_at,
        pacing={key: values[key] for key in PACING_KEYS},
        max_attempts=_required_int(
            form,
            "max_attempts",
            N_("Attempts is needed."),
            N_("Attempts must be a whole number."),
        ),
        retry_seconds=_required_int(
            form,
            "retry_seconds",
            N_("The first retry wait is needed."),
            N_("The first retry wait must be a whole number."),
        ),
        text_before_document=bool(values["text_before_document"]),
    )


def sentence(session: Session, terms: dict[str, Any] | None) -> str:
    """A segment's conditions in one sentence for pages."""
    if not (terms or {}).get("conditions"):
        return _("Everyone you can message")
    return describe(terms or {}, session)


def chosen_segment(values: Mapping[str, Any]) -> int | None:
    """The segment the campaign goes to when "A segment" is chosen (None: its lists)."""
    if values.get("audience") != "segment":
        return None
    return optional_id(values.get("segment_id"))


def segment_recipients(session: Session, segment_id: int | None) -> tuple[int, bool]:
    """(recipients, capped) of a segment as a launch now would reach them; (0, False) for
    none or one that is gone."""
    seg = session.get(Segment, segment_id) if segment_id is not None else None
    if seg is None:
        return 0, False
    return segments.count(session, seg.terms)


def segment_terms(session: Session, segment_id: int | None) -> dict[str, Any] | None:
    """The chosen segment's conditions (None: no segment, or one that is gone)."""
    seg = session.get(Segment, segment_id) if segment_id is not None else None
    return dict(seg.terms or {}) if seg is not None else None


def segment_opted_out(session: Session, segment_id: int | None) -> int:
    """Contacts matching the segment who opted out (left out; said beside the count)."""
    seg = session.get(Segment, segment_id) if segment_id is not None else None
    return segments.opted_out_count(session, seg.terms) if seg is not None else 0


def segment_choices(session: Session) -> list[dict[str, Any]]:
    """The saved segments the wizard offers, each with its conditions in a sentence."""
    return [
        {"id": seg.id, "name": seg.name, "sentence": sentence(session, seg.terms)}
        for seg in segments.list_all(session)
    ]


def local_time(text: str, name: str, wrong: str) -> datetime:
    """A date and time typed in the user's timezone, as an aware datetime; a ValidationError
    saying `wrong` (START_WRONG, FINISH_WRONG) if it is not one."""
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(wrong, field=name) from None
    return local.replace(tzinfo=user_zone()) if local.tzinfo is None else local


def _required_int(form: dict[str, str], name: str, needed: str, not_whole: str) -> int:
    raw = form.get(name, "").strip()
    if not raw:
        raise ValidationError(needed, field=name)
    try:
        return int(raw)
    except ValueError:
        raise ValidationError(not_whole, field=name) from None


def wizard_context(session: Session, state: FormState) -> dict[str, Any]:
    """Everything the wizard page shows around the user's values.

    - The only sender that can send is ticked when the page is opened with none ticked
      (never when a posted form comes back: the user's choice stands).
    """
    senders = list(session.scalars(senders_by_name()))
    usable = [s for s in senders if s.state == SenderState.LINKED]
    if len(usable) == 1 and not state.get("sender_ids") and request.method == "GET":
        state.values["sender_ids"] = [usable[0].id]
    chosen = [s for s in senders if s.id in state.get("sender_ids", [])]
    plan = wizard_plan(session, state.values, chosen)
    segment_id = chosen_segment(state.values)
    list_ids = [] if segment_id else state.get("list_ids", [])
    return {
        "state": state,
        "audience": (
            plan["recipients"],
            segment_opted_out(session, segment_id)
            if segment_id
            else audience.opted_out_count(session, list_ids),
        ),
        "segments": segment_choices(session),
        "segment_capped": plan.get("capped", False),
        "contact_fields": CONTACT_FIELDS,
        "attribute_keys": placeholder_keys(session),
        "lists": session.execute(lists.lists_with_counts()).all(),
        "senders": senders,
        "templates": session.execute(templates_with_attachments()).all(),
        "media": find_media(session, state.get("media_id", None)),
        "pacing_fields": PACING_FIELDS,
        "pacing_defaults": pacing_placeholders(chosen),
        "sender_pace": {s.id: sender_pace(s) for s in senders},
        "zone": user_zone().key,
        "max_mb": get_settings().max_upload_mb,
        "linked": SenderState.LINKED,
        "has_cloud": any(s.channel == Channel.CLOUD_API for s in senders),
        "outlook": plan["warnings"],
        "plan": plan,
        "cloud_notes": cloud_notes(
            session,
            optional_id(state.get("template_id")),
            [s.id for s in chosen],
            list_ids,
            state.get("media_id", None),
            segment_id,
        ),
    }


def plan_values(args: Mapping[str, Any]) -> dict[str, Any]:
    """The boxes the wizard's plan reads, from its query string, each bounded (the plan
    endpoint answers while the user types)."""
    getlist: Callable[[str], list[str]] = getattr(args, "getlist", lambda _name: [])
    return {
        "list_ids": id_values(getlist("list_ids")[:MAX_CHOSEN]),
        "audience": "segment" if args.get("audience") == "segment" else "lists",
        "segment_id": str(args.get("segment_id", "")).strip()[:20],
        "sender_ids": id_values(getlist("sender_ids")[:MAX_CHOSEN]),
        "schedule": "later" if args.get("schedule") == "later" else "now",
        "scheduled_at": str(args.get("scheduled_at", "")).strip()[:40],
        "ends_at": str(args.get("ends_at", "")).strip()[:40],
        **{key: str(args.get(key, "")).strip()[:40] for key in PACING_KEYS},
    }


def wizard_plan(
    session: Session, values: dict[str, Any], chosen: list[Sender] | None = None
) -> dict[str, Any]:
    """What the wizard foresees for the boxes as typed (`values` as `plan_values` gives them):

    - `estimate`: how long at the chosen pace and when it ends, in the user's timezone;
    - `warnings`: a pace faster than is safe, an audience too big for the finish-by time;
    - `overlap`: who of the audience got another campaign's message in the last 7 days.
    Nothing is estimated while a date or pacing box is wrong (its error shows on saving).
    """
    segment_id = chosen_segment(values)
    list_ids = [] if segment_id else values.get("list_ids", [])
    if chosen is None:
        wanted = values.get("sender_ids", [])[:MAX_CHOSEN]
        chosen = list(session.scalars(senders_by_name().where(Sender.id.in_(wanted))))
    now, tz = utcnow(), user_zone()
    recipients, capped = (
        segment_recipients(session, segment_id)
        if segment_id
        else (audience.count(session, list_ids) if list_ids else 0, False)
    )
    plan: dict[str, Any] = {
        "recipients": recipients,
        "capped": capped,
        "estimate": None,
        "warnings": [],
        "overlap": outlook.overlap_texts(
            outlook.recent_overlaps(
                session,
                audience.condition(list_ids, segment_terms(session, segment_id), now),
                now,
            ),
            recipients,
            now,
            tz,
        )
        if recipients
        else [],
    }
    if not chosen:
        return plan
    try:
        start, ends_at = _times(values)
        overrides = validate_overrides({key: values.get(key, "") for key in PACING_KEYS})
    except ValidationError:
        return plan
    start = start if start and start > now else now
    plan["warnings"] = outlook.warnings(
        session, chosen, overrides, recipients, start, ends_at, now, tz
    )
    plan["estimate"] = outlook.estimate_text(session, chosen, overrides, recipients, start, now, tz)
    return plan


def _times(values: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """The start (None: at launch) and finish-by time typed in the wizard."""
    start = None
    if values.get("schedule") == "later" and values.get("scheduled_at"):
        start = local_time(values["scheduled_at"], "scheduled_at", START_WRONG)
    ends_at = None
    if values.get("ends_at"):
        ends_at = local_time(values["ends_at"], "ends_at", FINISH_WRONG)
    return start, ends_at


def cloud_notes(
    session: Session,
    template_id: int | None,
    sender_ids: list[int],
    list_ids: list[int],
    media_id: int | None = None,
    segment_id: int | None = None,
) -> list[cloud_launch.Note]:
    """What the wizard says when a chosen sender is a Cloud API sender: the template it
    needs, or how many of the audience (its lists, or its segment when one is chosen) a
    one-off message can reach (24-hour window)."""
    senders = [s for s in (session.get(Sender, i) for i in sender_ids) if s is not None]
    template = session.get(Template, template_id) if template_id is not None else None
    now = utcnow()
    terms = segment_terms(session, segment_id)
    people = audience.of([] if segment_id is not None else list_ids, terms, now)
    notes = cloud_launch.wizard_notes(session, template, senders, people, now, media_id)
    # Said in English by the campaigns' service; read here in the reader's language.
    return [replace(note, text=i18n.translated(note.text) or "") for note in notes]


def is_document(media: Media | None) -> bool:
    """Whether an attachment goes as a document of its own (PDF, sheet, text) rather than a
    photo or video that carries the text as its caption (the channels' rule)."""
    return media is not None and not media.mime_type.startswith(("image/", "video/"))


def sender_pace(sender: Sender) -> dict[str, str]:
    """A sender's pacing defaults as the boxes would show them ("" = none)."""
    return {key: _text(getattr(sender, key)) for key in PACING_KEYS}


def pacing_placeholders(chosen: list[Sender]) -> dict[str, str]:
    """The placeholder of each pacing box: the chosen senders' shared default (wizard.js
    recomputes it when the choice changes)."""
    out = {}
    for key in PACING_KEYS:
        seen = {sender_pace(s)[key] for s in chosen}
        if not chosen:
            out[key] = _("sender's default")
        elif len(seen) > 1:
            out[key] = _("varies by sender")
        else:
            out[key] = seen.pop() or _("none")
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
