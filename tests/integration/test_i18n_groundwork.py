"""Translations, first steps: the language a page is in (the user's choice, the sign-in page's
choice, the browser's, English), the Profile's Language field, the catalogues complete for the
strings marked so far, and numbers and dates in each locale."""

from __future__ import annotations

import functools
import html
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient

from wabulk import app_settings
from wabulk.auth import service as users
from wabulk.auth import setup_code
from wabulk.models import Role, User
from wabulk.web import i18n

from ..conftest import PASSWORD, csrf_from, get_csrf, login

TRANSLATIONS = i18n.TRANSLATIONS
LOCALES = ("hi", "pt_BR", "es", "id")
HINDI_NAV = ("डैशबोर्ड", "इनबॉक्स", "संपर्क", "अभियान", "सेटिंग्स")


# --- the reusable check: no English sentence from the catalogue left on a translated page ---


def _catalogue(locale: str) -> Catalog:
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=locale)


@functools.cache
def _english_patterns(locale: str, _mtime: float) -> tuple[tuple[str, str, re.Pattern[str]], ...]:
    """(msgid, its longest fixed piece, its pattern) for each sentence `locale` translates
    differently from the English (a product name kept as is is not counted)."""
    out = []
    for message in _catalogue(locale):
        # A word with a context ("is", as a segment condition) is a piece of a sentence the
        # code builds, not a sentence: the whole sentence is what a page shows.
        if not message.id or not message.string or message.context:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for msgid in ids:
            english = _english_form(msgid)
            if any(_english_form(s) == english for s in strings):
                continue
            parts = re.split(r"%\(\w+\)[sd]", english)
            if len(" ".join(parts).split()) < 2:
                # One word ("Save", "admin") is looked for as the whole text of an element
                # or attribute; a word inside what a user wrote is theirs. Values joined by
                # one word ("%(a)s and %(b)s") say too little to be found.
                if len(parts) == 1:
                    out.append((msgid, "", re.compile(re.escape(english))))
                continue
            pattern = r"(?<!\w)" + r"\S+".join(re.escape(part) for part in parts) + r"(?!\w)"
            out.append((msgid, max(parts, key=len), re.compile(pattern)))
    return tuple(out)


def _whole_texts(markup: str) -> set[str]:
    """Each element's own text and each read attribute, whole."""
    said = re.findall(r'(?:aria-label|title|placeholder|data-confirm|alt)="([^"]*)"', markup)
    markup = re.sub(r"<(script|style|code)\b.*?</\1>", " ", markup, flags=re.S)
    # A choice that shows its own code (a contact field's key, as typed in a template) is a
    # code, the same in every language.
    markup = re.sub(r'<option\b[^>]*\bvalue="([^"]*)"[^>]*>\s*\1\s*</option>', " ", markup)
    pieces = re.findall(r">([^<]+)<", markup)
    return {" ".join(html.unescape(p).split()) for p in [*pieces, *said]} - {""}


def _plain(markup: str) -> str:
    """What a reader sees (and hears: labels, titles, placeholders, confirmations)."""
    said = re.findall(r'(?:aria-label|title|placeholder|data-confirm)="([^"]*)"', markup)
    markup = re.sub(r"<(script|style)\b.*?</\1>", " ", markup, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", markup)
    return " ".join(html.unescape(" ".join([text, *said])).split())


def _english_form(msgid: str) -> str:
    """A msgid as it reads on a page: tags gone, placeholders as any word."""
    return " ".join(re.sub(r"<[^>]+>", "", msgid).split())


def untranslated(page: str, locale: str) -> list[str]:
    """The catalogue's English sentences that `page` still shows, among those `locale` has a
    translation for (a translation identical to the English, such as a product name, is not
    counted)."""
    text, whole = _plain(page), _whole_texts(page)
    po = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
    # The fixed piece is looked for first: most sentences are on no given page.
    return [
        msgid
        for msgid, piece, pattern in _english_patterns(locale, po.stat().st_mtime)
        if (pattern.pattern in whole if not piece else piece in text and pattern.search(text))
    ]


_ENGLISH_WORD = re.compile(r"^[A-Za-z][a-z']*[.,;:!?]?$")


def english_runs(page: str, least: int = 4, allow: tuple[str, ...] = ()) -> list[str]:
    """Runs of `least` or more English-looking words a translated page still shows, outside
    <code>, <pre>, form values and what `allow` names (user data, product names): a review
    aid for strings not yet marked at all, which `untranslated` cannot see."""
    markup = re.sub(r"<(code|pre|textarea|option)\b.*?</\1>", " | ", page, flags=re.S)
    text = _plain(markup)
    for phrase in allow:
        text = text.replace(phrase, " | ")
    runs, current = [], []
    for word in text.split():
        if _ENGLISH_WORD.match(word):
            current.append(word)
            continue
        if len(current) >= least:
            runs.append(" ".join(current))
        current = []
    if len(current) >= least:
        runs.append(" ".join(current))
    return runs


def _sidebar(page: str) -> str:
    start = page.index('<header class="topbar')
    return page[start : page.index("</nav>", page.index('id="sidebar"')) + 6]


# --- fixtures ---


@pytest.fixture(autouse=True, scope="module")
def _compiled() -> None:
    for locale in LOCALES:
        po = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
        mo = po.with_suffix(".mo")
        assert mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime, (
            f"{mo} is missing or older than its .po: `make install` (or make run / make test) "
            "compiles the catalogues"
        )


def _get(client: FlaskClient, url: str, language: str | None = None) -> str:
    headers = {"Accept-Language": language} if language else {}
    response = client.get(url, headers=headers)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def _lang(page: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', page)
    assert match
    return match.group(1)


# --- which language ---


def test_the_browser_language_is_followed_among_ours_else_english(client, make_user) -> None:
    make_user(Role.ADMIN)
    assert _lang(_get(client, "/login")) == "en"
    assert _lang(_get(client, "/login", "hi-IN,hi;q=0.9,en;q=0.8")) == "hi"
    assert _lang(_get(client, "/login", "pt-PT,pt;q=0.9")) == "pt-BR"
    assert _lang(_get(client, "/login", "es-MX")) == "es"
    assert _lang(_get(client, "/login", "id-ID,id")) == "id"
    assert _lang(_get(client, "/login", "fr-FR,de;q=0.8")) == "en"
    page = _get(client, "/login", "hi")
    assert "wabulk में साइन इन करें" in page
    assert untranslated(page, "hi") == []


def test_a_choice_on_the_sign_in_page_is_kept_in_a_cookie_until_changed(client, make_user) -> None:
    make_user(Role.ADMIN)
    page = _get(client, "/login?lang=pt_BR", "hi")
    assert _lang(page) == "pt-BR" and "Entrar no wabulk" in page
    assert client.get_cookie(i18n.COOKIE).value == "pt_BR"
    # The cookie wins over the browser on the next visit, with no ?lang.
    assert _lang(_get(client, "/login", "hi")) == "pt-BR"
    # An unknown language changes nothing; an empty one goes back to the browser's.
    assert _lang(_get(client, "/login?lang=fr", "hi")) == "pt-BR"
    assert _lang(_get(client, "/login?lang=", "hi")) == "hi"
    assert client.get_cookie(i18n.COOKIE) is None
    # Only the sign-in and first-run pages take the choice.
    client.get("/healthz?lang=es")
    assert client.get_cookie(i18n.COOKIE) is None


def test_the_switcher_links_keep_where_the_user_was_going(client, make_user) -> None:
    make_user(Role.ADMIN)
    page = _get(client, "/login?next=/contacts")
    assert 'data-testid="language-switcher"' in page
    assert "/login?lang=hi&amp;next=/contacts" in page
    for name in i18n.LANGUAGES.values():
        assert name in page


def test_the_first_run_page_speaks_the_chosen_language(client) -> None:
    page = _get(client, "/setup?lang=es")
    assert _lang(page) == "es" and "Bienvenido a wabulk" in page
    for locale in LOCALES:
        assert untranslated(_get(client, f"/setup?lang={locale}"), locale) == [], locale
    # The form still works in Spanish and its error is in Spanish.
    client.get("/setup?lang=es")
    with client.application.extensions["wabulk.db"].session() as session:
        code = setup_code.issue(session)
        session.commit()
    response = client.post(
        "/setup",
        data={
            "setup_code": code,
            "email": "owner@example.com",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "csrf_token": get_csrf(client, "/setup"),
        },
    )
    assert response.status_code == 400
    assert "Elige tu país" in response.get_data(as_text=True)


def test_the_users_own_language_wins_over_cookie_and_browser(client, make_user, db) -> None:
    user = make_user(Role.OPERATOR)
    client.get("/login?lang=es")
    assert login(client, user.email).status_code == 302
    # No language of their own yet: the sign-in page's choice, then the browser's.
    assert _lang(_get(client, "/", "hi")) == "es"
    with db.session() as session:
        session.get(User, user.id).language = "id"
        session.commit()
    page = _get(client, "/", "hi")
    assert _lang(page) == "id" and "Kotak masuk" in page


# --- Settings → Profile ---


def test_the_profile_saves_a_language_and_refuses_one_we_do_not_have(dual) -> None:
    app, db = dual
    client = app.test_client()
    with db.session() as session:
        user = users.create_user(session, None, "asha@example.com", PASSWORD, Role.VIEWER)
    assert login(client, user.email).status_code == 302
    page = _get(client, "/settings/", "en")
    assert 'data-testid="language-form"' in page
    for name in ["Same as my browser", *i18n.LANGUAGES.values()]:
        assert f">{name}</option>" in page
    token = csrf_from(page)

    response = client.post("/settings/language", data={"language": "fr", "csrf_token": token})
    assert response.status_code == 400
    assert "Not a valid choice" in response.get_data(as_text=True)
    response = client.post("/settings/language", data={"language": "hi"})  # no CSRF token
    assert response.status_code == 400
    with db.session() as session:
        assert session.get(User, user.id).language is None

    response = client.post(
        "/settings/language", data={"language": "hi", "csrf_token": token}, follow_redirects=True
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    with db.session() as session:
        assert session.get(User, user.id).language == "hi"
    assert _lang(page) == "hi" and "सहेज लिया।" in page
    assert '<option selected value="hi">' in page or '<option value="hi" selected>' in page
    assert untranslated(page, "hi") == []

    client.post("/settings/language", data={"language": "", "csrf_token": token})
    with db.session() as session:
        assert session.get(User, user.id).language is None
    assert _lang(_get(client, "/settings/", "es-AR,es")) == "es"


def test_every_marked_page_is_translated_in_every_language(app: Flask, make_user, db) -> None:
    admin = make_user(Role.ADMIN)
    for locale in LOCALES:
        with db.session() as session:
            session.get(User, admin.id).language = locale
            session.commit()
        client = app.test_client()
        assert _lang(_get(client, f"/login?lang={locale}")) == locale.replace("_", "-")
        assert untranslated(_get(client, f"/login?lang={locale}"), locale) == [], locale
        assert login(client, admin.email).status_code == 302
        assert untranslated(_get(client, "/settings/"), locale) == [], locale
        for url in ("/", "/contacts/", "/campaigns", "/settings/users"):
            assert untranslated(_sidebar(_get(client, url)), locale) == [], (locale, url)


def test_a_hindi_user_reads_the_navigation_in_hindi(client, make_user, db) -> None:
    user = make_user(Role.OPERATOR)
    with db.session() as session:
        session.get(User, user.id).language = "hi"
        session.commit()
    assert login(client, user.email).status_code == 302
    page = _get(client, "/", "en-US")
    nav = _sidebar(page)
    for word in HINDI_NAV:
        assert word in nav
    assert untranslated(nav, "hi") == []
    assert "%(role)s" not in page and "ऑपरेटर के रूप में साइन इन" in page


def test_the_check_finds_english_left_on_a_page(client, make_user) -> None:
    # An English page against each catalogue: the check must see the English sentences.
    make_user(Role.ADMIN)
    page = _get(client, "/login", "en")
    for locale in LOCALES:
        left = untranslated(page, locale)
        assert "Sign in to wabulk" in left and "Keep me signed in on this device" in left
    assert "Signed in as %(role)s" in untranslated("<p>Signed in as admin</p>", "hi")
    assert untranslated("<p>admin के रूप में साइन इन</p>", "hi") == []


def test_english_pages_read_as_before(client, make_user) -> None:
    user = make_user(Role.OPERATOR)
    login_page = _get(client, "/login", "en-GB")
    assert _lang(login_page) == "en"
    assert '<meta name="wabulk-i18n" content="{}" data-number-locale="en">' in login_page
    assert login(client, user.email).status_code == 302
    page = _get(client, "/settings/")
    for sentence in (
        "Signed in as operator",
        "Your account",
        "Dates and times are shown in it",
        "Use my browser's timezone",
        "Sign out my other sessions",
    ):
        assert sentence in html.unescape(page)


# --- the catalogues ---


def _source_catalogue(tmp_path: Path) -> Catalog:
    """The strings marked in the code today, extracted as `make translations` does."""
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run(
        [
            str(pybabel),
            "extract",
            "--no-wrap",
            "-F",
            "translations/babel.cfg",
            "-k",
            "lazy_gettext",
            "-k",
            "_l",
            "-k",
            "wabulkText",
            "-k",
            "N_",
            "-k",
            "said",
            "-k",
            "said_n:1,2",
            "-o",
            str(pot),
            ".",
        ],
        cwd=TRANSLATIONS.parent,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as fh:
        return read_po(fh)


def _placeholders(text: str) -> list[str]:
    return sorted(re.findall(r"%\(\w+\)[sd]|<[^>]+>", text))


class Marked(NamedTuple):
    id: str | tuple[str, ...]
    context: str | None


def catalogue_problems(ids: set, catalogue: Catalog) -> list[str]:
    """Each marked string the catalogue lacks, leaves fuzzy or empty, or translates with other
    placeholders or tags than the English (a plural's forms may drop the number of the one)."""
    problems = []
    for key in sorted(ids, key=str):
        # A word in context (pgettext) is its own entry.
        msgid, context = (key.id, key.context) if isinstance(key, Marked) else (key, None)
        message = catalogue.get(msgid, context=context)
        if message is None:
            problems.append(f"missing: {msgid!r}")
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            problems.append(f"fuzzy or empty: {msgid!r}")
            continue
        english = msgid if isinstance(msgid, tuple) else (msgid,)
        wanted = {tuple(_placeholders(text)) for text in english}
        for string in strings:
            if tuple(_placeholders(string)) not in wanted:
                problems.append(f"placeholders differ: {msgid!r} -> {string!r}")
    return problems


def test_every_catalogue_translates_every_marked_string(tmp_path: Path) -> None:
    marked = _source_catalogue(tmp_path)
    ids = {Marked(m.id, m.context) for m in marked if m.id}
    assert Marked("Sign in to wabulk", None) in ids
    assert Marked("This file is over the upload limit.", None) in ids
    with (TRANSLATIONS / "messages.pot").open("rb") as fh:
        committed = {Marked(m.id, m.context) for m in read_po(fh) if m.id}
    assert ids == committed, "messages.pot is out of date: run `make translations`"
    for locale in LOCALES:
        problems = catalogue_problems(ids, _catalogue(locale))
        assert not problems, f"{locale}: " + "; ".join(problems)


def test_the_catalogue_check_sees_missing_fuzzy_and_changed_placeholders() -> None:
    ids = {"Sign in to wabulk", "Signed in as %(role)s", "Welcome to wabulk"}
    catalogue = _catalogue("hi")
    assert catalogue_problems(ids, catalogue) == []
    catalogue["Sign in to wabulk"].flags.add("fuzzy")
    catalogue["Signed in as %(role)s"].string = "साइन इन"
    del catalogue["Welcome to wabulk"]
    assert catalogue_problems(ids, catalogue) == [
        "fuzzy or empty: 'Sign in to wabulk'",
        "placeholders differ: 'Signed in as %(role)s' -> 'साइन इन'",
        "missing: 'Welcome to wabulk'",
    ]


def test_the_javascript_strings_reach_the_page_in_its_language(client, make_user, db) -> None:
    user = make_user(Role.OPERATOR)
    with db.session() as session:
        session.get(User, user.id).language = "pt_BR"
        session.commit()
    assert login(client, user.email).status_code == 302
    page = _get(client, "/contacts/")
    match = re.search(
        r'<meta name="wabulk-i18n" content="([^"]*)" data-number-locale="pt-BR">', page
    )
    assert match
    shipped = json.loads(html.unescape(match.group(1)))
    assert (
        shipped["This file is over the upload limit."] == "Este arquivo passa do limite de envio."
    )
    # Only the JavaScript's own sentences travel with every page, not the whole catalogue.
    assert "Sign in" not in shipped


# --- numbers and dates ---


def test_numbers_follow_the_locale() -> None:
    assert i18n.format_number(100000, "hi") == "1,00,000"
    assert i18n.format_number(12345678, "hi") == "1,23,45,678"
    assert i18n.format_number(100000, "en_IN") == "1,00,000"
    assert i18n.format_number(100000, "en") == "100,000"
    assert i18n.format_number(1234567, "en") == "1,234,567"
    assert i18n.format_number(100000, "pt_BR") == "100.000"
    assert i18n.format_number(100000, "es") == "100.000"
    assert i18n.format_number(100000, "id") == "100.000"
    assert i18n.format_number(None, "en") == "—"


def test_dates_follow_the_locale_in_the_users_timezone() -> None:
    moment = datetime(2026, 3, 5, 8, 37, tzinfo=UTC)
    kolkata = moment.astimezone(ZoneInfo("Asia/Kolkata"))
    assert i18n.format_local_datetime(kolkata, "en") == "2026-03-05 14:07 IST"
    assert i18n.format_local_datetime(kolkata, "en_IN") == "2026-03-05 14:07 IST"
    assert i18n.format_local_datetime(kolkata, "hi") == "5/3/2026, 2:07 pm IST"
    sao_paulo = moment.astimezone(ZoneInfo("America/Sao_Paulo"))
    assert i18n.format_local_datetime(sao_paulo, "pt_BR") == "05/03/2026 05:37 -03"
    madrid = moment.astimezone(ZoneInfo("Europe/Madrid"))
    assert i18n.format_local_datetime(madrid, "es") == "5/3/2026, 9:37 CET"
    jakarta = moment.astimezone(ZoneInfo("Asia/Jakarta"))
    assert i18n.format_local_datetime(jakarta, "id") == "5/3/2026 15.37 WIB"


def test_pages_write_numbers_and_dates_in_the_users_locale(app: Flask, make_user, db) -> None:
    user = make_user(Role.OPERATOR)
    when = datetime(2026, 3, 5, 8, 37, tzinfo=UTC)
    with db.session() as session:
        row = session.get(User, user.id)
        row.language, row.timezone = "pt_BR", "America/Sao_Paulo"
        session.commit()
    with app.test_request_context("/"):
        from flask_login import login_user

        with db.session() as session:
            login_user(session.get(User, user.id))
            template = app.jinja_env.from_string("{{ n|number }} {{ d|datetime }}")
            assert template.render(n=100000, d=when) == "100.000 05/03/2026 05:37 -03"


def test_english_in_india_groups_digits_as_india_does(dual) -> None:
    app, db = dual
    with db.session() as session:
        user = users.create_user(session, None, "ravi@example.com", PASSWORD, Role.ADMIN)
        session.commit()
    with app.test_request_context("/", headers={"Accept-Language": "en-IN,en"}):
        from flask_login import login_user

        template = app.jinja_env.from_string("{{ 100000|number }} {{ 2500|number }}")
        with db.session() as session:
            login_user(session.get(User, user.id))
            assert template.render() == "100,000 2,500"
    with db.session() as session:
        app_settings.set_default_country(session, None, "IN")
        session.commit()
    with app.test_request_context("/"):
        from flask_login import login_user

        with db.session() as session:
            login_user(session.get(User, user.id))
            assert template.render() == "1,00,000 2,500"
