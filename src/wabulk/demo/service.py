"""Load and remove the demo data set; the page, the dashboard button and the CLI call these.

- Every row made is marked `is_demo`; removal deletes only such rows, never a user's.
- A demo row the user has built on (their own campaign messaged a demo contact, or uses a
  demo list, sender or template; they put a demo contact in their own list) is kept and
  becomes an ordinary row, and the removal says so.
- An `app_settings` flag says whether the set is loaded, so the shell's banner costs one
  primary-key read, and a second load changes nothing.
- Aggregates (message statistics, contact tallies, list member counts) are recomputed for
  what changed, by the modules that own them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .. import events
from ..analytics import stats
from ..auth.permissions import require_role
from ..campaigns import lifecycle
from ..campaigns.service import DraftInput, save_draft
from ..channels.dry_run import log_path
from ..contacts import tallies
from ..models import (
    AppSetting,
    Campaign,
    Contact,
    ContactList,
    Inbound,
    Message,
    Role,
    Segment,
    Sender,
    Template,
    User,
    campaign_lists,
    campaign_senders,
    list_members,
    utcnow,
)
from ..segments import terms as segment_terms
from ..senders.service import SenderInput, create_sender
from . import history, inbox, samples
from .people import RANGE_FIRST, RANGE_LAST, make_cast

FLAG = "demo_loaded"
# The live campaign visibly moves: a message every 2 to 5 seconds, one in twenty failing.
SENDER_PACING = {"min_delay_seconds": 2, "max_delay_seconds": 5}
SENDER_SETTINGS = {"failure_rate": 0.05}


@dataclass
class LoadResult:
    already: bool = False
    contacts: int = 0
    phones_skipped: int = 0
    lists: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    sender: str = ""
    campaigns: list[str] = field(default_factory=list)
    live_campaign_id: int | None = None
    segment: str = ""

    def lines(self) -> list[str]:
        if self.already:
            return ["Demo data is already loaded. Remove it with `wabulk demo --remove`."]
        out = [
            "Loaded the demo data (every name starts with “Demo”; nothing goes to WhatsApp):",
            f"  {self.contacts} contacts in the lists {', '.join(self.lists)}",
            f"  templates: {', '.join(self.templates)}",
            f"  sender: {self.sender}",
            f"  segment: {self.segment}",
            *(f"  campaign: {name}" for name in self.campaigns),
        ]
        if self.phones_skipped:
            out.append(
                f"  {self.phones_skipped} sample number(s) are already your contacts; "
                "they were left alone."
            )
        return out

    def sentence(self) -> str:
        if self.already:
            return "Demo data is already loaded."
        return (
            f"Demo data loaded: {self.contacts} contacts, {len(self.templates)} templates, "
            f"a dry-run sender and {len(self.campaigns)} campaigns. The live one sends while "
            "wabulk runs; nothing goes to WhatsApp."
        )


@dataclass
class RemoveResult:
    nothing: bool = False
    campaigns: int = 0
    contacts: int = 0
    lists: int = 0
    templates: int = 0
    senders: int = 0
    kept: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if self.nothing:
            return ["There is no demo data to remove."]
        return [
            f"Removed the demo data: {self.campaigns} campaigns, {self.contacts} contacts, "
            f"{self.lists} lists, {self.templates} templates, {self.senders} sender(s).",
            *self.kept,
        ]

    def sentence(self) -> str:
        return " ".join(self.lines())


def is_loaded(session: Session) -> bool:
    return session.get(AppSetting, FLAG) is not None


def _take_flag(session: Session, now: datetime) -> bool:
    """Set the loaded flag first; False when a load running beside this one set it.

    - ON CONFLICT DO NOTHING waits for the other load's transaction and then does nothing,
      so a double click loads once and neither click sees an error.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(AppSetting)
        .values(key=FLAG, value=now.isoformat(timespec="seconds"), updated_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return session.execute(stmt.execution_options(preserve_rowcount=True)).rowcount == 1


def _unused_name(session: Session, model: Any, name: str) -> str:
    """`name`, or `name (2)`… when a row of the user's (or a kept demo row) holds it."""
    candidate, n = name, 1
    while session.scalar(select(model.id).where(func.lower(model.name) == candidate.lower())):
        n += 1
        candidate = f"{name} ({n})"
    return candidate


def load_demo(
    session: Session, actor: User | None, instance_path: Path, now: datetime | None = None
) -> LoadResult:
    """Load the sample data set (admin: it adds a sender); a second call changes nothing."""
    require_role(actor, Role.ADMIN)
    now = now or utcnow()
    if is_loaded(session) or not _take_flag(session, now):
        return LoadResult(already=True)
    rng = random.Random(samples.SEED)
    sender = create_sender(
        session,
        actor,
        SenderInput(
            name=_unused_name(session, Sender, samples.SENDER_NAME),
            channel="dry_run",
            pacing=dict(SENDER_PACING),
            settings=dict(SENDER_SETTINGS),
        ),
    )
    sender.is_demo = True
    lists = {
        "retail": ContactList(
            name=_unused_name(session, ContactList, samples.RETAIL_LIST),
            description=samples.RETAIL_DESCRIPTION,
            is_demo=True,
        ),
        "due": ContactList(
            name=_unused_name(session, ContactList, samples.DUE_LIST),
            description=samples.DUE_DESCRIPTION,
            is_demo=True,
        ),
    }
    templates = [
        Template(name=_unused_name(session, Template, name), body=body, is_demo=True)
        for name, body in samples.TEMPLATES
    ]
    segment = Segment(
        name=_unused_name(session, Segment, samples.SEGMENT_NAME),
        description=samples.SEGMENT_DESCRIPTION,
        terms=segment_terms.validate(samples.SEGMENT_TERMS),
        created_by_id=actor.id if actor else None,
        is_demo=True,
    )
    session.add_all([*lists.values(), *templates, segment])
    session.flush()
    cast = make_cast(session, rng, lists, now)
    actor_id = actor.id if actor else None
    ids = history.build(session, rng, cast.people, lists, templates, sender, actor_id, now)
    session.flush()
    live = _launch(
        session,
        actor,
        DraftInput(
            name=samples.RUNNING_NAME,
            list_ids=[lists["due"].id],
            sender_ids=[sender.id],
            body=samples.RUNNING_BODY,
        ),
        now,
    )
    tomorrow = (now + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    scheduled = _launch(
        session,
        actor,
        DraftInput(
            name=samples.SCHEDULED_NAME,
            list_ids=[lists["retail"].id],
            sender_ids=[sender.id],
            template_id=templates[2].id,
            scheduled_at=tomorrow,
        ),
        now,
    )
    ids += [live.id, scheduled.id]
    session.flush()
    inbox.build(session, actor, sender, now)
    # The Inbox's answer has no campaign: its statistics are those of "no campaign".
    stats.rebuild(session, [*ids, stats.NO_CAMPAIGN])
    tallies.recount(session)
    result = LoadResult(
        contacts=len(cast.people),
        phones_skipped=cast.phones_skipped,
        lists=[lst.name for lst in lists.values()],
        templates=[t.name for t in templates],
        sender=sender.name,
        campaigns=list(
            session.scalars(select(Campaign.name).where(Campaign.id.in_(ids)).order_by(Campaign.id))
        ),
        live_campaign_id=live.id,
        segment=segment.name,
    )
    events.record(
        session,
        "demo.loaded",
        f"{events.actor_name(actor)} loaded the demo data: {result.contacts} contacts, "
        f"{len(result.templates)} templates, the sender {sender.name!r} and "
        f"{len(result.campaigns)} campaigns.",
        user=actor,
    )
    return result


def _launch(session: Session, actor: User | None, draft: DraftInput, now: datetime) -> Campaign:
    """A demo campaign made and launched the way a user's is, so the real engine sends it."""
    campaign = save_draft(session, actor, draft)
    campaign.is_demo = True
    return lifecycle.launch(session, actor, campaign.id, now)


# --- removal ------------------------------------------------------------------------


def _demo_ids(session: Session, model: Any) -> list[int]:
    return list(session.scalars(select(model.id).where(model.is_demo.is_(True))))


def _demo_contact_ids(session: Session) -> list[int]:
    # Every demo contact lies in the sample range: the unique phone index finds them
    # without reading the whole contacts table.
    return list(
        session.scalars(
            select(Contact.id).where(
                Contact.phone.between(RANGE_FIRST, RANGE_LAST), Contact.is_demo.is_(True)
            )
        )
    )


def _used_by_users(session: Session, link: Any, column: Any, ids: list[int]) -> set[int]:
    """Which of `ids` a campaign of the user's links to (through campaign_lists/_senders)."""
    if not ids:
        return set()
    return set(
        session.scalars(
            select(column)
            .join(Campaign, Campaign.id == link.c.campaign_id)
            .where(column.in_(ids), Campaign.is_demo.is_(False))
            .distinct()
        )
    )


def _kept_contacts(
    session: Session, contact_ids: list[int], kept_lists: set[int], demo_lists: list[int]
) -> set[int]:
    """Demo contacts a user's campaign messaged, or that sit in a user's (or kept) list."""
    if not contact_ids:
        return set()
    # An answer written in the Inbox to a demo contact answers a demo reply: demo data
    # too, removed with the contact (only a user's own campaign keeps a contact).
    messaged = session.scalars(
        select(Message.contact_id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(Message.contact_id.in_(contact_ids), Campaign.is_demo.is_(False))
        .distinct()
    )
    doomed_lists = [i for i in demo_lists if i not in kept_lists]
    listed = session.scalars(
        select(list_members.c.contact_id)
        .where(
            list_members.c.contact_id.in_(contact_ids),
            list_members.c.list_id.not_in(doomed_lists),
        )
        .distinct()
    )
    return set(messaged) | set(listed)


def remove_demo(session: Session, actor: User | None, instance_path: Path) -> RemoveResult:
    """Delete every demo row, keeping (as ordinary rows) those the user's own data uses."""
    require_role(actor, Role.ADMIN)
    campaign_ids = _demo_ids(session, Campaign)
    list_ids = _demo_ids(session, ContactList)
    template_ids = _demo_ids(session, Template)
    sender_ids = _demo_ids(session, Sender)
    segment_ids = _demo_ids(session, Segment)
    contact_ids = _demo_contact_ids(session)
    flag = session.get(AppSetting, FLAG)
    if not (
        flag or campaign_ids or list_ids or template_ids or sender_ids or segment_ids or contact_ids
    ):
        return RemoveResult(nothing=True)

    kept_lists = _used_by_users(session, campaign_lists, campaign_lists.c.list_id, list_ids)
    kept_senders = _used_by_users(
        session, campaign_senders, campaign_senders.c.sender_id, sender_ids
    )
    kept_templates: set[int] = set()
    if template_ids:
        kept_templates = {
            i
            for i in session.scalars(
                select(Campaign.template_id).where(
                    Campaign.template_id.in_(template_ids), Campaign.is_demo.is_(False)
                )
            )
            if i is not None
        }
    # A segment one of the user's campaigns (a draft, a series' model) goes to stays theirs.
    kept_segments = {
        i
        for i in session.scalars(
            select(Campaign.segment_id).where(
                Campaign.segment_id.in_(segment_ids), Campaign.is_demo.is_(False)
            )
        )
        if i is not None
    }
    kept_contacts = _kept_contacts(session, contact_ids, kept_lists, list_ids)
    result = RemoveResult(
        kept=_kept_sentences(
            session, kept_contacts, kept_lists, kept_senders, kept_templates, kept_segments
        )
    )
    for model, kept in (
        (ContactList, kept_lists),
        (Sender, kept_senders),
        (Template, kept_templates),
        (Segment, kept_segments),
        (Contact, kept_contacts),
    ):
        if kept:
            session.execute(update(model).where(model.id.in_(kept)).values(is_demo=False))

    doomed_contacts = [i for i in contact_ids if i not in kept_contacts]
    if campaign_ids:
        session.execute(delete(Inbound).where(Inbound.campaign_id.in_(campaign_ids)))
        session.execute(delete(Message).where(Message.campaign_id.in_(campaign_ids)))
        # Its log (events) and its links to lists and senders go with it (ON DELETE CASCADE).
        session.execute(delete(Campaign).where(Campaign.id.in_(campaign_ids)))
    if doomed_contacts:
        session.execute(delete(Inbound).where(Inbound.contact_id.in_(doomed_contacts)))

    _delete_answers(session, contact_ids, doomed_contacts, sender_ids, kept_senders)
    result.campaigns = len(campaign_ids)
    result.templates = _delete(session, Template, template_ids, kept_templates)
    _delete(session, Segment, segment_ids, kept_segments)
    result.lists = _delete(session, ContactList, list_ids, kept_lists)
    result.contacts = _delete(session, Contact, contact_ids, kept_contacts)
    doomed_senders = session.scalars(
        select(Sender).where(Sender.id.in_([i for i in sender_ids if i not in kept_senders]))
    ).all()
    for sender in doomed_senders:
        log_path(instance_path, sender.name).unlink(missing_ok=True)
    result.senders = _delete(session, Sender, sender_ids, kept_senders)
    session.expire_all()  # rows deleted in SQL must not linger in the identity map
    stats.rebuild(session, [*campaign_ids, stats.NO_CAMPAIGN])  # answers went too
    tallies.recount(session)
    if flag is not None:
        session.delete(flag)
    events.record(
        session,
        "demo.removed",
        f"{events.actor_name(actor)} removed the demo data: {result.campaigns} campaigns, "
        f"{result.contacts} contacts, {result.lists} lists, {result.templates} templates and "
        f"{result.senders} sender(s)." + (f" {' '.join(result.kept)}" if result.kept else ""),
        user=actor,
    )
    return result


def _delete_answers(
    session: Session,
    contact_ids: list[int],
    doomed_contacts: list[int],
    sender_ids: list[int],
    kept_senders: set[int],
) -> None:
    """Answers written in the Inbox (messages with no campaign) in demo conversations:
    to a demo contact that goes, or through the demo sender that goes (a kept contact's
    demo conversation goes with that sender). Their conversations, notes and answer rows
    go with the contact, the sender and the message (ON DELETE CASCADE)."""
    doomed_senders = [i for i in sender_ids if i not in kept_senders]
    whose = []
    if doomed_contacts:
        whose.append(Message.contact_id.in_(doomed_contacts))
    if doomed_senders and contact_ids:
        whose.append(
            and_(Message.contact_id.in_(contact_ids), Message.sender_id.in_(doomed_senders))
        )
    if whose:
        session.execute(delete(Message).where(Message.campaign_id.is_(None), or_(*whose)))


def _delete(session: Session, model: Any, ids: list[int], kept: set[int]) -> int:
    doomed = [i for i in ids if i not in kept]
    if doomed:
        session.execute(delete(model).where(model.id.in_(doomed)))
    return len(doomed)


def _kept_sentences(
    session: Session,
    contacts: set[int],
    lists: set[int],
    senders: set[int],
    templates: set[int],
    segments: set[int],
) -> list[str]:
    out = []
    if contacts:
        out.append(
            f"Kept {len(contacts)} demo contact(s) that your own campaigns or lists use; "
            "they are ordinary contacts now."
        )
    for model, ids, noun in (
        (ContactList, lists, "list"),
        (Sender, senders, "sender"),
        (Template, templates, "template"),
        (Segment, segments, "segment"),
    ):
        for name in session.scalars(select(model.name).where(model.id.in_(ids))):
            out.append(f"Kept the {noun} {name!r}: one of your campaigns uses it.")
    return out
