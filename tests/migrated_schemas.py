"""Migrated PostgreSQL schemas for tests, put back to the migrated state after each test.

Alembic takes a fifth of a second a test on an idle machine and two on a busy one (most
of it PostgreSQL creating 32 tables and their indexes), and dropping the schema after
costs as much again. A schema that a test only filled with rows is instead emptied and
refilled with what the migrations wrote, copied from a pristine schema migrated once.

A schema is reused only when its tables, columns, indexes, constraints, sequences and
types are exactly the migrated ones; one a test changed (a downgrade, a dropped column)
is dropped, as before.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from wabulk import migrate
from wabulk.db import Database

# Everything a test could change in a schema's shape, as text with the schema's own name
# taken out (indexes and defaults name it), hashed.
_SHAPE = text(
    """
    WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = :s), parts AS (
      SELECT 'c:' || table_name || '.' || column_name || ':' || data_type || ':'
             || is_nullable || ':' || coalesce(character_maximum_length::text, '') || ':'
             || coalesce(replace(column_default, :s, ''), '') AS x
        FROM information_schema.columns WHERE table_schema = :s
      UNION ALL
      SELECT 'r:' || relname || ':' || relkind::text FROM pg_class
       WHERE relnamespace = (SELECT oid FROM ns)
      UNION ALL
      SELECT 'i:' || replace(indexdef, :s, '') FROM pg_indexes WHERE schemaname = :s
      UNION ALL
      SELECT 'k:' || r.relname || ':' || k.conname || ':'
             || replace(pg_get_constraintdef(k.oid), :s, '')
        FROM pg_constraint k JOIN pg_class r ON r.oid = k.conrelid
       WHERE k.connamespace = (SELECT oid FROM ns)
      UNION ALL
      SELECT 't:' || typname || ':' || typtype::text FROM pg_type
       WHERE typnamespace = (SELECT oid FROM ns)
      UNION ALL
      SELECT 'e:' || t.typname || ':' || e.enumlabel || ':' || e.enumsortorder
        FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
       WHERE t.typnamespace = (SELECT oid FROM ns)
      UNION ALL
      SELECT 'p:' || proname FROM pg_proc WHERE pronamespace = (SELECT oid FROM ns)
      UNION ALL
      -- A foreign key's own triggers are named after their OIDs, new in every schema (the
      -- key itself is compared above): counting them made every schema differ, so none
      -- was reused.
      SELECT 'g:' || tgname FROM pg_trigger g JOIN pg_class r ON r.oid = g.tgrelid
       WHERE r.relnamespace = (SELECT oid FROM ns) AND NOT g.tgisinternal
    )
    SELECT md5(coalesce(string_agg(x, ';' ORDER BY x), '')) FROM parts
    """
)


def _quote(name: str) -> str:
    # Names come from our own uuids and PostgreSQL's catalog, never from a test's input.
    assert name.replace("_", "").isalnum(), name
    return f'"{name}"'


class MigratedSchemas:
    """One test process's pool of migrated schemas on the PostgreSQL server."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        # Pre-ping: a test that drops every connection to the server drops this one too.
        self.admin: Engine = create_engine(
            server_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True
        )
        self.pristine = self._new_migrated()
        with self.admin.connect() as conn:
            self.shape = self._shape(conn, self.pristine)
            self.tables = list(
                conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY 1"),
                    {"s": self.pristine},
                ).scalars()
            )
            self.sequences = list(
                conn.execute(
                    text("SELECT sequencename FROM pg_sequences WHERE schemaname = :s ORDER BY 1"),
                    {"s": self.pristine},
                ).scalars()
            )
            self.seeded = [t for t in self.tables if self._has_rows(conn, self.pristine, t)]
        self.free: list[str] = []

    def url(self, name: str) -> str:
        url = make_url(self.server_url).update_query_dict(
            {"options": f"-csearch_path={name}", "application_name": name}
        )
        return url.render_as_string(hide_password=False)

    def take(self) -> str:
        """A migrated schema's name: a returned one, else a new one migrated by Alembic."""
        return self.free.pop() if self.free else self._new_migrated()

    def give_back(self, name: str) -> None:
        """Ends the test's connections, then empties the schema for the next test, or drops
        it when the test changed its shape."""
        with self.admin.connect() as conn:
            self._end_connections(conn, name)
            if self._shape(conn, name) != self.shape:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {_quote(name)} CASCADE"))
                return
            self._refill(conn, name)
        self.free.append(name)

    def close(self) -> None:
        with self.admin.connect() as conn:
            for name in [*self.free, self.pristine]:
                self._end_connections(conn, name)
                conn.execute(text(f"DROP SCHEMA IF EXISTS {_quote(name)} CASCADE"))
        self.admin.dispose()

    def _new_migrated(self) -> str:
        name = f"wabulk_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {_quote(name)}"))
        db = Database(self.url(name))
        try:
            migrate.upgrade(db.engine)
        finally:
            db.dispose()
        return name

    @staticmethod
    def _end_connections(conn, name: str) -> None:  # type: ignore[no-untyped-def]
        # Connections a test left open (a killed server's pool) would hold locks.
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )

    @staticmethod
    def _shape(conn, name: str) -> str:  # type: ignore[no-untyped-def]
        return str(conn.execute(_SHAPE, {"s": name}).scalar_one())

    @staticmethod
    def _has_rows(conn, schema: str, table: str) -> bool:  # type: ignore[no-untyped-def]
        return bool(
            conn.execute(
                text(f"SELECT EXISTS (SELECT 1 FROM {_quote(schema)}.{_quote(table)})")  # noqa: S608
            ).scalar_one()
        )

    def _refill(self, conn, name: str) -> None:  # type: ignore[no-untyped-def]
        """Back to the pristine schema's rows and sequence positions: one script, which
        PostgreSQL runs as one transaction."""
        schema = _quote(name)
        pristine = _quote(self.pristine)
        probes = " UNION ALL ".join(
            f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM {schema}.{_quote(t)})"  # noqa: S608
            for t in self.tables
        )
        emptied = sorted(set(conn.execute(text(probes)).scalars()) | set(self.seeded))
        script = []
        if emptied:
            script.append(
                "TRUNCATE " + ", ".join(f"{schema}.{_quote(t)}" for t in emptied) + " CASCADE"
            )
        script += [
            f"INSERT INTO {schema}.{_quote(t)} SELECT * FROM {pristine}.{_quote(t)}"  # noqa: S608
            for t in self.seeded
        ]
        if self.sequences:
            script.append(
                " UNION ALL ".join(
                    f"SELECT setval('{schema}.{_quote(q)}', last_value, is_called)"  # noqa: S608
                    f" FROM {pristine}.{_quote(q)}"
                    for q in self.sequences
                )
            )
        # Without parameters psycopg sends it as one simple query: one round trip, and
        # all or nothing.
        conn.connection.driver_connection.execute(";\n".join(script))
