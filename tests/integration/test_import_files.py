"""Uploads at the importer level: every format lands the same; bad files change nothing."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from wabulk.contacts import importer
from wabulk.contacts import mapping as mappings
from wabulk.contacts.sheets import SheetError
from wabulk.errors import PermissionDenied, ValidationError
from wabulk.models import Event, EventLevel, Import, ImportStatus, Role, User

from ..importing import contacts, counts, import_file, upload
from ..sheet_files import (
    PEOPLE,
    encrypt_xlsx,
    garble_member,
    oversize_xlsx,
    write_csv,
    write_ods,
    write_xls,
    write_xlsx,
    zip_bomb,
)

PHONES = ["+919876543210", "+919876543211", "+919876543212"]


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


def _uploads(instance: Path) -> list[str]:
    folder = instance / importer.UPLOAD_DIR
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _imports(db) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Import)) or 0


def _bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Unreadable uploads and a word their refusal must contain."""
    folder.mkdir()
    good = write_xlsx(folder / "good.xlsx", PEOPLE)
    truncated = folder / "truncated.xlsx"
    truncated.write_bytes(good.read_bytes()[:700])
    empty = folder / "empty.csv"
    empty.write_bytes(b"")
    pdf = folder / "customers.xlsx"
    pdf.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    return {
        "empty": (empty, "empty"),
        "header only": (write_csv(folder / "header.csv", PEOPLE[:1]), "no data rows"),
        "password": (
            encrypt_xlsx(good, folder / "locked.xlsx", password="secret"),
            "password-protected",
        ),
        "truncated": (truncated, "damaged"),
        "garbled": (
            garble_member(good, folder / "garbled.xlsx", "xl/worksheets/sheet1.xml"),
            "damaged",
        ),
        "zip bomb": (zip_bomb(folder / "bomb.xlsx"), "unsafe"),
        "oversize": (oversize_xlsx(folder / "far.xlsx"), "500 columns"),
        "pdf": (pdf, "PDF"),
    }


def test_unreadable_uploads_are_refused_and_change_nothing(migrated_db, tmp_path, instance):
    import_file(migrated_db, instance, write_csv(tmp_path / "people.csv", PEOPLE))
    before = (contacts(migrated_db), _imports(migrated_db), _uploads(instance))
    for label, (path, words) in _bad_files(tmp_path / "bad").items():
        with (
            pytest.raises(SheetError) as caught,
            migrated_db.session() as session,
            path.open("rb") as stream,
        ):
            importer.save_upload(session, None, instance, stream, path.name)
        message = str(caught.value)
        assert words in message, label
        assert message.endswith("."), label
        assert (contacts(migrated_db), _imports(migrated_db), _uploads(instance)) == before, label


def test_a_viewer_cannot_upload(migrated_db, tmp_path, instance):
    from wabulk.auth import service as users

    with migrated_db.session() as session:
        viewer: User = users.create_user(session, None, "v@example.com", "x" * 12, Role.VIEWER)
    path = write_csv(tmp_path / "people.csv", PEOPLE)
    with pytest.raises(PermissionDenied), migrated_db.session() as s, path.open("rb") as stream:
        importer.save_upload(s, viewer, instance, stream, path.name)
    assert _uploads(instance) == []


def test_a_sheet_without_a_phone_column_asks_which_column_it_is(migrated_db, tmp_path, instance):
    rows = [["Name", "City", "Notes"], ["Asha", "Pune", "VIP"], ["Ravi", "Delhi", "call 5pm"]]
    path = write_xlsx(tmp_path / "no-phones.xlsx", rows)
    with migrated_db.session() as session, path.open("rb") as stream:
        imp = importer.save_upload(session, None, instance, stream, path.name)
    guessed = importer.preview(imp, instance, "IN").mapping
    assert guessed["phone"] is None
    with pytest.raises(ValidationError) as caught:
        mappings.validate(guessed, ["Name", "City", "Notes"])
    assert str(caught.value) == (
        'No column looks like phone numbers. Columns found: "Name", "City", "Notes". '
        "Choose the phone column."
    )
    assert caught.value.field == "phone"
    with pytest.raises(ValidationError), migrated_db.session() as session:
        draft = session.get(Import, imp.id)
        assert draft is not None
        importer.configure(session, None, draft, instance, guessed, "IN")
    with migrated_db.session() as session:
        draft = session.get(Import, imp.id)
        assert draft is not None and draft.status is ImportStatus.DRAFT
        assert importer.claim_next(session, "worker-1") is None
    assert contacts(migrated_db) == {}


def _formats(folder: Path) -> list[Path]:
    folder.mkdir()
    numbers = [PEOPLE[0]]
    numbers += [[r[0], float(p[1:]), r[2]] for r, p in zip(PEOPLE[1:], PHONES, strict=True)]
    return [
        write_xlsx(folder / "people.xlsx", PEOPLE),
        write_xls(folder / "people.xls", numbers),  # numbers as Excel floats, + lost
        write_ods(folder / "people.ods", PEOPLE),
        write_csv(folder / "people-1252.csv", PEOPLE, delimiter=";", encoding="cp1252"),
        write_csv(folder / "people-16.csv", PEOPLE, delimiter="\t", encoding="utf-16"),
        write_csv(folder / "people-bom.csv", PEOPLE, delimiter="|", encoding="utf-8-sig"),
        write_csv(folder / "really-a-csv.xlsx", PEOPLE),
        write_xlsx(folder / "really-a-workbook.csv", PEOPLE),
    ]


def test_every_format_imports_the_same_contacts(migrated_db, tmp_path, instance):
    first, *others = _formats(tmp_path / "formats")
    imp = import_file(migrated_db, instance, first)
    assert imp.created_count == 3
    expected = contacts(migrated_db)
    assert sorted(expected) == PHONES
    assert expected[PHONES[2]]["name"] == "José Núñez"
    for path in others:
        again = import_file(migrated_db, instance, path)
        assert counts(again)["unchanged"] == 3, path.name
        assert contacts(migrated_db) == expected, path.name
    # Stored under our own name, with the extension of what the file really is.
    stored = _uploads(instance)
    assert len(stored) == 8
    assert sum(name.endswith(".xlsx") for name in stored) == 2
    assert not any("people" in name for name in stored)


def test_a_file_that_breaks_part_way_fails_with_a_sentence_and_keeps_what_was_committed(
    migrated_db, tmp_path, instance
):
    good = "".join(f"Person {n},98765000{n:02d},ok\r\n" for n in range(60)).encode()
    path = tmp_path / "long-notes.csv"
    path.write_bytes(
        b"Name,Phone,Notes\r\nAsha,9876543210,"
        + b"n" * 200_000  # a long cell near the top is fine
        + b"\r\n"
        + good  # rows 3-62: more than the preview reads
        + b"Broken,9876543212,"
        + b"x" * (11 * 1024 * 1024)  # one cell over 10 MB is not
        + b"\r\nMeera,9876543213,ok\r\n"
    )
    imp = import_file(migrated_db, instance, path, chunk_rows=25)
    assert imp.status is ImportStatus.FAILED
    assert imp.error == (
        "The CSV file cannot be read near line 63: a cell holds more than 10 MB of text. "
        "Open it in your spreadsheet program, save it again as CSV (or .xlsx), and upload that."
    )
    # Rows 2-51 were committed in two chunks; the third chunk (52-62) never was.
    assert (imp.rows_done, imp.rows_read, imp.created_count) == (51, 50, 50)
    assert len(contacts(migrated_db)) == 50
    with migrated_db.session() as session:
        failed = session.scalars(select(Event).where(Event.kind == "import.failed")).one()
    assert failed.level is EventLevel.ERROR
    assert failed.text.startswith(
        "Import of 'long-notes.csv' stopped: The CSV file cannot be read near line 63"
    )


def test_a_stored_file_damaged_before_the_run_fails_the_import(migrated_db, tmp_path, instance):
    path = write_xlsx(tmp_path / "people.xlsx", PEOPLE)
    import_id = upload(migrated_db, instance, path)
    stored = instance / importer.UPLOAD_DIR / _uploads(instance)[0]
    with zipfile.ZipFile(stored, "w") as zf:  # replaced by a zip that is no workbook
        zf.writestr("notes.txt", "oops")
    with migrated_db.session() as session:
        assert importer.claim_next(session, "worker-1") == import_id
    imp = importer.run(migrated_db, import_id, instance, "worker-1")
    assert imp.status is ImportStatus.FAILED
    assert imp.error is not None and "not a spreadsheet" in imp.error
    assert imp.lease_owner is None
    assert contacts(migrated_db) == {}
