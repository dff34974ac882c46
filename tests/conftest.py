"""Shared fixtures: settings on a fresh instance folder, the app, personas, databases.

- Every test gets its own SQLite file; PostgreSQL tests get their own schema.
- A test that asks for a migrated database (`migrated_db`, `dual`, `app`) gets one in the
  state Alembic leaves it, without running Alembic again: a copy of a SQLite file migrated
  once per test process, or a PostgreSQL schema migrated once and put back after each test
  (see MigratedSchemas). Tests of the migrations themselves use `database_url`, which is
  empty unless the test also asks for `migrated_db` or `dual`.
- PostgreSQL is used when reachable (WABULK_TEST_POSTGRES_URL, default the local server);
  under CI=true an unreachable server fails the run instead of skipping.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import make_url
from werkzeug.routing import Rule

from wabulk import migrate
from wabulk.app import create_app
from wabulk.auth import passwords
from wabulk.auth import service as users
from wabulk.config import Settings
from wabulk.db import Database
from wabulk.models import Base, Role, User

from .fakes.cloud_api import FakeCloudApi
from .fakes.whatsapp_web import FakeWhatsAppWeb
from .migrated_schemas import MigratedSchemas

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSWORD = "correct horse battery"


def postgres_url() -> str:
    return os.environ.get("WABULK_TEST_POSTGRES_URL", DEFAULT_PG_URL)


def _postgres_available() -> str | None:
    """None when reachable, else the reason."""
    try:
        engine = create_engine(postgres_url())
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return str(exc).splitlines()[0]
    return None


@pytest.fixture(scope="session")
def postgres_server() -> str:
    reason = _postgres_available()
    if reason is not None:
        message = f"PostgreSQL at {postgres_url()} is not reachable: {reason}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    return postgres_url()


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A fresh, empty schema on the PostgreSQL server, as a URL whose connections see only it;
    dropped afterwards.

    A schema, not a database: PostgreSQL checkpoints on every DROP DATABASE, which made each
    PostgreSQL test's setup and teardown take seconds once earlier tests had written much.
    """
    name = f"wabulk_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    url = make_url(postgres_server).update_query_dict(
        {"options": f"-csearch_path={name}", "application_name": name}
    )
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            # Connections a test left open (a killed server's pool) would hold locks.
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def migrated_schemas(postgres_server: str) -> Iterator[MigratedSchemas]:
    schemas = MigratedSchemas(postgres_server)
    yield schemas
    schemas.close()


@pytest.fixture
def migrated_postgres_schema(migrated_schemas: MigratedSchemas) -> Iterator[str]:
    """Like postgres_database, but migrated to head (and put back afterwards)."""
    name = migrated_schemas.take()
    url = migrated_schemas.url(name)
    _MIGRATED_URLS.add(url)
    try:
        yield url
    finally:
        migrated_schemas.give_back(name)


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Argon2id with the smallest cost it allows, in this process, for every test.

    The real cost (64 MiB, three passes, four lanes) took a tenth of a second a hash on an
    idle machine and over a second on a busy one, and most tests make a user and sign in.
    Hashes still go through Argon2id and are checked the same way; servers a test starts
    in a process of their own keep the real cost (and rehash a cheap hash at sign-in).
    """
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", cheap)
        # Unknown accounts are checked against this, to take as long as known ones.
        patch.setattr(passwords, "_DUMMY_HASH", cheap.hash("not-a-real-password"))
        yield


@pytest.fixture(scope="session", autouse=True)
def _shared_url_builders() -> Iterator[None]:
    """Werkzeug's URL builders compiled once per test process, not once per app.

    Building an app compiles two Python functions per route (about 200 routes) from an
    AST: four fifths of `create_app`'s time, and over a thousand tests build an app. A
    builder is a function of the rule's parsed parts, its defaults and whether unknown
    arguments are appended; it reads everything else from the rule it is bound to, so one
    compiled for an equal rule of an earlier app builds the same URLs.
    """
    original = Rule._compile_builder
    cache: dict[tuple[object, ...], Callable[..., tuple[str, str]]] = {}

    def compile_builder(self: Rule, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        defaults = self.defaults or {}
        key = (
            append_unknown,
            tuple(self._trace),
            tuple(defaults),
            tuple(
                (data, self._converters[data].to_url(defaults[data]))
                for dynamic, data in self._trace
                if dynamic and data in defaults
            ),
        )
        builder = cache.get(key)
        if builder is None:
            builder = cache[key] = original(self, append_unknown)
        return builder

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Rule, "_compile_builder", compile_builder)
        yield


@pytest.fixture(autouse=True)
def _forget_old_engines() -> Iterator[None]:
    """After each test, empty SQLAlchemy's caches keyed by an engine's dialect.

    The ORM's per-mapper statement caches hold up to 100 entries per mapper, PostgreSQL's
    reflection one 128: one app has one engine, but a test run makes hundreds, and every
    one stayed reachable (with all the types it had compiled) until pushed out. Two million
    live objects by mid-run made each garbage collection take over a second.
    """
    yield
    for mapper in Base.registry.mappers:
        mapper._compiled_cache.clear()
    PGDialect._has_multi_table_query.cache_clear()  # an lru_cache keyed by the dialect


def _collect_leftovers() -> None:
    """Finalise what earlier tests left for the garbage collector before building an app.

    CPython 3.11.7 miscounts its AST recursion check when a finaliser (an unclosed
    streamed response, a dropped database's connection) runs inside `ast.parse`, which
    Werkzeug calls while compiling the app's routes; collecting first keeps that away.

    The first call also freezes what survives it (the imported modules, over 250,000
    objects), so that later collections look only at what tests made since: a full
    collection took a tenth of a second idle and over a second on a busy machine.
    """
    gc.collect()
    if not _frozen:
        gc.freeze()
        _frozen.append(True)


_frozen: list[bool] = []


# URLs of databases this process handed out already migrated, so fixtures skip Alembic.
_MIGRATED_URLS: set[str] = set()


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per test process; tests get copies.

    Alembic took a fifth of a second a test (more on a busy machine), for over a
    thousand tests; copying the file takes a millisecond.
    """
    path = tmp_path_factory.mktemp("migrated") / "wabulk.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    db.dispose()
    assert not path.with_name(path.name + "-wal").exists(), "the template kept a WAL"
    return path


def _copy_migrated_sqlite(url: str, template: Path) -> bool:
    """Put a migrated copy where a SQLite URL points, if it points at a file not made yet."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return False
    path = Path(parsed.database)
    if parsed.database == ":memory:" or path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    _MIGRATED_URLS.add(url)
    return True


def _wants_migrated(request: pytest.FixtureRequest) -> bool:
    return "migrated_db" in request.fixturenames or "dual" in request.fixturenames


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run the test once on SQLite and once on PostgreSQL.

    Empty, unless the test also asks for `migrated_db` or `dual`: then already migrated.
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'wabulk.db'}"
        if _wants_migrated(request):
            _copy_migrated_sqlite(url, request.getfixturevalue("migrated_sqlite_template"))
        return url
    if _wants_migrated(request):
        return request.getfixturevalue("migrated_postgres_schema")  # type: ignore[no-any-return]
    return request.getfixturevalue("postgres_database")  # type: ignore[no-any-return]


def _upgrade_unless_migrated(db: Database, url: str) -> None:
    if url not in _MIGRATED_URLS:
        migrate.upgrade(db.engine)


@pytest.fixture
def migrated_db(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    _upgrade_unless_migrated(db, database_url)
    yield db
    db.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        instance_path=tmp_path / "instance",
        secret_key="test-secret-key-not-for-production",
        worker=False,
        log_level="INFO",
    ).resolved()


@pytest.fixture
def app(settings: Settings, migrated_sqlite_template: Path) -> Iterator[Flask]:
    _collect_leftovers()
    _copy_migrated_sqlite(settings.database_url, migrated_sqlite_template)
    app = create_app(settings)
    app.config["TESTING"] = True
    db: Database = app.extensions["wabulk.db"]
    _upgrade_unless_migrated(db, settings.database_url)
    yield app
    db.dispose()


@pytest.fixture
def db(app: Flask) -> Database:
    return app.extensions["wabulk.db"]  # type: ignore[no-any-return]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_user(db: Database) -> Callable[..., User]:
    """Personas: make_user(Role.OPERATOR) gives an active operator with PASSWORD."""
    counter = iter(range(1, 10_000))

    def factory(role: Role = Role.OPERATOR, email: str | None = None) -> User:
        email = email or f"{role.value}{next(counter)}@example.com"
        with db.session() as session:
            return users.create_user(session, None, email, PASSWORD, role)

    return factory


_CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def get_csrf(client: FlaskClient, url: str = "/login") -> str:
    return csrf_from(client.get(url).get_data(as_text=True))


def login(client: FlaskClient, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    token = get_csrf(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def as_role(client: FlaskClient, make_user: Callable[..., User]) -> Callable[[Role], User]:
    """Sign the test client in as a new user of the given role."""

    def sign_in(role: Role) -> User:
        user = make_user(role)
        response = login(client, user.email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return user

    return sign_in


@pytest.fixture
def dual(database_url: str, settings: Settings) -> Iterator[tuple[Flask, Database]]:
    """The app on SQLite and on PostgreSQL."""
    _collect_leftovers()
    app = create_app(settings, database_url=database_url)
    app.config["TESTING"] = True
    db: Database = app.extensions["wabulk.db"]
    _upgrade_unless_migrated(db, database_url)
    yield app, db
    db.dispose()


# --- the WhatsApp Web stand-in (tests/fakes/whatsapp_web), one server per test module ---


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeWhatsAppWeb]:
    fake = FakeWhatsAppWeb()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_server: FakeWhatsAppWeb) -> FakeWhatsAppWeb:
    """The stand-in, reset: logged out, no messages, no faults."""
    fake_server.reset()
    return fake_server


# --- the Cloud API stand-in (tests/fakes/cloud_api), one server per test module ----------


@pytest.fixture(scope="module")
def fake_cloud_server() -> Iterator[FakeCloudApi]:
    fake = FakeCloudApi()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_cloud(fake_cloud_server: FakeCloudApi) -> FakeCloudApi:
    """The stand-in, reset: no numbers, templates, messages, media or faults."""
    fake_cloud_server.reset()
    return fake_cloud_server


# Long checks whose twin stays in `make test` (the same test on the other database, or a
# shorter form of the same load): run by `make test-slow`, to keep `make test` near 15 min.
SLOW_TWINS = {
    "tests/integration/test_load_browse.py::"
    "test_fifty_clients_browse_a_20000_message_campaign_without_an_error[quick]",
    "tests/integration/test_cloud_scenarios.py::test_each_class_of_error_ends_as_meta_means[postgres]",
    "tests/integration/test_api_schemathesis.py::test_every_operation_answers_as_documented[postgres]",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid in SLOW_TWINS:
            item.add_marker(pytest.mark.slow)
