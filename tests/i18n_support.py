"""What the areas' translation tests share: the page tour's shop, signed in as its admin, and
that admin's language."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import login
from tests.page_tour import ADMIN_EMAIL, PASSWORD, Seeded, seed
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.models import User


def speak(db: Database, language: str | None) -> None:
    """The tour's admin reads in `language` (None: the browser's, English here)."""
    with db.session() as session:
        session.query(User).filter_by(email=ADMIN_EMAIL).one().language = language
        session.commit()


def signed_in_tour(app: Flask, db: Database, settings: Settings) -> tuple[FlaskClient, Seeded]:
    """The page tour's data, and a client signed in as its admin; a test module takes it as its
    fixture with `tour = pytest.fixture(signed_in_tour, name="tour")`."""
    seeded = seed(db, Path(settings.instance_path))
    client = app.test_client()
    assert login(client, ADMIN_EMAIL, PASSWORD).status_code == 302
    return client, seeded


def page(client: FlaskClient, url: str) -> str:
    """A page that answers 200, as text."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)
