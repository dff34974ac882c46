"""The Alembic migration builds exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from wabulk import migrate
from wabulk.db import Database
from wabulk.models import Base


def test_upgrade_matches_the_models_exactly(migrated_db: Database) -> None:
    with migrated_db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
    assert migrate.is_up_to_date(migrated_db.engine)


def test_every_table_of_the_data_model_exists(migrated_db: Database) -> None:
    tables = set(inspect(migrated_db.engine).get_table_names())
    expected = {
        "users",
        "api_tokens",
        "login_failures",
        "app_settings",
        "contacts",
        "contact_lists",
        "contact_list_members",
        "imports",
        "media",
        "templates",
        "senders",
        "campaigns",
        "campaign_lists",
        "campaign_senders",
        "messages",
        "events",
        "inbound",
    }
    assert expected <= tables


def test_downgrade_removes_everything_and_upgrade_is_repeatable(database_url: str) -> None:
    db = Database(database_url)
    migrate.upgrade(db.engine)
    migrate.upgrade(db.engine)  # running it twice is harmless
    migrate.downgrade(db.engine, "base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(db.engine)
    assert migrate.current_revision(db.engine) == migrate.head_revision(db.engine)
    db.dispose()


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
    db.dispose()


def test_0007_adds_the_finish_by_time_and_takes_it_away_again(database_url: str) -> None:
    db = Database(database_url)
    migrate.upgrade(db.engine, "0006")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO campaigns (name, status, body, pacing, max_attempts, "
                "text_before_document, total, n_queued, n_sending, n_sent, n_delivered, "
                "n_read, n_failed, n_skipped, n_unknown, n_replied, created_at, is_demo) "
                "VALUES ('Old', 'running', '', '{}', 3, false, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "
                "'2026-12-01 10:00:00', false)"
            )
        )
    migrate.upgrade(db.engine)
    columns = {c["name"] for c in inspect(db.engine).get_columns("campaigns")}
    assert "ends_at" in columns
    with db.engine.connect() as conn:
        # A campaign from before has no end: it keeps running as it did.
        assert conn.execute(text("SELECT name, ends_at FROM campaigns")).all() == [("Old", None)]
    migrate.downgrade(db.engine, "0006")
    columns = {c["name"] for c in inspect(db.engine).get_columns("campaigns")}
    assert "ends_at" not in columns
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM campaigns")).scalars().all() == ["Old"]
    db.dispose()


def test_0008_adds_the_remembered_column_choices_and_takes_them_away_again(
    database_url: str,
) -> None:
    db = Database(database_url)
    migrate.upgrade(db.engine, "0007")
    assert "sheet_mappings" not in inspect(db.engine).get_table_names()
    migrate.upgrade(db.engine)
    assert "sheet_mappings" in inspect(db.engine).get_table_names()
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sheet_mappings (kind, header_sha256, mapping, updated_at) "
                "VALUES ('contacts', :digest, :mapping, '2026-12-05 10:00:00')"
            ),
            {"digest": "a" * 64, "mapping": '{"phone": "Phone"}'},
        )
    migrate.downgrade(db.engine, "0007")
    assert "sheet_mappings" not in inspect(db.engine).get_table_names()
    assert migrate.current_revision(db.engine) == "0007"
    migrate.upgrade(db.engine)  # and back: the table comes back empty
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sheet_mappings")).scalar() == 0
    db.dispose()
