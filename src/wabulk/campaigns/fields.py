"""Which fields a message may use, and the sentence when it uses one that does not exist.

A misspelt placeholder (`{{ nmae }}`) prints nothing for every customer; it is refused
before saving, with the closest field as a suggestion, instead of being found after
launch as "empty for 288 of 288".
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..contacts.service import placeholder_keys
from ..models import Contact
from ..words import said
from .rendering import TemplateError

# The contact's own fields, in the order the editor offers them.
CONTACT_FIELDS = ("name", "first_name", "phone", "country")
# Names looked up one by one in every contact: a body has a few placeholders, and a
# body with more unknown names than this is refused on the first ones anyway.
MAX_LOOKUPS = 5
_SHOWN = 12  # fields listed in a sentence


def known_fields(session: Session) -> list[str]:
    """The contact fields, then every attribute name imports and recent contacts use."""
    return [*CONTACT_FIELDS, *(k for k in placeholder_keys(session) if k not in CONTACT_FIELDS)]


def check_fields(session: Session, names: Iterable[str], body: str) -> None:
    """Raise TemplateError for the first name no contact has, with a suggestion.

    - `placeholder_keys` reads imports and the newest contacts only; a name not among them
      is looked up in every contact before it is called unknown (a field added by hand to
      an old contact is still a field).
    """
    known = known_fields(session)
    missing = sorted(set(names) - set(known))
    if not missing:
        return
    for name in missing[:MAX_LOOKUPS]:
        if not _stored(session, name):
            raise TemplateError(unknown_sentence(name, known), _line_of(body, name), name)


def unknown_sentence(name: str, known: list[str]) -> str:
    """ "nmae" is not a field; did you mean "name"? (or the list of fields there are)."""
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        return said(
            '"%(name)s" is not a field; did you mean "%(close)s"?',
            name=name,
            close=by_lower[close[0]],
        )
    if len(known) == len(CONTACT_FIELDS):
        return said(
            '"%(name)s" is not a field yet: import contacts with a "%(name)s" column first. '
            "The fields now are %(fields)s.",
            name=name,
            fields=_listed(known),
        )
    return said(
        '"%(name)s" is not a field of your contacts. The fields are %(fields)s.',
        name=name,
        fields=_listed(known),
    )


def _listed(known: list[str]) -> str:
    shown = known[:_SHOWN]
    more = len(known) - len(shown)
    text = ", ".join(shown[:-1]) + f" and {shown[-1]}" if more == 0 else ", ".join(shown)
    return text + (f" and {more} more" if more else "")


def _stored(session: Session, name: str) -> bool:
    """Whether any contact has the attribute `name` (a Jinja name: no quote can occur)."""
    if session.get_bind().dialect.name == "postgresql":
        has = func.jsonb_exists(Contact.attributes, name)
    else:
        has = func.json_type(Contact.attributes, f'$."{name}"').is_not(None)
    return session.scalar(select(Contact.id).where(has).limit(1)) is not None


def _line_of(body: str, name: str) -> int | None:
    """The first line using `name` inside a tag, for the sentence's "Line N:"."""
    pattern = re.compile(r"\{[{%][^\n]*?(?<![\w.\"'])" + re.escape(name) + r"(?!\w)")
    for number, line in enumerate(body.splitlines(), start=1):
        if pattern.search(line):
            return number
    return None
