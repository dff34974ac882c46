"""Every page in every language, in real Chromium at a 1280 px desktop and a 390 px phone:
a screenshot of each in tests/artifacts/languages/<language>/ to look at, no page wider than
the phone, and no catalogue sentence left in English in what the page's scripts write.

- One server on one database filled as tests/page_tour.py fills it; the signed-out pages
  (first run, sign-in) in each language through their own language links.
- Portuguese and Indonesian run about 30% longer than English and Hindi needs its own font
  (Debian's fonts-noto-core, installed by `make browsers`): a layout that breaks shows here.
- Slow (about 450 screenshots): `make test-slow`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from wabulk import migrate
from wabulk.app import create_app
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.models import User

from ..integration.test_i18n_every_page import shop_words
from ..integration.test_i18n_groundwork import untranslated
from ..integration.test_page_words import TECHNICAL_PAGES
from ..page_tour import ADMIN_EMAIL, FRAGMENTS, PASSWORD, page_urls, seed
from ..support import serving_database
from .conftest import sign_in
from .test_accessibility import FITS, OVERFLOW

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LANGUAGES = ("en", "hi", "pt_BR", "es", "id")
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 860}
# The name a URL's screenshot is saved under: its path, readable as a file name.
SAFE = str.maketrans({"/": "_", "?": "_", "=": "-", "&": "_"})


@pytest.fixture
def instance(tmp_path: Path) -> tuple[Database, Settings]:
    settings = Settings(
        instance_path=tmp_path / "instance", secret_key="lang-" + "k" * 40, worker=False
    ).resolved()
    Path(settings.instance_path).mkdir(parents=True, exist_ok=True)
    db = Database(f"sqlite:///{settings.instance_path / 'wabulk.db'}")
    migrate.upgrade(db.engine)
    return db, settings


def _name(url: str) -> str:
    return (url.strip("/").translate(SAFE) or "dashboard")[:90]


def _look(page, folder: Path, name: str, language: str, problems: list[str], shop=None) -> None:  # type: ignore[no-untyped-def]
    """Screenshots at both widths; what is left in English (the shop's own words aside) and
    what sticks out of a phone's screen go into `problems`."""
    page.wait_for_load_state("load")
    where = f"[{language}] {name}"
    if language != "en" and shop is not None:
        html = shop.sub(" | ", page.content())
        problems += [f"{where}: {s!r}" for s in untranslated(html, language)]
    page.screenshot(path=str(folder / f"{name}-1280.png"), full_page=True)
    page.set_viewport_size(PHONE)
    try:  # charts redraw for the new width a frame or two later
        page.wait_for_function(FITS, arg=PHONE["width"], timeout=5_000)
    except PlaywrightTimeout:
        wide = page.evaluate(OVERFLOW, PHONE["width"])
        problems.append(f"{where}: wider than a 390 px phone: {', '.join(wide)}")
    page.screenshot(path=str(folder / f"{name}-390.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def test_every_page_in_every_language_fits_and_is_translated(browser, artifacts, instance) -> None:
    db, settings = instance
    app = create_app(settings, database_url=str(db.engine.url))
    problems: list[str] = []
    with serving_database(db, settings) as server:
        page = browser.new_page()
        try:
            for language in LANGUAGES:
                folder = artifacts / "languages" / language
                folder.mkdir(parents=True, exist_ok=True)
                page.goto(f"{server.url}/setup?lang={language}")
                _look(page, folder, "setup", language, problems, re.compile("(?!)"))
            seeded = seed(db, Path(settings.instance_path))
            urls = [(e, u) for e, u in page_urls(app, seeded) if e not in FRAGMENTS]
            assert len(urls) > 40
            shop = shop_words(db)
            for language in LANGUAGES:
                folder = artifacts / "languages" / language
                page.context.clear_cookies()
                page.goto(f"{server.url}/login?lang={language}")
                _look(page, folder, "login", language, problems, shop)
                with db.session() as session:
                    session.query(User).filter_by(email=ADMIN_EMAIL).one().language = language
                    session.commit()
                page.goto(f"{server.url}/login?lang=")
                sign_in(page, server.url, ADMIN_EMAIL, PASSWORD)
                seen: set[str] = set()
                for endpoint, url in urls:
                    name = _name(url)
                    if name in seen:
                        continue
                    seen.add(name)
                    page.goto(server.url + url)
                    # The API reference stays English below its own words (for programmers).
                    said = None if endpoint in TECHNICAL_PAGES else shop
                    _look(page, folder, name, language, problems, said)
        finally:
            page.close()
            app.extensions["wabulk.db"].dispose()
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:200])
