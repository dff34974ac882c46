"""What the PostgreSQL benchmarks share: a schema of their own on the server, and whether the
server answers at all (a bench without one says so and measures nothing)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def schema(server: str, prefix: str) -> Iterator[str]:
    """A new schema named `prefix` + a random tail, as a URL whose connections see only it;
    dropped afterwards."""
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    # The application name marks every connection to the schema, so the drop can end them.
    url = make_url(server).update_query_dict(
        {"options": f"-csearch_path={name}", "application_name": name}
    )
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            # A process stopped mid-request may leave a backend holding locks on the schema.
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


def reachable(server: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        engine = create_engine(server)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return str(exc).splitlines()[0]
    return None
