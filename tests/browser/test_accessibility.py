"""Every page passes axe-core with no serious or critical violation, signed out and in, in
real Chromium against `wabulk serve`; on a 390 px phone no page scrolls sideways, and the
text the page's scripts write says no internal word either.

- One server on one database: first-run setup while no user exists, then the demo data and
  a sender of each kind (tests/page_tour.py) and every page of the URL map.
- axe-core comes from npm (node_modules/axe-core, installed by `make vendor`); it is added
  to each page by the browser itself, so the pages' own Content-Security-Policy is unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from wabulk import migrate
from wabulk.app import create_app
from wabulk.config import Settings
from wabulk.db import Database

from ..page_tour import ADMIN_EMAIL, FRAGMENTS, PASSWORD, page_urls, seed
from ..page_words import internal_terms
from ..support import serving_database
from .conftest import sign_in

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
PHONE_WIDTH, DESKTOP = 390, {"width": 1280, "height": 860}
TECHNICAL_PAGES = {"api_docs.docs"}  # for programmers: see test_page_words.py

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      targets: v.nodes.slice(0, 4).map((n) => n.target.join(" ")),
      count: v.nodes.length,
      said: ((v.nodes[0].any[0] || v.nodes[0].all[0] || {}).message || "").slice(0, 160),
    }));
}"""
FITS = "(width) => document.documentElement.scrollWidth <= width"
# What sticks out past the right edge of a phone's screen (scrolling tables are fine).
OVERFLOW = r"""(width) => {
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.right > width + 1 && !el.closest(".table-responsive, pre, [hidden]")
        && getComputedStyle(el).position !== "fixed") {
      const classes = typeof el.className === "string" && el.className
        ? "." + el.className.trim().split(/\s+/).join(".") : "";
      out.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + classes);
    }
  }
  return out.slice(0, 5);
}"""


@pytest.fixture
def instance(tmp_path: Path) -> tuple[Database, Settings]:
    settings = Settings(
        instance_path=tmp_path / "instance", secret_key="axe-" + "k" * 40, worker=False
    ).resolved()
    Path(settings.instance_path).mkdir(parents=True, exist_ok=True)
    db = Database(f"sqlite:///{settings.instance_path / 'wabulk.db'}")
    migrate.upgrade(db.engine)
    return db, settings


def _check(page, where: str, problems: list[str], *, words: bool = True) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_load_state("load")
    for v in page.evaluate(RUN_AXE):
        targets = ", ".join(v["targets"])
        problems.append(
            f"{where}: {v['id']} ({v['impact']}, {v['count']}x) {v['help']}: {targets}"
            f" — {v['said']}"
        )
    if words:
        problems += [f"{where}: {hit}" for hit in internal_terms(page.inner_text("body"))]
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
    try:  # charts redraw for the new width a frame or two later
        page.wait_for_function(FITS, arg=PHONE_WIDTH, timeout=5_000)
        wide = []
    except PlaywrightTimeout:
        wide = page.evaluate(OVERFLOW, PHONE_WIDTH)
    if wide:
        problems.append(f"{where}: wider than a {PHONE_WIDTH} px phone: {', '.join(wide)}")
    page.set_viewport_size(DESKTOP)


def test_every_page_passes_axe_signed_out_and_in(browser, instance) -> None:
    assert AXE.exists(), f"{AXE} is missing: run `make vendor`"
    db, settings = instance
    app = create_app(settings, database_url=str(db.engine.url))
    problems: list[str] = []
    with serving_database(db, settings) as server:
        page = browser.new_page()
        page.add_init_script(path=str(AXE))
        try:
            page.goto(server.url + "/setup")
            _check(page, "/setup", problems)

            seeded = seed(db, Path(settings.instance_path))
            page.goto(server.url + "/login")
            _check(page, "/login", problems)
            sign_in(page, server.url, ADMIN_EMAIL, PASSWORD)

            urls = [(e, u) for e, u in page_urls(app, seeded) if e not in FRAGMENTS]
            assert len(urls) > 30
            for endpoint, url in urls:
                page.goto(server.url + url)
                _check(page, f"{endpoint} {url}", problems, words=endpoint not in TECHNICAL_PAGES)
        finally:
            page.close()
            app.extensions["wabulk.db"].dispose()
    assert not problems, "accessibility problems:\n" + "\n".join(problems)
