"""Sentences for people, written in English where they are made and translated where they are
read (docs/translations.md).

Services, workers and the import reader have no reader's language: a campaign's status reason,
an Event, an import report's reasons and a failure sentence are stored once and read by people
in different languages (and by the API, in English). So they are made in English from a marked
catalogue entry, and the pages translate the stored text back through the catalogue
(`web.i18n.translated`), values and all.

- `N_("Give the contact's phone number.")` marks a fixed sentence and returns it unchanged.
- `said("row %(row)s: %(problem)s", row=17, problem=why)` fills the values into the English.
- `said_n("%(num)d contact imported", "%(num)d contacts imported", n)` chooses by count.

pybabel extracts all three (keywords N_, said, said_n:1,2; see the Makefile).
"""

from __future__ import annotations

# Placeholders whose value is itself one of our sentences (a reason inside a sentence): the
# reader's page translates that value too. Other values (names, numbers, phones, what the user
# typed) are shown as they are.
NESTED = frozenset(
    {"reason", "problem", "detail", "sentence", "why", "what", "next", "more"}
    # Our own words put inside a sentence: who acted ("The command line"), a role, a status.
    | {"who", "actor", "role", "status", "state", "level", "kind", "label", "channel"}
)


# Placeholders whose value is a country's English name: shown in the reader's language.
COUNTRY = frozenset({"country", "region"})


def N_(msgid: str) -> str:
    return msgid


def said(msgid: str, **values: object) -> str:
    """The English sentence with its values filled in."""
    return msgid % values if values else msgid


def said_n(singular: str, plural: str, num: int, **values: object) -> str:
    """The English sentence for `num` things (its `%(num)d` filled in)."""
    return (singular if num == 1 else plural) % {"num": num, **values}
