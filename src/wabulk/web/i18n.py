"""The pages' language (Flask-Babel) and numbers and dates in the reader's locale (Babel).

The language is, in order: the signed-in user's own choice (users.language); the choice made
with `?lang=` on the sign-in or first-run page (a cookie, for people not signed in yet or who
never chose); the best match of the browser's Accept-Language among ours; English.

English pages keep the formats they had before translations (ISO dates, "100,000"): only the
digit grouping follows India when the shop's default country is India.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_skeleton, format_time
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from flask import Flask, Response, g, has_request_context, request
from flask_babel import Babel, get_locale, gettext, ngettext
from flask_login import current_user
from jinja2 import pass_context
from sqlalchemy.exc import SQLAlchemyError

from .. import app_settings
from ..words import COUNTRY, NESTED

# The locales we ship, with each one's name written in its own language (for the choosers).
LANGUAGES: dict[str, str] = {
    "en": "English",
    "hi": "हिन्दी",
    "pt_BR": "Português (Brasil)",
    "es": "Español",
    "id": "Bahasa Indonesia",
}
DEFAULT = "en"
COOKIE = "wabulk_lang"
COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest browsers keep a cookie
# Pages where someone not signed in yet may choose a language with ?lang=.
CHOOSER_ENDPOINTS = frozenset({"auth.login", "auth.setup"})
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"


def is_language(code: str | None) -> bool:
    return code in LANGUAGES


def browser_language() -> str | None:
    """The browser's preferred language among ours, or None."""
    return request.accept_languages.best_match(list(LANGUAGES))


def select_locale() -> str:
    if not has_request_context():  # a CLI command or a worker rendering nothing for a reader
        return DEFAULT
    if request.blueprint == "api":
        return _api_language()
    if getattr(current_user, "is_authenticated", False) and is_language(current_user.language):
        return str(current_user.language)
    chosen = g.get("lang_choice")
    if chosen is not None:
        return chosen or browser_language() or DEFAULT
    cookie = request.cookies.get(COOKIE)
    if is_language(cookie):
        return str(cookie)
    return browser_language() or DEFAULT


def _api_language() -> str:
    """The API speaks English (stable codes, English messages) unless the client asks with
    Accept-Language: then the best of ours for the header, else the token owner's own."""
    if "Accept-Language" not in request.headers:
        return DEFAULT
    best = browser_language()
    if best:
        return best
    if getattr(current_user, "is_authenticated", False) and is_language(current_user.language):
        return str(current_user.language)
    return DEFAULT


def _take_lang_choice() -> None:
    """`?lang=hi` on the sign-in or first-run page; `?lang=` (empty) goes back to the browser's."""
    if request.endpoint in CHOOSER_ENDPOINTS and "lang" in request.args:
        value = request.args.get("lang", "")
        if value == "" or is_language(value):
            g.lang_choice = value


def _remember_lang_choice(response: Response) -> Response:
    chosen = g.get("lang_choice")
    if chosen is not None:
        if chosen:
            response.set_cookie(
                COOKIE, chosen, max_age=COOKIE_MAX_AGE, samesite="Lax", httponly=True
            )
        else:
            response.delete_cookie(COOKIE)
    return response


def current_language() -> str:
    return str(get_locale() or DEFAULT)


def _business_country() -> str | None:
    if "business_country" not in g:
        from .helpers import db_session  # helpers imports this module's filters

        try:
            g.business_country = app_settings.default_country(db_session())
        except SQLAlchemyError:
            # The page saying the database is away is written without asking it again.
            g.business_country = None
    return g.business_country  # type: ignore[no-any-return]


def format_locale() -> Locale:
    """The locale numbers and dates are written in: English in India groups digits as India
    does (1,00,000)."""
    language = current_language()
    if language == DEFAULT and _business_country() == "IN":
        return _locale("en_IN")
    return _locale(language)


@functools.lru_cache(maxsize=16)
def _locale(code: str) -> Locale:
    """Parsed once per process: a page formats many numbers in the same few locales."""
    return Locale.parse(code)


def format_number(value: int | float | None, locale: Locale | str | None = None) -> str:
    """A count or amount with the locale's digit grouping and decimal mark."""
    if value is None:
        return "—"
    return format_decimal(value, locale=locale or format_locale())


def format_fixed(
    value: int | float | None,
    digits: int | None = None,
    locale: Locale | str | None = None,
    group: bool = True,
) -> str:
    """A decimal number with the locale's decimal mark: `digits` decimals (rounded as Python's
    round() does), or as many as Python writes the number with when None (1.0, 0.25, 80), so
    English reads as it did before translations: 18.5, 100.0, 0.2. `group=False` leaves out
    the thousands separator (1000, as "%g" writes it)."""
    if value is None:
        return "—"
    if digits is None:
        written = str(value)
        if not isinstance(value, int | float) or "e" in written or "n" in written:
            return format_number(value, locale)  # 1e-05, inf, nan: no fixed form
        digits = len(written.partition(".")[2])
    else:
        value = round(value, digits)
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(
        value, format=pattern, locale=locale or format_locale(), group_separator=group
    )


def format_percent(value: int | float | None, digits: int | None = 1) -> str:
    """A percentage already out of 100 (18.5), with its sign: 18.5% in English, 18,5% in
    Portuguese (as Analytics writes shares); a dash when there is none."""
    if value is None:
        return "—"
    return format_fixed(value, digits) + "%"


def format_local_datetime(local: datetime, locale: Locale | str) -> str:
    """`local` (already in the reader's timezone) with the zone's abbreviation after it.

    English keeps its ISO form (2026-03-05 14:07 IST); other languages write the date in their
    own order (5/3/2026) and the time with their own clock (14:07, or 2:07 pm in Hindi)."""
    locale = Locale.parse(locale)
    zone_name = local.tzname() or ""
    if locale.language == "en":
        return local.strftime("%Y-%m-%d %H:%M ") + zone_name
    date = format_skeleton("yMd", local, locale=locale)
    time = format_time(local, "short", locale=locale)
    pattern = str(locale.datetime_formats["short"])
    return pattern.replace("{1}", date).replace("{0}", time) + " " + zone_name


@pass_context
def _number_filter(_context: object, value: int | float | None) -> str:
    # pass_context: Jinja would otherwise work out `{{ 100000|number }}` once, when the
    # template is compiled, in whichever language the first reader had.
    return format_number(value)


@pass_context
def _decimal_filter(
    _context: object, value: int | float | None, digits: int | None = None, group: bool = True
) -> str:
    """`{{ seconds|decimal }}`, `{{ share|decimal(1) }}`: see format_fixed."""
    return format_fixed(value, digits, group=group)


@pass_context
def _percent_filter(_context: object, value: int | float | None, digits: int | None = 1) -> str:
    """`{{ campaign_percent|percent }}`: 18.5% (18,5% in Portuguese); see format_percent."""
    return format_percent(value, digits)


@cache
def _template() -> Catalog:
    """messages.pot, read once per process: the English of every marked sentence and where
    it is used."""
    pot = TRANSLATIONS / "messages.pot"
    if not pot.exists():
        return Catalog()
    with pot.open("rb") as fh:
        return read_po(fh)


@cache
def _javascript_msgids() -> tuple[str, ...]:
    """The catalogue's strings that the app's JavaScript uses (their source is a .js file)."""
    return tuple(
        str(m.id)
        for m in _template()
        if m.id and isinstance(m.id, str) and any(loc.endswith(".js") for loc, _ in m.locations)
    )


def javascript_catalogue() -> dict[str, str]:
    """English text -> this page's language, for the strings our JavaScript shows; every page
    carries it as JSON in a meta tag and `wabulkText()` (static/js/i18n.js) looks them up."""
    if current_language() == DEFAULT:
        return {}
    out = {}
    for msgid in _javascript_msgids():
        text = gettext(msgid)
        if text != msgid:
            out[msgid] = text
    return out


# --- countries, named in the reader's language ---


def _sort_key(name: str) -> str:
    """Accents aside, as a reader looks a name up ("África do Sul" among the A's)."""
    plain = unicodedata.normalize("NFKD", name)
    return "".join(c for c in plain if not unicodedata.combining(c)).casefold()


def country_choices(choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """("IN", "India (+91)") with the country named in the reader's language (Babel's names)
    and sorted again for it; English keeps the list as it is."""
    if current_language() == DEFAULT:
        return choices
    names = _locale(current_language()).territories
    out = []
    for code, label in choices:
        english, sep, dial = label.rpartition(" (")
        out.append((code, f"{names.get(code, english)} ({dial}" if sep else label))
    return sorted(out, key=lambda item: _sort_key(item[1]))


@cache
def _english_countries() -> dict[str, str]:
    """Babel's English country name -> its code, and ours (phonenumbers' regions) too."""
    from ..contacts.phones import region_name  # phones imports nothing of the web

    out = {str(name): code for code, name in _locale("en").territories.items() if len(code) == 2}
    for code in _locale("en").territories:
        if len(code) == 2:
            out.setdefault(region_name(code), code)
    return out


def country_name(english: str) -> str:
    """A country named in English by our sentences ("too short for Brazil"), in the reader's
    language; anything else as it is."""
    code = _english_countries().get(english)
    if code is None:
        return english
    return str(_locale(current_language()).territories.get(code, english))


# --- stored English sentences, read back in the reader's language (wabulk.words) ---

_PLACEHOLDER = re.compile(r"%\((\w+)\)([sd])")


_NUMBER = re.compile(r"-?\d+")


@dataclass(frozen=True)
class _Pattern:
    """A sentence with values, as its English reads: the fixed pieces around the values."""

    pieces: tuple[str, ...]  # one more than `names`: before, between and after the values
    names: tuple[str, ...]
    msgid: str | tuple[str, str]
    numbers: frozenset[str]  # the %(name)d placeholders (their values go back as ints)
    weight: int  # fixed characters: the most specific sentence is tried first

    def match(self, text: str) -> dict[str, str] | None:
        """The values, each piece found at its first place after the one before: one pass
        over the text whatever it holds (a pattern with backtracking could take time in the
        power of the number of values on a hostile name)."""
        head, tail = self.pieces[0], self.pieces[-1]
        end = len(text) - len(tail)
        if not (text.startswith(head) and text.endswith(tail)):
            return None
        values: dict[str, str] = {}
        at = len(head)
        for i, name in enumerate(self.names):
            if i + 1 < len(self.names):
                cut = text.find(self.pieces[i + 1], at + 1, end)
                if cut < 0:
                    return None
                value, at = text[at:cut], cut + len(self.pieces[i + 1])
            else:
                value = text[at:end]
            if not value or (name in self.numbers and not _NUMBER.fullmatch(value)):
                return None
            if values.setdefault(name, value) != value:  # a value named twice is said twice
                return None
        return values


def _pattern(msgid: str, owner: str | tuple[str, str]) -> _Pattern | None:
    """The pattern of a sentence with values, or None when its fixed text could claim other
    text: values joined by one word ("%(a)s and %(b)s"), or two values side by side."""
    parts = _PLACEHOLDER.split(msgid)
    pieces = tuple(p.replace("%%", "%") for p in parts[0::3])
    names, kinds = tuple(parts[1::3]), parts[2::3]
    words = " ".join(pieces).split()
    if len(words) < 2 and (not words or words[0].isalpha()):
        return None
    if any(not piece for piece in pieces[1:-1]):
        return None
    numbers = frozenset(n for n, k in zip(names, kinds, strict=True) if k == "d")
    return _Pattern(pieces, names, owner, numbers, sum(map(len, pieces)))


_Fixed = dict[str, str | tuple[str, str]]


@cache
def _sentences() -> tuple[_Fixed, dict[str, list[_Pattern]], list[_Pattern]]:
    """From messages.pot: fixed sentences, and patterns for those with values, filed under
    their first word (or loose, when they start with a value)."""
    fixed: _Fixed = {}
    by_word: dict[str, list[_Pattern]] = {}
    loose: list[_Pattern] = []
    for message in _template():
        if not message.id or message.context:  # a word in context is found with pgettext only
            continue
        forms = message.id if isinstance(message.id, tuple) else (message.id,)
        for form in forms:
            if not _PLACEHOLDER.search(form):
                english = form.replace("%%", "%") if message.python_format else form
                fixed.setdefault(english, message.id if isinstance(message.id, tuple) else form)
                continue
            pattern = _pattern(form, message.id)
            if pattern is None:
                continue
            # Filed under the first word only when the sentence's own text completes it
            # ("row %(n)s" under "row"; "%(name)s was…" and "row%(n)s" loose).
            prefix = pattern.pieces[0]
            head = prefix.split(None, 1)
            whole = len(head) == 2 or bool(head and prefix[-1:].isspace())
            (by_word.setdefault(head[0], []) if whole else loose).append(pattern)
    for patterns in [*by_word.values(), loose]:
        patterns.sort(key=lambda p: -p.weight)
    return fixed, by_word, loose


def _nested(value: str, depth: int) -> str | None:
    """A sentence of ours inside another; quoted there without its full stop ("Opted out
    (Replied STOP)") it is read as the sentence and quoted the same way."""
    said = translated(value, depth)
    if said != value or value.endswith("."):
        return said
    whole = translated(value + ".", depth)
    return value if whole == value + "." else whole.rstrip(".।")  # type: ignore[union-attr]


def translated(text: str | None, _depth: int = 0) -> str | None:
    """`text`, made in English from a catalogue sentence (wabulk.words), in the reader's
    language; text that is not one of ours (what a user typed, older wording) is kept as is."""
    if not text or current_language() == DEFAULT or _depth > 3:
        return text
    fixed, by_word, loose = _sentences()
    if text in fixed:
        msgid = fixed[text]
        return ngettext(msgid[0], msgid[1], 1) if isinstance(msgid, tuple) else gettext(msgid)
    words = text.split(None, 1)
    candidates = by_word.get(words[0], []) if words else []
    for pattern in [*candidates, *loose]:
        found = pattern.match(text)
        if found is None:
            continue
        values: dict[str, object] = {}
        for name, value in found.items():
            if name in pattern.numbers:
                values[name] = int(value)
            elif name in NESTED:
                values[name] = _nested(value, _depth + 1)
            elif name in COUNTRY:
                values[name] = country_name(value)
            else:
                values[name] = value
        if isinstance(pattern.msgid, tuple):
            num = int(values.pop("num", 1))  # type: ignore[call-overload]
            return ngettext(pattern.msgid[0], pattern.msgid[1], num, **values)
        return gettext(pattern.msgid, **values)
    return text


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, locale_selector=select_locale)
    app.before_request(_take_lang_choice)
    app.after_request(_remember_lang_choice)
    app.jinja_env.filters["number"] = _number_filter
    app.jinja_env.filters["decimal"] = _decimal_filter
    app.jinja_env.filters["percent"] = _percent_filter
    app.jinja_env.globals.update(
        languages=LANGUAGES,
        current_language=current_language,
        javascript_catalogue=javascript_catalogue,
        number_locale=lambda: str(format_locale()).replace("_", "-"),
    )
    app.jinja_env.filters["translated"] = translated
