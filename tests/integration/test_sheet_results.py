"""Your sheet, with results: the shop's imported sheet given back with each row's outcome.

The round trip keeps every original column, cell and row in order (title rows, blank rows,
rejected and repeated rows included) and adds the result columns; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import delete, select, update

from tests.campaigns_support import make_campaign, make_sender
from tests.importing import import_file
from tests.sheet_files import write_csv, write_xls, write_xlsx
from wabulk.campaigns import sheet_results
from wabulk.db import Database
from wabulk.errors import Conflict, ValidationError
from wabulk.models import Contact, Import, Inbound, Message, MessageStatus, list_members

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
IST = "Asia/Kolkata"

# A title row, columns in an odd order (phone second, extra columns around it), a rejected
# row, a blank row, a repeated phone, a formula-looking cell.
CSV_ROWS: list[list[str]] = [
    ["Customers, March"],
    ["Due", "Mobile", "Name", "City", "Notes"],
    ["1250.50", "98765 00001", "Asha", "Pune", "gold"],
    ["80", "not a phone", "Bad", "X", ""],
    ["", "", "", "", ""],
    ["300", "+91 98765 00002", "Ravi", "Delhi", "=1+2"],
    ["1250.50", "9876500001", "Asha again", "Pune", "repeat"],
    ["5", "98765 00003", "Meera", "Goa", ""],
    ["6", " 98765 00004 ", "Nina", "", "  spaces kept  "],
]
XLSX_ROWS: list[list[Any]] = [
    ["Since", "Name", "Notes", "Phone", "Due"],
    [date(2024, 1, 5), "Asha", "gold", 919876500001, 1250.5],
    [date(2024, 2, 1), "Bad", None, "12", 80],
    [],
    [None, "Ravi", "=1+2", "+91 98765 00002", 300],
    [date(2024, 3, 9), "Asha again", "repeat", "98765-00001", 1250.5],
    [None, "Meera", None, 919876500003, 5],
    [None, "Nina", True, "9876500004", 6],
]
ASHA, RAVI, MEERA, NINA = (f"+9198765{n:05d}" for n in (1, 2, 3, 4))


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


def _outcomes(db: Database, campaign_id: int) -> None:
    """Asha delivered, Ravi read and replied twice, Meera failed, Nina sent."""
    moves: dict[str, dict[str, Any]] = {
        ASHA: {"status": MessageStatus.DELIVERED, "sent_at": T0, "delivered_at": T0 + timedelta(1)},
        RAVI: {
            "status": MessageStatus.READ,
            "sent_at": T0,
            "delivered_at": T0,
            "read_at": T0 + timedelta(minutes=5),
            "replied_at": T0 + timedelta(minutes=9),
        },
        MEERA: {"status": MessageStatus.FAILED, "failed_at": T0, "error_code": "dry_run_failure"},
        NINA: {"status": MessageStatus.SENT, "sent_at": T0},
    }
    with db.session() as session:
        for phone, values in moves.items():
            session.execute(
                update(Message)
                .where(Message.campaign_id == campaign_id, Message.phone == phone)
                .values(**values)
            )
        ravi = session.scalar(
            select(Message).where(Message.campaign_id == campaign_id, Message.phone == RAVI)
        )
        assert ravi is not None
        for minutes, body in ((7, "Is it on in Pune too?"), (9, "=1+1 thanks")):
            session.add(
                Inbound(
                    phone=RAVI,
                    contact_id=ravi.contact_id,
                    campaign_id=campaign_id,
                    message_id=ravi.id,
                    body=body,
                    received_at=T0 + timedelta(minutes=minutes),
                )
            )


def _campaign_from(db: Database, instance: Path, sheet: Path, list_name: str) -> tuple[int, int]:
    imp = import_file(db, instance, sheet, new_list_name=list_name)
    assert imp.list_id is not None and imp.invalid_count == 1 and imp.duplicate_count == 1
    campaign_id = make_campaign(db, [imp.list_id], [make_sender(db, f"Phone {list_name}")])
    _outcomes(db, campaign_id)
    return campaign_id, imp.id


def _ist(minutes: int = 0, days: int = 0) -> datetime:
    return (T0 + timedelta(days=days, minutes=minutes)).replace(tzinfo=None) + timedelta(
        hours=5, minutes=30
    )


# The result columns expected for each phone's rows.
RESULTS = {
    ASHA: ["Delivered", _ist(), _ist(days=1), None, None, None, None],
    RAVI: ["Replied", _ist(), _ist(), _ist(5), _ist(9), "'=1+1 thanks", None],
    MEERA: ["Failed", None, None, None, None, None, "Dry run: simulated failure"],
    NINA: ["Sent", _ist(), None, None, None, None, None],
}
NAMES = ["Status", f"Sent at ({IST})", f"Delivered at ({IST})", f"Read at ({IST})"]
NAMES += [f"Replied at ({IST})", "Reply", "Failure reason"]


def _text(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else value or ""


def test_a_csv_comes_back_with_every_row_and_cell_and_its_results(migrated_db, tmp_path, instance):
    source = write_csv(tmp_path / "march.csv", CSV_ROWS, delimiter=";")
    campaign_id, _ = _campaign_from(migrated_db, instance, source, "March")
    with migrated_db.session() as session:
        written = sheet_results.write(session, campaign_id, None, IST, instance, tmp_path / "out")
    assert written.download_name == "march-with-results.csv"
    assert written.mimetype == "text/csv"
    raw = written.path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    got = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))
    original = list(csv.reader(io.StringIO(source.read_text(), newline=""), delimiter=";"))
    assert len(got) == len(original)
    start = 5
    for before, after in zip(original, got, strict=True):
        assert after[: len(before)] == before  # every original cell, unchanged, in place
        assert after[len(before) : start] == [""] * (start - len(before))
    assert got[1][start:] == NAMES
    assert got[0][start:] == [""] * 7  # the title row above the header
    assert got[4] == [""] * 5  # the blank row stays blank
    expected = {
        2: RESULTS[ASHA],
        3: ["Not imported: 'not a phone' is not a phone number"] + [None] * 6,
        5: RESULTS[RAVI],
        6: RESULTS[ASHA],  # the repeated phone: the same contact's results
        7: RESULTS[MEERA],
        8: RESULTS[NINA],
    }
    for index, cells in expected.items():
        assert got[index][start:] == [_text(c) for c in cells], index


def test_an_xlsx_comes_back_as_xlsx_with_typed_cells_in_place(migrated_db, tmp_path, instance):
    source = write_xlsx(tmp_path / "April list.xlsx", XLSX_ROWS)
    campaign_id, _ = _campaign_from(migrated_db, instance, source, "April")
    with migrated_db.session() as session:
        written = sheet_results.write(session, campaign_id, None, IST, instance, tmp_path / "out")
    assert written.download_name == "April-list-with-results.xlsx"
    before = CalamineWorkbook.from_path(str(source)).get_sheet_by_index(0).to_python()
    after_sheet = CalamineWorkbook.from_path(str(written.path)).get_sheet_by_index(0)
    after = after_sheet.to_python()
    assert after_sheet.start == (0, 0)
    assert len(after) == len(before)
    width = 5
    for old, new in zip(before, after, strict=True):
        assert new[:width] == old  # numbers stay numbers, dates dates, text text
    assert after[0][width:] == NAMES
    assert after[1][1] == "Asha" and after[1][0] == date(2024, 1, 5)
    assert after[1][3] == 919876500001.0 and after[7][2] is True
    expected = {
        1: RESULTS[ASHA],
        2: ["Not imported"],
        3: [None] * 7,
        4: RESULTS[RAVI],
        5: RESULTS[ASHA],
        6: RESULTS[MEERA],
        7: RESULTS[NINA],
    }
    for index, cells in expected.items():
        got = [c if c != "" else None for c in after[index][width:]]
        if cells == ["Not imported"]:
            assert str(got[0]).startswith("Not imported: ") and got[1:] == [None] * 6
        else:
            assert got == cells, index


def test_a_deleted_file_is_said_plainly(migrated_db, tmp_path, instance):
    source = write_csv(tmp_path / "gone.csv", CSV_ROWS)
    campaign_id, import_id = _campaign_from(migrated_db, instance, source, "Gone")
    with migrated_db.session() as session:
        imp = session.get(Import, import_id)
        assert imp is not None
        (instance / imp.stored_path).unlink()
        choice = sheet_results.sheets_for(
            session, imp and _campaign(session, campaign_id), instance
        )
        assert [s.stored for s in choice.sheets] == [False]
        with pytest.raises(Conflict, match=r"gone\.csv .* no longer stored"):
            sheet_results.write(session, campaign_id, None, IST, instance, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*"))


def _campaign(session: Any, campaign_id: int) -> Any:
    from wabulk.models import Campaign

    return session.get(Campaign, campaign_id)


def test_a_list_filled_by_two_sheets_offers_each(migrated_db, tmp_path, instance):
    first = import_file(
        migrated_db, instance, write_csv(tmp_path / "one.csv", CSV_ROWS), new_list_name="Both"
    )
    second = import_file(
        migrated_db,
        instance,
        write_xlsx(tmp_path / "two.xlsx", XLSX_ROWS),
        list_id=first.list_id,
    )
    campaign_id = make_campaign(migrated_db, [first.list_id], [make_sender(migrated_db)])
    with migrated_db.session() as session:
        choice = sheet_results.sheets_for(session, _campaign(session, campaign_id), instance)
        assert [s.name for s in choice.sheets] == ["two.xlsx", "one.csv"]
        assert choice.reason is None
        with pytest.raises(ValidationError) as refused:
            sheet_results.write(session, campaign_id, None, IST, instance, tmp_path / "out")
        assert refused.value.field == "import_id" and "one.csv" in str(refused.value)
        written = sheet_results.write(session, campaign_id, second.id, IST, instance, tmp_path)
        assert written.download_name == "two-with-results.xlsx"


def test_a_campaign_without_an_imported_sheet_says_why(migrated_db, tmp_path, instance):
    from tests.campaigns_support import make_contacts

    list_id = make_contacts(migrated_db, [ASHA], "Typed by hand")
    campaign_id = make_campaign(migrated_db, [list_id], [make_sender(migrated_db)])
    with migrated_db.session() as session:
        choice = sheet_results.sheets_for(session, _campaign(session, campaign_id), instance)
        assert choice.sheets == [] and "not filled from an imported sheet" in (choice.reason or "")
        with pytest.raises(Conflict, match="not filled from an imported sheet"):
            sheet_results.write(session, campaign_id, None, IST, instance, tmp_path / "out")


def test_opted_out_and_removed_contacts_say_so(migrated_db, tmp_path, instance):
    source = write_csv(tmp_path / "may.csv", CSV_ROWS)
    campaign_id, _ = _campaign_from(migrated_db, instance, source, "May")
    with migrated_db.session() as session:
        session.execute(update(Contact).where(Contact.phone == NINA).values(opted_out_at=T0))
        session.execute(
            Message.__table__.delete().where(
                Message.campaign_id == campaign_id, Message.phone == NINA
            )
        )
    with migrated_db.session() as session:
        written = sheet_results.write(session, campaign_id, None, None, instance, tmp_path / "o")
    got = list(csv.reader(io.StringIO(written.path.read_text("utf-8-sig"), newline="")))
    assert got[8][5:] == ["Not sent: opted out"] + [""] * 6
    assert got[1][6] == "Sent at (UTC)"


def test_an_xls_comes_back_as_xlsx_with_its_sheet_name(migrated_db, tmp_path, instance):
    rows = [[c.isoformat() if isinstance(c, date) else c for c in r] for r in XLSX_ROWS]
    source = write_xls(tmp_path / "old.xls", rows)
    campaign_id, _ = _campaign_from(migrated_db, instance, source, "Old")
    with migrated_db.session() as session:
        written = sheet_results.write(session, campaign_id, None, IST, instance, tmp_path / "out")
    assert written.download_name == "old-with-results.xlsx"
    before = CalamineWorkbook.from_path(str(source)).get_sheet_by_name("Customers").to_python()
    after = CalamineWorkbook.from_path(str(written.path)).get_sheet_by_name("Customers").to_python()
    assert [r[:5] for r in after] == before
    assert after[4][5:] == [*RESULTS[RAVI][:5], "'=1+1 thanks", ""]


def test_a_segment_of_one_list_finds_its_sheet_and_a_wider_one_says_why(
    migrated_db, tmp_path, instance
):
    source = write_csv(tmp_path / "seg.csv", CSV_ROWS)
    campaign_id, import_id = _campaign_from(migrated_db, instance, source, "Seg")
    with migrated_db.session() as session:
        campaign = _campaign(session, campaign_id)
        list_id = campaign.lists[0].id
        in_list = {"field": "list", "op": "in", "value": [list_id]}
        country = {"field": "country", "op": "in", "value": ["IN"]}
        campaign.lists = []
        campaign.audience_terms = {"match": "all", "conditions": [in_list, country]}
        choice = sheet_results.sheets_for(session, campaign, instance)
        assert [s.import_id for s in choice.sheets] == [import_id]
        # Wider than one list, or on columns only ("City is Pune"): the imported lists that
        # hold any of its recipients are offered (this one's recipients all came from it).
        for wider in (
            {"match": "any", "conditions": [in_list, country]},
            {"match": "all", "conditions": [country]},
        ):
            campaign.audience_terms = wider
            choice = sheet_results.sheets_for(session, campaign, instance)
            assert [s.import_id for s in choice.sheets] == [import_id]
        # Recipients in no imported list: said plainly.
        session.execute(delete(list_members).where(list_members.c.list_id == list_id))
        choice = sheet_results.sheets_for(session, campaign, instance)
        assert choice.sheets == [] and "in a list filled from an imported sheet" in (
            choice.reason or ""
        )
        session.rollback()


def test_a_sheet_without_a_header_row_gets_one_for_the_results(migrated_db, tmp_path, instance):
    rows = [r for r in CSV_ROWS[2:] if any(r)]
    source = write_csv(tmp_path / "bare.csv", rows)
    imp = import_file(migrated_db, instance, source, new_list_name="Bare")
    campaign_id = make_campaign(migrated_db, [imp.list_id], [make_sender(migrated_db)])
    _outcomes(migrated_db, campaign_id)
    with migrated_db.session() as session:
        written = sheet_results.write(session, campaign_id, None, IST, instance, tmp_path / "o")
    got = list(csv.reader(io.StringIO(written.path.read_text("utf-8-sig"), newline="")))
    assert got[0] == [""] * 5 + NAMES  # added above the data
    assert [r[:5] for r in got[1:]] == rows
    assert got[1][5] == "Delivered" and got[3][5] == "Replied"


def test_a_row_wider_than_the_import_reads_is_refused_plainly(migrated_db, tmp_path, instance):
    from wabulk.contacts.sheets import MAX_COLUMNS

    # Past the first 50 rows, which the import checks for width before it starts.
    rows = [CSV_ROWS[1], *([str(i), f"98765 1{i:04d}", "", "", ""] for i in range(60))]
    source = write_csv(tmp_path / "wide.csv", [*rows, [*CSV_ROWS[2], *(["x"] * MAX_COLUMNS)]])
    imp = import_file(migrated_db, instance, source, new_list_name="Wide")
    campaign_id = make_campaign(migrated_db, [imp.list_id], [make_sender(migrated_db)])
    refused = pytest.raises(Conflict, match=f"Row 62 has {MAX_COLUMNS + 5:,} cells")
    with migrated_db.session() as session, refused:
        sheet_results.write(session, campaign_id, None, IST, instance, tmp_path / "o")
    assert not list((tmp_path / "o").glob("*"))
