"""Large sheets are read in a second process while the first writes; results must not differ."""

from __future__ import annotations

import pytest
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


# 0: the second process reads every row. 30: this one reads the first 30 (5 chunks of 7, the
# last cut short) while the second starts, which then reads from row 32.
@pytest.mark.parametrize("own_rows", [0, 30])
def test_two_process_import_equals_the_single_process_one(
    migrated_db, tmp_path, own_rows: int
) -> None:
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
    two = import_file(
        migrated_db, tmp_path / "two", path2, chunk_rows=7, parallel_min_rows=0, own_rows=own_rows
    )
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
    # The invalid row, the repeat (naming the row it repeats) and the two-number note.
    assert issues == single_issues and len(issues) == 3
    assert issues[1][2].startswith("row 123 repeats row 9 (+919876500007); not taken")


def _broken_csv(path):
    path.write_bytes(
        b"Name,Phone\r\n"
        + b"".join(f"P{n},98765000{n:02d}\r\n".encode() for n in range(60))
        + b"X,9876500099,"
        + b"x" * (11 * 1024 * 1024)
        + b"\r\n"
    )
    return path


# The bad row met by the second process (own_rows 0) or by this one, reading the first rows
# itself (100): either way the chunks before it stay committed and the import says why.
@pytest.mark.parametrize("own_rows", [0, 100])
def test_an_unreadable_sheet_fails_the_import_part_way(
    migrated_db, tmp_path, own_rows: int
) -> None:
    path = _broken_csv(tmp_path / "broken.csv")
    imp = import_file(
        migrated_db, tmp_path / "i", path, chunk_rows=25, parallel_min_rows=0, own_rows=own_rows
    )
    assert imp.status is ImportStatus.FAILED
    assert imp.error is not None and "a cell holds more than 10 MB" in imp.error
    assert imp.created_count == 50 and len(contacts(migrated_db)) == 50


def test_a_workbook_read_partly_by_its_head_here_equals_the_single_process_import(
    migrated_db, tmp_path, monkeypatch
) -> None:
    from wabulk.contacts import xlsx_head
    from wabulk.models import Contact, list_members

    from ..sheet_files import write_xlsx

    rows = [["Phone", "Name", "Joined", "Due"]]
    for n in range(300):
        phone = 919876500000 + n if n % 5 == 0 else f"98765 {n:05d}"  # numbers and text
        rows.append([phone, f"Person {n}", f"2024-01-{n % 28 + 1:02d}", n * 1.5])
    rows.append(["98765 00007", "Repeat of row 9", "", ""])  # read by the second process
    path = write_xlsx(tmp_path / "big.xlsx", rows)
    one = import_file(migrated_db, tmp_path / "one", path, chunk_rows=40, parallel_min_rows=10**9)
    single = contacts(migrated_db)
    with migrated_db.session() as session:
        session.execute(list_members.delete())
        session.execute(Contact.__table__.delete())

    monkeypatch.setattr(xlsx_head, "MIN_BYTES", 0)  # this process reads rows 2-120 by the head
    heads = []
    head_workbook = xlsx_head.head_workbook

    def spy(*args, **kwargs):
        heads.append(head_workbook(*args, **kwargs))
        return heads[-1]

    monkeypatch.setattr(xlsx_head, "head_workbook", spy)
    two = import_file(
        migrated_db, tmp_path / "two", path, chunk_rows=40, parallel_min_rows=0, own_rows=120
    )

    assert two.status is ImportStatus.COMPLETED
    assert (two.rows_read, two.created_count, two.duplicate_count) == (301, 300, 1)
    assert two.duplicate_count == one.duplicate_count
    assert contacts(migrated_db) == single
    assert [h.last_row for h in heads if h is not None] == [120]


def test_a_workbooks_last_chunks_shrink_so_the_writer_finishes_soon_after_the_reader(
    tmp_path, monkeypatch
) -> None:
    from wabulk.contacts import import_read

    from ..sheet_files import write_xlsx

    rows = [["Phone", "Name"], *([f"98765{n:05d}", f"P{n}"] for n in range(300))]
    path = write_xlsx(tmp_path / "w.xlsx", rows)
    monkeypatch.setattr(import_read, "TAIL_ROWS", 10)
    plan = import_read.Plan("contacts", {"phone": "Phone", "name": ["Name"]}, "IN", None, None)

    chunks = list(import_read.read_chunks(path, plan, 0, 40))

    assert [c.read for c in chunks] == [40] * 6 + [30, 15, 10, 5]
    assert [c.last for c in chunks] == [41, 81, 121, 161, 201, 241, 271, 286, 296, 301]
    assert sum(len(c.rows) for c in chunks) == 300


def test_a_reader_process_that_dies_fails_the_import_with_a_sentence(tmp_path) -> None:
    # A parser that runs away in the reader process (its address space is capped) kills that
    # process only; the writer reports it instead of waiting or raising its own error.
    import multiprocessing
    import os
    import signal

    from wabulk.contacts import import_read
    from wabulk.contacts.sheets import SheetError

    path = _sheet(tmp_path / "big.csv", [(f"98765{n:05d}", f"P{n}", "Pune") for n in range(3000)])
    plan = import_read.Plan("contacts", {"phone": "Phone", "name": ["Name"]}, "IN", None, None)
    chunks = import_read.read_chunks_in_child(path, plan, 0, 10)
    next(chunks)  # the reader is running: its first chunk arrived
    (reader,) = [p for p in multiprocessing.active_children() if p.name == "wabulk-import-reader"]
    os.kill(reader.pid, signal.SIGKILL)
    with pytest.raises(SheetError, match="Reading this sheet stopped"):
        for _ in chunks:
            pass


def test_the_reader_process_runs_with_a_capped_address_space(tmp_path) -> None:
    import multiprocessing

    from wabulk.contacts import import_read

    def limit_in_child(out) -> None:
        import resource

        import_read._limit_memory()
        out.put(resource.getrlimit(resource.RLIMIT_AS)[0])

    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=limit_in_child, args=(out,))
    child.start()
    assert out.get(timeout=60) == import_read.READER_MEMORY_LIMIT
    child.join(30)


def test_a_reader_that_fails_on_a_bug_fails_the_import_with_a_sentence() -> None:
    # Anything else raised here would leave the import to be claimed, and fail, again forever.
    from wabulk.contacts import import_read
    from wabulk.contacts.sheets import SheetError

    with pytest.raises(SheetError, match="Reading this sheet failed unexpectedly"):
        import_read._received_chunk("crash", "KeyError: 'x'")
