"""Which of the shop's imported sheets a campaign can be given back as (sheet_results.py).

- The sheet is the stored upload of the contacts import that filled the campaign's list:
  several such imports are each offered by name and date; a segment counts when its terms
  are one list and nothing that widens it, and otherwise offers the imported lists that
  hold any of its recipients (the newest `MAX_SHEET_LISTS`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from ..errors import Conflict, NotFound, ValidationError
from ..models import (
    Campaign,
    CampaignStatus,
    ContactList,
    Import,
    ImportKind,
    ImportStatus,
    Message,
    Segment,
    list_members,
)
from ..words import N_, said


@dataclass(frozen=True)
class SheetSource:
    """One imported sheet that filled the campaign's audience."""

    import_id: int
    name: str  # as uploaded
    imported_at: dt.datetime
    list_name: str | None
    stored: bool  # the file is still on this server


@dataclass(frozen=True)
class Choice:
    """The sheets a campaign can be given back as, or why there is none (`reason`)."""

    sheets: list[SheetSource]
    reason: str | None = None


def _one_list_of(terms: dict[str, Any] | None) -> int | None:
    """The list a segment's terms come down to, when they are just "in list X" (perhaps
    narrowed further with `match: all`); None when they could reach beyond one list."""
    if not isinstance(terms, dict):
        return None
    conditions = [c for c in terms.get("conditions") or [] if isinstance(c, dict)]
    in_list = [c for c in conditions if c.get("field") == "list" and c.get("op") == "in"]
    if len(in_list) != 1 or not isinstance(in_list[0].get("value"), list):
        return None
    if len(in_list[0]["value"]) != 1 or (terms.get("match") == "any" and len(conditions) > 1):
        return None
    value = in_list[0]["value"][0]
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _audience_lists(session: Session, campaign: Campaign) -> tuple[list[int], str | None]:
    """(the campaign's list ids, why none when empty). A follow-up step answers for the
    campaign it follows."""
    if campaign.parent_campaign_id:
        parent = session.get(Campaign, campaign.parent_campaign_id)
        if parent is not None:
            campaign = parent
    if campaign.segment_id is not None or campaign.audience_terms:
        terms = campaign.audience_terms
        if terms is None:
            segment = session.get(Segment, campaign.segment_id)
            terms = segment.terms if segment else None
        list_id = _one_list_of(terms)
        if list_id is not None:
            return [list_id], None
        # A segment on columns ("City is Pune"), not on a list: the imported lists that
        # hold any of its recipients, each offered by name (the "done when").
        found = _recipients_lists(session, campaign.id)
        if not found:
            return [], N_(
                "None of this campaign's recipients is in a list filled from an imported "
                "sheet, so there is no sheet to fill in. The report has every recipient."
            )
        return found, None
    return [lst.id for lst in campaign.lists], None


MAX_SHEET_LISTS = 10  # imported lists probed for a segment's recipients, newest first


def _recipients_lists(session: Session, campaign_id: int) -> list[int]:
    """The newest imported lists holding at least one of the campaign's recipients: one
    EXISTS per list (contact_list_members' key, then messages' unique (campaign, contact)),
    never a walk over every message."""
    candidates = session.scalars(
        select(Import.list_id)
        .where(
            Import.list_id.is_not(None),
            Import.kind == ImportKind.CONTACTS,
            Import.status == ImportStatus.COMPLETED,
        )
        .group_by(Import.list_id)
        .order_by(func.max(Import.id).desc())
        .limit(MAX_SHEET_LISTS)
    ).all()
    return [
        list_id
        for list_id in candidates
        if list_id is not None
        and session.scalar(
            select(
                exists().where(
                    list_members.c.list_id == list_id,
                    Message.campaign_id == campaign_id,
                    Message.contact_id == list_members.c.contact_id,
                )
            )
        )
    ]


def sheets_for(session: Session, campaign: Campaign, instance_path: Path) -> Choice:
    """The imported sheets that filled the campaign's lists (newest first), or why none."""
    if campaign.status == CampaignStatus.DRAFT:
        return Choice(
            [], N_("Once the campaign is launched, its sheet can be downloaded with results.")
        )
    list_ids, why = _audience_lists(session, campaign)
    if why:
        return Choice([], why)
    if not list_ids:
        return Choice([], N_("This campaign has no list, so there is no sheet to fill in."))

    found = session.execute(
        select(Import.id, Import.original_name, Import.created_at, Import.stored_path)
        .add_columns(ContactList.name)
        .outerjoin(ContactList, ContactList.id == Import.list_id)
        .where(
            Import.list_id.in_(list_ids),
            Import.kind == ImportKind.CONTACTS,
            Import.status == ImportStatus.COMPLETED,
        )
        .order_by(Import.created_at.desc(), Import.id.desc())
    ).all()
    if not found:
        return Choice(
            [],
            N_(
                "This campaign's list was not filled from an imported sheet (its contacts were "
                "added by hand or another way), so there is no sheet to fill in. The report has "
                "every recipient."
            ),
        )
    return Choice(
        [
            SheetSource(i, name, at, list_name, (instance_path / stored).is_file())
            for i, name, at, stored, list_name in found
        ]
    )


def chosen(choice: Choice, import_id: int | None) -> int:
    if choice.reason:
        raise Conflict(choice.reason)
    if import_id is None:
        if len(choice.sheets) > 1:
            names = ", ".join(f"{s.name} (import {s.import_id})" for s in choice.sheets[:10])
            raise ValidationError(
                said(
                    "This campaign's lists were filled from %(n)s sheets: choose one of %(names)s.",
                    n=len(choice.sheets),
                    names=names,
                ),
                field="import_id",
            )
        return choice.sheets[0].import_id
    if all(s.import_id != import_id for s in choice.sheets):
        raise NotFound(N_("That sheet did not fill this campaign's lists."))
    return import_id
