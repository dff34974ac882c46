"""Alembic environment: runs against the engine handed over by wabulk.migrate."""

from alembic import context

from wabulk.models import Base

config = context.config
engine = config.attributes["engine"]


def _dangling_references(connection) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [tuple(row) for row in connection.exec_driver_sql("PRAGMA foreign_key_check")]


with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table by copying it, dropping the old one and renaming the
        # copy. With foreign keys enforced, dropping a table that rows point at fails (an
        # ON DELETE RESTRICT reference: a database with campaigns could not upgrade) or
        # deletes those rows (ON DELETE CASCADE). SQLite ignores this pragma inside a
        # transaction, so it is set, and that statement's transaction ended, first.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite and (dangling := _dangling_references(connection)):
                # Raised inside the transaction, so the migration is rolled back.
                raise RuntimeError(
                    "The migration would leave rows pointing at rows that do not exist "
                    f"(table, row, referenced table, key): {dangling[:10]}"
                )
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
