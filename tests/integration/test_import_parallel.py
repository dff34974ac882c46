"""Large sheets are read in a second process while the first writes; results must not differ."""

from __future__ import annotations

from sqlalchemy import select

from wabulk.models import ImportIssue, ImportStatus

from ..importing import contacts, import_file


def _sheet(path, rows):
    path.write_text("Phone,Name,City\n" + "".join(f"{p},{n},{c}\n" for p, n, c in rows))
    return path


ROWS = [
    *[(f"98765{n:05d}", f"Person {n}", "Pune") for n in range(120)],
    ("12345", "Too short", "Goa"),
    ("9876500007", "Repeat", ""),  # a duplicate of row 9, in a later chunk
    ("98765 00200 / 91234 56789", "Two numbers", "Delhi"),
]


def test_two_process_import_equals_the_single_process_one(migrated_db, tmp_path) -> None:
    path = _sheet(tmp_path / "big.csv", ROWS)
    one = import_file(migrated_db, tmp_path / "one", path, chunk_rows=7, parallel_min_rows=10**9)
    single = contacts(migrated_db)
    with migrated_db.session() as session:
        single_issues = session.execute(
            select(ImportIssue.row_number, ImportIssue.rejected, ImportIssue.reason)
            .where(ImportIssue.import_id == one.id)
            .order_by(ImportIssue.row_number)
        ).all()
    path2 = _sheet(tmp_path / "big2.csv", ROWS)
    from wabulk.models import Contact, list_members

    with migrated_db.session() as session:  # start again from an empty table
        session.execute(list_members.delete())
        session.execute(Contact.__table__.delete())
    two = import_file(migrated_db, tmp_path / "two", path2, chunk_rows=7, parallel_min_rows=0)
    assert two.status is ImportStatus.COMPLETED
    counts = (
        "rows_read",
        "created_count",
        "updated_count",
        "unchanged_count",
        "duplicate_count",
        "invalid_count",
    )
    assert [getattr(two, c) for c in counts] == [getattr(one, c) for c in counts]
    assert (two.rows_read, two.created_count, two.duplicate_count, two.invalid_count) == (
        123,
        121,
        1,
        1,
    )
    assert contacts(migrated_db) == single
    with migrated_db.session() as session:
        issues = session.execute(
            select(ImportIssue.row_number, ImportIssue.rejected, ImportIssue.reason)
            .where(ImportIssue.import_id == two.id)
            .order_by(ImportIssue.row_number)
        ).all()
    assert issues == single_issues and len(issues) == 2


def test_an_unreadable_sheet_fails_the_import_from_the_second_process(
    migrated_db, tmp_path
) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(
        b"Name,Phone\r\n"
        + b"".join(f"P{n},98765000{n:02d}\r\n".encode() for n in range(60))
        + b"X,9876500099,"
        + b"x" * (11 * 1024 * 1024)
        + b"\r\n"
    )
    imp = import_file(migrated_db, tmp_path / "i", path, chunk_rows=25, parallel_min_rows=0)
    assert imp.status is ImportStatus.FAILED
    assert imp.error is not None and "malformed" in imp.error
    assert imp.created_count == 50 and len(contacts(migrated_db)) == 50
