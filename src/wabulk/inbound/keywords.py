"""Opt-out keywords: one list and one matching rule for every channel (DESIGN §8).

- The whole reply must be a keyword once normalised, so "stop" and "STOP!" opt out and
  "don't stop sending" does not: a customer asking a question that contains the word is
  not unsubscribed behind their back.
- Normalising: NFKC (full-width letters become plain ones), casefold, accents folded
  ("SUSCRIPCIÓN" = "suscripcion"), punctuation, symbols and emoji around the words dropped,
  inner spaces collapsed. Devanagari's vowel signs are letters' marks, not accents, so they
  are kept: folding them would change the word.
- The list is an instance setting an administrator edits; the defaults cover English,
  Hindi, Portuguese, Spanish and Indonesian.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from sqlalchemy.orm import Session

from .. import events
from ..auth.permissions import require_role
from ..errors import ValidationError
from ..models import AppSetting, Role, User
from ..words import N_, said

SETTING_KEY = "opt_out_keywords"
MAX_KEYWORDS = 60
MAX_KEYWORD_CHARS = 30
# The stored value (one keyword a line) must fit app_settings.value.
MAX_STORED_CHARS = 2000
# A button whose payload is this opts the customer out when tapped (the template editor
# marks opt-out quick-reply buttons with it).
OPT_OUT_PAYLOAD = "wabulk:opt-out"

DEFAULT_KEYWORDS: tuple[str, ...] = (
    # English
    "STOP",
    "STOP ALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPT OUT",
    "OPTOUT",
    # Hindi (and the romanised forms people type)
    "रुकें",
    "रुको",
    "बंद करो",
    "बंद करें",
    "बंद",
    "BAND KARO",
    # Portuguese
    "PARAR",
    "PARE",
    "SAIR",
    "CANCELAR",
    "DESCADASTRAR",
    # Spanish
    "BAJA",
    "ALTO",
    "DETENER",
    "CANCELAR SUSCRIPCION",
    "DARME DE BAJA",
    # Indonesian
    "BERHENTI",
    "STOP LANGGANAN",
    "BATAL",
    "KELUAR",
)


def _is_mark_to_fold(ch: str) -> bool:
    """A combining accent of a Latin, Greek or Cyrillic letter (é → e), not an Indic sign."""
    if unicodedata.category(ch) != "Mn":
        return False
    return unicodedata.combining(ch) in range(202, 241) or "\u0300" <= ch <= "\u036f"


def _is_word_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in ("L", "N", "M")


def normalise(text: str) -> str:
    """The form both a keyword and a reply are compared in."""
    text = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFD", text)
    text = unicodedata.normalize(
        "NFC", "".join(ch for ch in decomposed if not _is_mark_to_fold(ch))
    )
    # Everything that is not a letter, digit or mark separates words: punctuation, emoji,
    # symbols, zero-width joiners and spaces of any kind.
    words = "".join(ch if _is_word_char(ch) else " " for ch in text).split()
    return " ".join(words)


@lru_cache(maxsize=32)
def _normalised_set(keywords: tuple[str, ...]) -> frozenset[str]:
    return frozenset(k for k in (normalise(w) for w in keywords) if k)


def matches(text: str | None, keywords: tuple[str, ...] | list[str] = DEFAULT_KEYWORDS) -> bool:
    """Whether the whole of `text` is one of the opt-out keywords."""
    if not text or len(text) > 200:  # a keyword is short; a long message is a conversation
        return False
    said = normalise(text)
    return bool(said) and said in _normalised_set(tuple(keywords))


def is_opt_out_payload(payload: str | None) -> bool:
    return (payload or "").strip() == OPT_OUT_PAYLOAD


def keywords(session: Session) -> tuple[str, ...]:
    """The instance's list: the administrator's, else the defaults."""
    row = session.get(AppSetting, SETTING_KEY)
    if row is None or not row.value.strip():
        return DEFAULT_KEYWORDS
    return tuple(line.strip() for line in row.value.splitlines() if line.strip())


def parse_keywords(text: str) -> tuple[str, ...]:
    """One keyword a line (commas also separate), checked; a clear error names what is wrong."""
    words: list[str] = []
    seen: set[str] = set()
    for raw in text.replace(",", "\n").splitlines():
        word = " ".join(raw.split())
        if not word:
            continue
        if len(word) > MAX_KEYWORD_CHARS:
            raise ValidationError(
                said(
                    "%(word)s is too long for a keyword: keep each one under %(max)s characters.",
                    word=repr(word[:40]),
                    max=MAX_KEYWORD_CHARS,
                ),
                field="opt_out_keywords",
            )
        key = normalise(word)
        if not key:
            raise ValidationError(
                said(
                    "%(word)s has no letters or digits; a keyword must be a word a customer types.",
                    word=repr(word),
                ),
                field="opt_out_keywords",
            )
        if key in seen:
            continue
        seen.add(key)
        words.append(word)
    if not words:
        raise ValidationError(
            N_("Keep at least one keyword (for example STOP): customers need a way to opt out."),
            field="opt_out_keywords",
        )
    if len(words) > MAX_KEYWORDS:
        raise ValidationError(
            said(
                "That is %(count)s keywords; keep the list to %(max)s at most.",
                count=len(words),
                max=MAX_KEYWORDS,
            ),
            field="opt_out_keywords",
        )
    if len("\n".join(words)) > MAX_STORED_CHARS:
        raise ValidationError(
            said(
                "The list is longer than %(max)s characters; shorten it.",
                max=f"{MAX_STORED_CHARS:,}",
            ),
            field="opt_out_keywords",
        )
    return tuple(words)


def set_keywords(session: Session, actor: User | None, text: str) -> tuple[str, ...]:
    """Replace the instance's list (admins only); returns what was stored."""
    require_role(actor, Role.ADMIN)
    words = parse_keywords(text)
    value = "\n".join(words)
    row = session.get(AppSetting, SETTING_KEY)
    if row is None:
        session.add(AppSetting(key=SETTING_KEY, value=value))
    else:
        row.value = value
    events.record(
        session,
        "settings.changed",
        said(
            "%(actor)s set the opt-out keywords (%(count)s): %(keywords)s",
            actor=events.actor_name(actor),
            count=len(words),
            keywords=", ".join(words)[:300],
        ),
        user=actor,
    )
    return words


def reset_keywords(session: Session, actor: User | None) -> tuple[str, ...]:
    """Back to the default list."""
    return set_keywords(session, actor, "\n".join(DEFAULT_KEYWORDS))
