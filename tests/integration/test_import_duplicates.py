"""A number written twice in a sheet never renames a customer silently, and a sheet imported
again with the column choices of last time changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from wabulk.contacts import importer
from wabulk.models import ImportKind

from ..importing import contacts, counts, import_file, issues, upload
from ..sheet_files import write_csv

A, B, C = "+919876543210", "+919876543211", "+919876543212"

SHEET = [
    ["Name", "Phone", "City"],
    ["Deepa Patel", "98765 43210", "Pune"],  # row 2
    ["Ravi", "9876543211", "Delhi"],  # row 3
    ["Dup of row 1", "+91 98765 43210", "Mumbai"],  # row 4: chunk 2 with 2-row chunks
    ["", "0 98765 43210", "Pune"],  # row 5: its values are the first row's
    ["Ravi K", "919876543211", ""],  # row 6: chunk 3
]


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


def _sheet(tmp_path: Path, rows: list[list[str]], name: str = "customers.csv") -> Path:
    return write_csv(tmp_path / name, rows)


# 2: every repeat is in a later chunk than its first row; 5000: all in one chunk.
@pytest.mark.parametrize("chunk_rows", [2, 5000])
def test_the_first_row_of_a_number_wins_and_every_repeat_is_reported(
    migrated_db, tmp_path, instance, chunk_rows
):
    imp = import_file(migrated_db, instance, _sheet(tmp_path, SHEET), chunk_rows=chunk_rows)
    assert counts(imp) == dict(
        rows_read=5, created=2, updated=0, unchanged=0, duplicate=3, invalid=0, opted_out=0
    )
    people = contacts(migrated_db)
    assert people[A]["name"] == "Deepa Patel"
    assert people[A]["attributes"] == {"city": "Pune"}
    assert people[B]["name"] == "Ravi"
    assert issues(migrated_db, imp.id) == [
        (4, True, f"row 4 repeats row 2 ({A}); not taken: Name 'Dup of row 1', City 'Mumbai'"),
        (5, True, f"row 5 repeats row 2 ({A}); not taken (nothing in it differs)"),
        (6, True, f"row 6 repeats row 3 ({B}); not taken: Name 'Ravi K'"),
    ]


@pytest.mark.parametrize("chunk_rows", [2, 5000])
def test_with_the_last_row_winning_the_report_says_what_each_repeat_replaced(
    migrated_db, tmp_path, instance, chunk_rows
):
    imp = import_file(
        migrated_db, instance, _sheet(tmp_path, SHEET), chunk_rows=chunk_rows, duplicates="last"
    )
    people = contacts(migrated_db)
    assert people[A]["name"] == "Dup of row 1"
    assert people[A]["attributes"] == {"city": "Pune"}  # row 5's city, the last one
    assert people[B]["name"] == "Ravi K"
    assert issues(migrated_db, imp.id) == [
        (
            4,
            False,
            f"row 4 repeats row 2 ({A}); taken, as the last row wins; "
            "replaced: Name 'Deepa Patel', City 'Pune'",
        ),
        (
            5,
            False,
            f"row 5 repeats row 2 ({A}); taken, as the last row wins; replaced: City 'Mumbai'",
        ),
        (
            6,
            False,
            f"row 6 repeats row 3 ({B}); taken, as the last row wins; replaced: Name 'Ravi'",
        ),
    ]


def test_a_repeat_of_a_known_customer_keeps_what_the_first_row_and_the_contact_hold(
    migrated_db, tmp_path, instance
):
    import_file(migrated_db, instance, _sheet(tmp_path, [["Name", "Phone"], ["Deepa", A]], "a.csv"))
    later = [
        ["Name", "Phone", "City", "Plan"],
        ["", "9876543210", "Pune", ""],  # row 2: no name here, the contact keeps "Deepa"
        ["Deepa P", "9876543210", "Pune", "Gold"],  # row 3
    ]
    imp = import_file(migrated_db, instance, _sheet(tmp_path, later, "b.csv"))
    assert (imp.created_count, imp.updated_count, imp.duplicate_count) == (0, 1, 1)
    assert contacts(migrated_db)[A]["name"] == "Deepa"
    assert contacts(migrated_db)[A]["attributes"] == {"city": "Pune"}
    assert issues(migrated_db, imp.id) == [
        (3, True, f"row 3 repeats row 2 ({A}); not taken: Name 'Deepa P', Plan 'Gold'"),
    ]


def test_the_downloadable_report_lists_each_repeat_with_its_values(migrated_db, tmp_path, instance):
    from io import StringIO

    from wabulk.contacts import export

    imp = import_file(migrated_db, instance, _sheet(tmp_path, SHEET))
    out = StringIO()
    with migrated_db.session() as session:
        export.write_import_report(session, imp, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Row,Status,Reason,Name,Phone,City"
    assert lines[1] == (
        f"4,rejected,\"row 4 repeats row 2 ({A}); not taken: Name 'Dup of row 1', "
        f"City 'Mumbai'\",Dup of row 1,{A},Mumbai"
    )
    assert len(lines) == 4


WITH_SERIAL = [
    ["Sr No", "Name", "Phone", "City"],
    ["1", "Asha", "9876543210", "Pune"],
    ["2", "Ravi", "9876543211", "Delhi"],
    ["3", "Meera", "9876543212", "Goa"],
]


def _offered(db, instance: Path, path: Path, kind=ImportKind.CONTACTS) -> dict:  # type: ignore[no-untyped-def]
    with db.session() as session, path.open("rb") as stream:
        imp = importer.save_upload(session, None, instance, stream, path.name, kind=kind)
        return importer.preview(imp, instance, "IN").mapping


def test_the_column_choices_are_offered_again_for_a_sheet_with_the_same_header(
    migrated_db, tmp_path, instance
):
    path = _sheet(tmp_path, WITH_SERIAL)
    guessed = _offered(migrated_db, instance, path)
    assert "Sr No" in guessed["attributes"]  # what a first look at the sheet suggests
    chosen = {
        "phone": "Phone",
        "name": ["Name"],
        "attributes": {"City": "town"},  # "Sr No" skipped, City renamed
        "duplicates": "last",
    }
    first = import_file(migrated_db, instance, path, mapping=chosen)
    assert first.created_count == 3

    assert _offered(migrated_db, instance, path) == chosen
    # The same header in a sheet of other rows: the same choices.
    other = _sheet(tmp_path, [WITH_SERIAL[0], ["9", "Dev", "9876543213", "Agra"]], "other.csv")
    assert _offered(migrated_db, instance, other) == chosen
    # Another order of the same columns is another sheet: guessed afresh.
    moved_rows = [["Name", "Sr No", "Phone", "City"], ["Dev", "9", "9876543213", "Agra"]]
    moved = _sheet(tmp_path, moved_rows, "moved.csv")
    assert "Sr No" in _offered(migrated_db, instance, moved)["attributes"]
    # An opt-out sheet of the same header is not a contact sheet.
    assert _offered(migrated_db, instance, path, ImportKind.OPT_OUTS)["attributes"] == {}

    again = import_file(migrated_db, instance, path)  # with what is offered, as the page does
    assert counts(again) == dict(
        rows_read=3, created=0, updated=0, unchanged=3, duplicate=0, invalid=0, opted_out=0
    )
    assert contacts(migrated_db)[A]["attributes"] == {"town": "Pune"}


def test_the_last_confirmed_choices_are_the_ones_remembered(migrated_db, tmp_path, instance):
    path = _sheet(tmp_path, WITH_SERIAL)
    import_file(migrated_db, instance, path)  # everything kept, as guessed
    skip_serial = {"phone": "Phone", "name": ["Name"], "attributes": {"City": "city"}}
    import_file(migrated_db, instance, path, mapping=skip_serial)
    assert _offered(migrated_db, instance, path) == {**skip_serial, "duplicates": "first"}


@pytest.mark.parametrize("duplicates", ["first", "last"])
def test_the_same_sheet_imported_again_with_the_same_choices_changes_nothing(
    migrated_db, tmp_path, instance, duplicates
):
    path = _sheet(tmp_path, SHEET)
    import_file(migrated_db, instance, path, chunk_rows=2, duplicates=duplicates)
    before = contacts(migrated_db)
    again = import_file(migrated_db, instance, path, chunk_rows=2, duplicates=duplicates)
    assert counts(again) == dict(
        rows_read=5, created=0, updated=0, unchanged=2, duplicate=3, invalid=0, opted_out=0
    )
    assert contacts(migrated_db) == before


def test_a_header_confirmed_again_keeps_one_remembered_mapping(migrated_db, tmp_path, instance):
    path = _sheet(tmp_path, WITH_SERIAL)
    upload(migrated_db, instance, path)
    upload(migrated_db, instance, path, mapping={"phone": "Phone", "name": ["Name"]})
    from sqlalchemy import func, select

    from wabulk.models import SheetMapping

    with migrated_db.session() as session:
        assert session.scalar(select(func.count()).select_from(SheetMapping)) == 1
