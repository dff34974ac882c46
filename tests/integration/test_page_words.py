"""No programmer words reach a shop owner: every page, every form's answer, every activity
line and every message written in the code is read for internal names (the dispatcher, a
command-line flag, a channel's code name, a Python value, a backtick…).

- Pages come from the app's URL map (tests/page_tour.py), filled with the demo data and a
  sender of each kind, so a new page is read without being listed here.
- Every form on those pages is sent as it stands (its defaults: mostly refused, so the
  error messages are read too), and the page it leads to is read with its flash.
- The API's reference page (/api/docs) is for the programmer connecting another system:
  field names and JSON there are what they must type, so it is not read for these words.
On SQLite and PostgreSQL.
"""

from __future__ import annotations

import ast
import dataclasses
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from tests.page_tour import ADMIN_EMAIL, PASSWORD, page_urls, seed
from tests.page_words import internal_terms, visible_text
from wabulk import migrate
from wabulk.app import create_app
from wabulk.auth import service as users
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.models import Event, Role

from ..conftest import login

SRC = Path(__file__).resolve().parents[2] / "src" / "wabulk"
TECHNICAL_PAGES = {"api_docs.docs"}
# Forms sent last: they take the signed-in session or the demo data the others need.
LAST = ("demo.remove", "settings.end_other_sessions", "settings.sign_out_user", "auth.logout")
# Calls whose message a person reads (flash, an Event's text, a refusal from a service).
MESSAGE_CALLS = {"flash", "ValidationError", "DomainError", "Conflict", "NotFound"}
MESSAGE_CALLS |= {"PermissionDenied"}
# Messages only the command line prints, where its own flags are the right words.
COMMAND_LINE_ONLY = {("contacts/mapping.py", "apply_overrides")}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A Cloud API check sent by a form must not reach Meta: nothing listens on port 9.
    return dataclasses.replace(settings, cloud_api_url="http://127.0.0.1:9")


def _signed_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert login(client, ADMIN_EMAIL, PASSWORD).status_code == 302
    return client


def _words(html: str, where: str) -> list[str]:
    return [f"{where}: {hit}" for hit in internal_terms(visible_text(html))]


# --- forms, as a browser would send them untouched ------------------------------------


@dataclasses.dataclass
class Form:
    action: str
    fields: list[tuple[str, str]]
    buttons: list[tuple[str, str]]  # named submit buttons: one submission each
    has_file: bool = False


class _Forms(HTMLParser):
    """POST forms with what the browser would send: defaults, checked boxes, first options."""

    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._chosen = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            if a.get("method", "get").lower() == "post":
                self._form = Form(a.get("action") or self.page_url, [], [])
            return
        form = self._form
        if form is None or "disabled" in a:
            return
        name, kind = a.get("name", ""), a.get("type", "text" if tag == "input" else "").lower()
        if tag == "button" or (tag == "input" and kind in ("submit", "image")):
            if kind in ("submit", "", "image") and name:
                form.buttons.append((name, a.get("value", "")))
        elif tag == "input" and name:
            if kind == "file":
                form.has_file = True
            elif kind not in ("checkbox", "radio") or "checked" in a:
                form.fields.append((name, a.get("value", "on" if kind else "")))
        elif tag == "textarea" and name:
            form.fields.append((name, ""))
        elif tag == "select" and name:
            self._select, self._chosen = name, False
        elif tag == "option" and self._select and not self._chosen:
            form.fields.append((self._select, a.get("value", "")))
            self._chosen = True
        elif tag == "option" and self._select and "selected" in a:
            form.fields = [f for f in form.fields if f[0] != self._select]
            form.fields.append((self._select, a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None
        elif tag == "select":
            self._select = None


def _forms_of(html: str, url: str) -> list[Form]:
    parser = _Forms(url)
    parser.feed(html)
    parser.close()
    return parser.forms


def _endpoint(app: Flask, url: str) -> str:
    try:
        endpoint, _args = app.url_map.bind("localhost").match(urlsplit(url).path, method="POST")
    except HTTPException:
        return "?"
    return str(endpoint)


def _send(client: FlaskClient, form: Form, button: tuple[str, str] | None) -> str:
    data: dict[str, object] = {}
    for name, value in [*form.fields, *([button] if button else [])]:
        data.setdefault(name, [])
        data[name].append(value)  # type: ignore[attr-defined]
    response = client.post(form.action, data=data, follow_redirects=True)
    assert response.status_code < 500, (form.action, response.status_code)
    return response.get_data(as_text=True)


# --- the tests --------------------------------------------------------------------------


def _walk(  # type: ignore[no-untyped-def]
    app: Flask, client: FlaskClient, seeded, refused: tuple[int, ...] = ()
) -> tuple[list[str], dict[str, list[Form]]]:
    """Read every page; the words found and the forms met, by the endpoint they post to.

    - `refused`: statuses that are right for this visitor too (a viewer's 403 page).
    """
    problems: list[str] = []
    forms: dict[str, list[Form]] = {}
    for endpoint, url in page_urls(app, seeded):
        response = client.get(url)
        expected = 404 if endpoint == "errors.not_found" else 200
        assert response.status_code in (expected, *refused), (url, response.status_code)
        kind = response.headers.get("Content-Type", "")
        if not kind.startswith("text/html"):
            problems.append(
                f"{endpoint} ({url}) answers {kind}, not a page: if it is data for a script "
                "or a file to download, list it in NOT_PAGES in tests/page_tour.py"
            )
            continue
        html = response.get_data(as_text=True)
        if endpoint not in TECHNICAL_PAGES:
            problems += _words(html, f"{endpoint} {url}")
        for form in _forms_of(html, url):
            forms.setdefault(_endpoint(app, form.action), []).append(form)
    return problems, forms


def test_every_page_and_every_form_answer_speaks_plainly(dual, settings) -> None:
    app, db = dual
    seeded = seed(db, Path(settings.instance_path))
    client = _signed_in(app)
    problems, forms = _walk(app, client, seeded)
    with db.session() as session:
        users.create_user(session, None, "viewer@shop.example", PASSWORD, Role.VIEWER)
    viewer = app.test_client()
    assert login(viewer, "viewer@shop.example", PASSWORD).status_code == 302
    problems += [f"(as a viewer) {p}" for p in _walk(app, viewer, seeded, (403,))[0]]
    assert not problems, "internal words on pages:\n" + "\n".join(problems)

    assert len(forms) >= 25, sorted(forms)  # the walk really met the app's forms
    order = sorted(forms, key=lambda e: (e in LAST, LAST.index(e) if e in LAST else 0, e))
    for endpoint in order:
        for form in forms[endpoint][:2]:  # two rows of a table say what the rest would
            for button in form.buttons or [None]:
                html = _send(client, form, button)
                problems += _words(html, f"after sending {endpoint} ({form.action} {button})")
                if "Sign in" in html and 'name="password"' in html:
                    client = _signed_in(app)
    assert not problems, "internal words after sending forms:\n" + "\n".join(problems)

    with db.session() as session:
        texts = session.scalars(select(Event.text).order_by(Event.id)).all()
    assert len(texts) > 40
    problems = [hit for text in texts for hit in internal_terms(text)]
    assert not problems, "internal words on the Activity page:\n" + "\n".join(problems)


def test_the_signed_out_pages_speak_plainly(settings: Settings) -> None:
    """First run (setup), then the sign-in page, each also after a refused form."""
    app = create_app(settings)
    app.config["TESTING"] = True
    db: Database = app.extensions["wabulk.db"]
    migrate.upgrade(db.engine)
    try:
        client = app.test_client()
        problems = []
        for url in ("/setup", "/login"):
            response = client.get(url, follow_redirects=True)
            assert response.status_code == 200
            html = response.get_data(as_text=True)
            problems += _words(html, url)
            for form in _forms_of(html, url):
                problems += _words(_send(client, form, None), f"after sending {form.action}")
        seed(db, Path(settings.instance_path))
        html = client.get("/login").get_data(as_text=True)
        assert 'name="password"' in html
        problems += _words(html, "/login")
        for form in _forms_of(html, "/login"):
            problems += _words(_send(client, form, None), "after a wrong sign-in")
        assert not problems, "internal words on signed-out pages:\n" + "\n".join(problems)
    finally:
        db.dispose()


def _call_name(node: ast.Call) -> str:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _messages_in_code() -> list[tuple[str, int, str]]:
    """(file, line, the message's literal words) for each flash, Event and refusal."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        where = str(path.relative_to(SRC))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped: set[int] = set()
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef) and (where, fn.name) in COMMAND_LINE_ONLY:
                skipped |= {id(n) for n in ast.walk(fn)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or id(node) in skipped:
                continue
            name = _call_name(node)
            if name == "record" and len(node.args) >= 3:  # events.record(session, kind, text)
                message = node.args[2]
            elif name in MESSAGE_CALLS and node.args:
                message = node.args[0]
            else:
                continue
            words = "".join(
                n.value
                for n in ast.walk(message)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            )
            out.append((where, node.lineno, words))
    return out


def test_messages_written_in_the_code_use_no_internal_words() -> None:
    messages = _messages_in_code()
    assert len(messages) > 200  # the scan finds the app's messages
    problems = [
        f"{where}:{line}: {hit}" for where, line, words in messages for hit in internal_terms(words)
    ]
    assert not problems, "internal words in messages:\n" + "\n".join(problems)


def test_the_checker_finds_each_kind_of_internal_word() -> None:
    """The words test can fail: each kind of slip seen before is caught, plain words are not."""
    page = (
        "<p>Check that the dispatcher runs (<code>wabulk serve</code> without --no-worker).</p>"
        '<button title="Sender whatsapp_web">Go</button><td>None</td>'
        "<p>Only `linked` senders send; state SenderState.LINKED; {'a': 1}; '' is no code</p>"
        '<input type="radio" name="channel" value="dry_run"><script>var x = "dry_run";</script>'
    )
    found = " ".join(internal_terms(visible_text(page)))
    for label in (
        "the dispatcher",
        "a worker process",
        "a command-line flag",
        "a channel's code name",
        "a Python literal",
        "a raw backtick",
        "an enum's name",
        "a Python list, dict or empty text",
    ):
        assert label in found, label
    assert found.count("code name") == 1  # the radio's value and the script are not read
    assert internal_terms("'' is not a country code such as IN or US.")
    plain = "<p>None of your contacts — sent 3 of 4. Use ```monospace``` for code.</p>"
    assert internal_terms(visible_text(plain)) == []
