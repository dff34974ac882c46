"""All tables, on one declarative base (one metadata for Alembic)."""

from .base import Base, utcnow
from .campaigns import (
    Campaign,
    CampaignStatus,
    Message,
    MessageStatus,
    Template,
    campaign_lists,
    campaign_senders,
)
from .contacts import (
    Contact,
    ContactList,
    Import,
    ImportIssue,
    ImportKind,
    ImportStatus,
    Media,
    list_members,
)
from .events import Event, EventLevel, Inbound
from .senders import Channel, Sender, SenderState
from .users import ApiToken, AppSetting, LoginFailure, Role, User

__all__ = [
    "ApiToken",
    "AppSetting",
    "Base",
    "Campaign",
    "CampaignStatus",
    "Channel",
    "Contact",
    "ContactList",
    "Event",
    "EventLevel",
    "Import",
    "ImportIssue",
    "ImportKind",
    "ImportStatus",
    "Inbound",
    "LoginFailure",
    "Media",
    "Message",
    "MessageStatus",
    "Role",
    "Sender",
    "SenderState",
    "Template",
    "User",
    "campaign_lists",
    "campaign_senders",
    "list_members",
    "utcnow",
]
