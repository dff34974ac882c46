"""All tables, on one declarative base (one metadata for Alembic)."""

from .audiences import (
    CampaignStep,
    Recurrence,
    RecurrenceFrequency,
    RecurrenceState,
    Segment,
    StepCondition,
)
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
from .cloud import CloudMedia, CloudTemplate, WebhookReceipt
from .contacts import (
    Contact,
    ContactList,
    Import,
    ImportIssue,
    ImportKind,
    ImportStatus,
    Media,
    SheetMapping,
    list_members,
)
from .events import Event, EventLevel, Inbound
from .hooks import DeliveryStatus, OutboxEvent, WebhookEndpoint
from .inbox import (
    Answer,
    Conversation,
    ConversationNote,
    ConversationState,
    FormClaim,
    QuickReply,
)
from .senders import Channel, Sender, SenderState
from .stats import SLOT_MINUTES, MessageStat, Tally
from .users import ApiToken, AppSetting, LoginFailure, Role, User, UserSession
from .workers import Worker

__all__ = [
    "SLOT_MINUTES",
    "Answer",
    "ApiToken",
    "AppSetting",
    "Base",
    "Campaign",
    "CampaignStatus",
    "CampaignStep",
    "Channel",
    "CloudMedia",
    "CloudTemplate",
    "Contact",
    "ContactList",
    "Conversation",
    "ConversationNote",
    "ConversationState",
    "DeliveryStatus",
    "Event",
    "EventLevel",
    "FormClaim",
    "Import",
    "ImportIssue",
    "ImportKind",
    "ImportStatus",
    "Inbound",
    "LoginFailure",
    "Media",
    "Message",
    "MessageStat",
    "MessageStatus",
    "OutboxEvent",
    "QuickReply",
    "Recurrence",
    "RecurrenceFrequency",
    "RecurrenceState",
    "Role",
    "Segment",
    "Sender",
    "SenderState",
    "SheetMapping",
    "StepCondition",
    "Tally",
    "Template",
    "User",
    "UserSession",
    "WebhookEndpoint",
    "WebhookReceipt",
    "Worker",
    "campaign_lists",
    "campaign_senders",
    "list_members",
    "utcnow",
]
