"""The import page sent without a file says only that a file is needed: the sentence about a
file over the size limit is not on the page (app.js writes it when a chosen file is too
large). In every language, on SQLite and PostgreSQL."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from tests.analytics_support import signed_in
from tests.conftest import csrf_from
from wabulk.models import Role, User

NEEDS_A_FILE = {
    None: "Choose a file to upload.",
    "pt_BR": "Escolha um arquivo para enviar.",
    "hi": None,
    "es": None,
    "id": None,
}


class _Shown(HTMLParser):
    """The text a reader sees: no attributes, nothing inside [hidden], scripts or templates."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hiding: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        hides = self.hiding or "hidden" in dict(attrs) or tag in ("script", "template", "style")
        if hides and tag not in ("input", "meta", "link", "br", "img"):
            self.hiding.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.hiding and self.hiding[-1] == tag:
            self.hiding.pop()

    def handle_data(self, data: str) -> None:
        if not self.hiding:
            self.parts.append(data)


def _shown(page: str) -> str:
    parser = _Shown()
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split())


@pytest.mark.parametrize("language", [None, "pt_BR", "hi", "es", "id"])
def test_no_file_is_refused_without_a_word_about_its_size(dual, language) -> None:
    app, db = dual
    client = signed_in(app, db, Role.OPERATOR)
    with db.session() as session:
        user = session.scalar(select(User).where(User.email == "operator-utc@example.com"))
        assert user is not None
        user.language = language
    token = csrf_from(client.get("/contacts/imports/new").get_data(as_text=True))
    response = client.post(
        "/contacts/imports/new",
        data={"csrf_token": token, "kind": "contacts"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    shown = _shown(page)
    assert 'data-testid="form-error"' in page
    if NEEDS_A_FILE[language]:
        assert NEEDS_A_FILE[language] in shown
    # Neither the English sentence nor its translation, whatever the language.
    assert "larger than" not in shown and "mais de" not in shown, shown
    # The sentence app.js shows for a file too large is still given to it, translated.
    assert "data-too-large-text=" in page
    if language == "pt_BR":
        assert 'data-too-large-text="Este arquivo tem mais de' in page
