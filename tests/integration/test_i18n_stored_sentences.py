"""Sentences made in English where nobody reads yet (wabulk.words) and read back in the
reader's language (web.i18n.translated), on a small catalogue of this test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import write_po
from flask import Flask
from flask_babel import refresh

from wabulk.web import i18n
from wabulk.words import N_, said, said_n

SENTENCES = {
    "Give the contact's phone number.": "संपर्क का फ़ोन नंबर दें।",
    "row %(row)s: %(problem)s": "पंक्ति %(row)s: %(problem)s",
    "is too short for %(country)s": "%(country)s के लिए बहुत छोटा है",
    "Campaign %(name)s paused: %(reason)s": "अभियान %(name)s रुका: %(reason)s",
    "the sender was signed out": "भेजने वाला साइन आउट हो गया",
    "Paused": "रुका हुआ",
    "100%% of %(num)d sent": "%(num)d में से 100%% भेजे गए",
    "%(name)s was paused": "%(name)s रोका गया",
    "%(names)s and %(last)s": "%(names)s और %(last)s",
    "Opted out (%(reason)s)": "ऑप्ट-आउट किया (%(reason)s)",
    "Replied STOP on WhatsApp.": "WhatsApp पर STOP लिखा।",
}
PLURAL = ("%(num)d contact imported", "%(num)d contacts imported")


def _forget() -> None:
    """The catalogue as read once per process: read again (this test's, then the real one)."""
    for cached in (i18n._template, i18n._sentences, i18n._javascript_msgids):
        cached.cache_clear()


@pytest.fixture
def catalogue(tmp_path: Path, app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    template, hindi = Catalog(), Catalog(locale="hi")
    for english, translation in SENTENCES.items():
        flags = ("python-format",) if "%" in english else ()
        template.add(english, flags=flags)
        hindi.add(english, translation, flags=flags)
    template.add(PLURAL, flags=("python-format",))
    hindi.add(PLURAL, ("%(num)d संपर्क जोड़ा", "%(num)d संपर्क जोड़े"), flags=("python-format",))
    (tmp_path / "hi" / "LC_MESSAGES").mkdir(parents=True)
    with (tmp_path / "messages.pot").open("wb") as fh:
        write_po(fh, template)
    with (tmp_path / "hi" / "LC_MESSAGES" / "messages.mo").open("wb") as fh:
        write_mo(fh, hindi)
    monkeypatch.setattr(i18n, "TRANSLATIONS", tmp_path)
    _forget()
    babel = app.extensions["babel"]
    babel.translation_directories = [str(tmp_path)]
    with app.app_context():
        babel.instance.domain_instance.cache.clear()
    yield
    with app.app_context():
        babel.instance.domain_instance.cache.clear()
    _forget()


def _in(app: Flask, language: str, text: str | None) -> str | None:
    with app.test_request_context("/", headers={"Accept-Language": language}):
        refresh()
        return i18n.translated(text)


def test_words_make_the_same_english_as_before() -> None:
    assert N_("Give the contact's phone number.") == "Give the contact's phone number."
    assert said("row %(row)s: %(problem)s", row=17, problem="x") == "row 17: x"
    assert said("100%% of %(num)d sent", num=5) == "100% of 5 sent"
    assert said_n(*PLURAL, 1) == "1 contact imported"
    assert said_n(*PLURAL, 3) == "3 contacts imported"


def test_stored_english_reads_in_the_readers_language(app: Flask, catalogue: None) -> None:
    assert _in(app, "hi", "Give the contact's phone number.") == "संपर्क का फ़ोन नंबर दें।"
    # Values are kept; a value that is itself one of our sentences is translated too, and a
    # country named in English by our sentence is named in the reader's language (Babel).
    reason = said("is too short for %(country)s", country="India")
    stored = said("row %(row)s: %(problem)s", row=17, problem=reason)
    assert _in(app, "hi", stored) == "पंक्ति 17: भारत के लिए बहुत छोटा है"
    # A name is never translated, even when it reads like one of our words.
    stored = said(
        "Campaign %(name)s paused: %(reason)s",
        name="Paused",
        reason=N_("the sender was signed out"),
    )
    assert _in(app, "hi", stored) == "अभियान Paused रुका: भेजने वाला साइन आउट हो गया"
    # A nested value that is no sentence of ours stays as it was written.
    assert _in(app, "hi", "row 3: something else") == "पंक्ति 3: something else"
    # A sentence quoted inside another without its full stop is read, and quoted, the same way.
    quoted = _in(app, "hi", "Opted out (Replied STOP on WhatsApp)")
    assert quoted == "ऑप्ट-आउट किया (WhatsApp पर STOP लिखा)"
    assert _in(app, "hi", "Opted out (asked in the shop)") == "ऑप्ट-आउट किया (asked in the shop)"
    # Counts choose their form; a literal % survives.
    assert _in(app, "hi", said_n(*PLURAL, 1)) == "1 संपर्क जोड़ा"
    assert _in(app, "hi", said_n(*PLURAL, 40)) == "40 संपर्क जोड़े"
    assert _in(app, "hi", said("100%% of %(num)d sent", num=8)) == "8 में से 100% भेजे गए"
    # A sentence that starts with its value.
    assert _in(app, "hi", "Diwali offer was paused") == "Diwali offer रोका गया"


def test_what_is_not_ours_and_english_readers_are_left_alone(app: Flask, catalogue: None) -> None:
    # A sentence of values and one word would claim any text with that word in it.
    for text in ("Hello Asha, 20% off today", "rows 17: x", "row 17 x", "Tea and cake", "", None):
        assert _in(app, "hi", text) == text
    stored = said("row %(row)s: %(problem)s", row=17, problem="x")
    assert _in(app, "en", stored) == stored
    # A language without the sentence falls back to the English.
    assert _in(app, "pt-BR", stored) == stored


def test_the_api_speaks_english_unless_asked(app: Flask) -> None:
    with app.test_request_context("/api/v1/contacts"):
        assert i18n.current_language() == "en"
    with app.test_request_context("/api/v1/contacts", headers={"Accept-Language": "hi"}):
        assert i18n.current_language() == "hi"
    with app.test_request_context("/contacts/", headers={"Accept-Language": "hi"}):
        assert i18n.current_language() == "hi"
