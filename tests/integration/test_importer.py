"""Running imports: upsert by phone, duplicates, rejected rows, lists, opt-outs, resuming."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from wabulk import migrate
from wabulk.contacts import importer
from wabulk.contacts.lists import create_list
from wabulk.db import Database
from wabulk.models import ContactList, Event, Import, ImportKind, ImportStatus, utcnow

from ..importing import contacts, counts, import_file, issues, members, upload
from ..sheet_files import write_csv, write_xlsx

A, B, C, D = "+919876543210", "+919876543211", "+919876543212", "+919876543213"


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


def _sheet(tmp_path: Path, name: str, rows: list[list[str]]) -> Path:
    return write_csv(tmp_path / name, rows)


FIRST = [
    ["Name", "Phone", "City", "Plan"],
    ["Asha", "98765 43210", "Pune", "Gold"],
    ["Ravi", "9876543211", "Delhi", "Silver"],
    ["Meera", "+91 98765 43212", "Goa", ""],
]


def test_a_new_sheet_creates_contacts_with_country_and_timezone(migrated_db, tmp_path, instance):
    imp = import_file(migrated_db, instance, _sheet(tmp_path, "first.csv", FIRST))
    assert imp.status is ImportStatus.COMPLETED
    assert counts(imp) == dict(
        rows_read=3, created=3, updated=0, unchanged=0, duplicate=0, invalid=0, opted_out=0
    )
    assert imp.rows_done == 4
    assert imp.lease_owner is None
    people = contacts(migrated_db)
    assert people[A] == {
        "name": "Asha",
        "attributes": {"city": "Pune", "plan": "Gold"},
        "country": "IN",
        "timezone": "Asia/Calcutta",
        "opted_out": False,
        "opt_out_reason": None,
    }
    assert people[C]["attributes"] == {"city": "Goa"}  # an empty cell stores nothing


def test_reimporting_the_same_file_creates_nothing_and_counts_rows_unchanged(
    migrated_db, tmp_path, instance
):
    path = _sheet(tmp_path, "first.csv", FIRST)
    import_file(migrated_db, instance, path)
    before = contacts(migrated_db)
    again = import_file(migrated_db, instance, path)
    assert counts(again) == dict(
        rows_read=3, created=0, updated=0, unchanged=3, duplicate=0, invalid=0, opted_out=0
    )
    assert contacts(migrated_db) == before


def test_a_newer_sheet_updates_but_never_erases(migrated_db, tmp_path, instance):
    import_file(migrated_db, instance, _sheet(tmp_path, "first.csv", FIRST))
    newer = [
        ["Name", "Phone", "City", "Due"],  # no "Plan" column any more
        ["Asha Rao", "9876543210", "", "1500"],  # renamed; City left empty
        ["", "9876543211", "Delhi", ""],  # no name in the new sheet: the old one stays
        ["Meera", "9876543212", "Goa", ""],  # nothing new
    ]
    imp = import_file(migrated_db, instance, _sheet(tmp_path, "newer.csv", newer))
    assert (imp.created_count, imp.updated_count, imp.unchanged_count) == (0, 1, 2)
    people = contacts(migrated_db)
    assert people[A]["name"] == "Asha Rao"
    assert people[A]["attributes"] == {"city": "Pune", "plan": "Gold", "due": "1500"}
    assert people[B]["name"] == "Ravi"
    assert people[B]["attributes"] == {"city": "Delhi", "plan": "Silver"}


DUPLICATES = [
    ["Name", "Phone", "City", "Plan"],
    ["Asha", "9876543210", "Pune", ""],  # chunk 1
    ["Ravi", "9876543211", "Delhi", ""],  # chunk 1
    ["Asha R", "+91 98765 43210", "", "Gold"],  # chunk 2: same as row 2
    ["", "0 98765 43210", "Mumbai", ""],  # chunk 2: same again, within the chunk
    ["Ravi", "919876543211", "Delhi", ""],  # chunk 3: same as row 3
]


@pytest.mark.parametrize("chunk_rows", [2, 5000])
def test_duplicates_in_one_file_are_merged_and_counted_when_the_last_row_wins(
    migrated_db, tmp_path, instance, chunk_rows
):
    path = _sheet(tmp_path, "dups.csv", DUPLICATES)
    imp = import_file(migrated_db, instance, path, chunk_rows=chunk_rows, duplicates="last")
    assert counts(imp) == dict(
        rows_read=5, created=2, updated=0, unchanged=0, duplicate=3, invalid=0, opted_out=0
    )
    people = contacts(migrated_db)
    assert sorted(people) == [A, B]
    assert people[A]["name"] == "Asha R"
    assert people[A]["attributes"] == {"city": "Mumbai", "plan": "Gold"}


@pytest.mark.parametrize("chunk_rows", [2, 5000])
def test_reimporting_a_file_whose_duplicates_differ_still_counts_contacts_unchanged(
    migrated_db, tmp_path, instance, chunk_rows
):
    # Row 2 sets Asha's city to Pune, row 5 (a later chunk with 2-row chunks) back to Mumbai:
    # the contact ends as it was, so it is unchanged, not updated.
    path = _sheet(tmp_path, "dups.csv", DUPLICATES)
    import_file(migrated_db, instance, path, chunk_rows=chunk_rows, duplicates="last")
    before = contacts(migrated_db)
    again = import_file(migrated_db, instance, path, chunk_rows=chunk_rows, duplicates="last")
    assert counts(again) == dict(
        rows_read=5, created=0, updated=0, unchanged=2, duplicate=3, invalid=0, opted_out=0
    )
    assert contacts(migrated_db) == before


@pytest.mark.parametrize("chunk_rows", [2, 5000])
def test_a_duplicate_further_down_that_changes_a_contact_counts_it_updated(
    migrated_db, tmp_path, instance, chunk_rows
):
    import_file(migrated_db, instance, _sheet(tmp_path, "first.csv", FIRST))
    later = [
        ["Name", "Phone", "City", "Plan"],
        ["Asha", "98765 43210", "Pune", "Gold"],  # as it is
        ["Ravi", "9876543211", "Delhi", "Silver"],  # as it is
        ["Asha", "9876543210", "Pune", "Platinum"],  # chunk 2 with 2-row chunks: a change
    ]
    imp = import_file(
        migrated_db,
        instance,
        _sheet(tmp_path, "later.csv", later),
        chunk_rows=chunk_rows,
        duplicates="last",
    )
    assert counts(imp) == dict(
        rows_read=3, created=0, updated=1, unchanged=1, duplicate=1, invalid=0, opted_out=0
    )
    assert contacts(migrated_db)[A]["attributes"] == {"city": "Pune", "plan": "Platinum"}


def test_invalid_rows_are_reported_with_row_numbers_and_reasons(migrated_db, tmp_path, instance):
    rows = [
        ["Name", "Phone"],
        ["Asha", "9876543210"],
        ["Short", "12345"],
        ["Nobody", ""],
        ["Words", "call me"],
        ["Two", "9876543212 / 9876543213"],
    ]
    path = write_xlsx(tmp_path / "mixed.xlsx", [rows[0], rows[1], [], *rows[2:]])
    imp = import_file(migrated_db, instance, path)
    assert (imp.created_count, imp.invalid_count, imp.rows_read) == (2, 3, 5)
    assert issues(migrated_db, imp.id) == [
        (4, True, "row 4: '12345' is too short for India"),
        (5, True, 'row 5: the "Phone" cell is empty'),
        (6, True, "row 6: 'call me' is not a phone number"),
        (
            7,
            False,
            f"row 7: imported {C}; also holds {D}, not imported (one number per contact)",
        ),
    ]
    with migrated_db.session() as session:
        kept = session.scalars(importer.issues_of(imp.id)).first()
        assert kept is not None and kept.cells == ["Short", "12345"]  # the row as it was
    assert sorted(contacts(migrated_db)) == [A, C]


def test_contacts_join_a_new_list_and_an_existing_one_once(migrated_db, tmp_path, instance):
    first = import_file(
        migrated_db, instance, _sheet(tmp_path, "a.csv", FIRST[:3]), new_list_name="Diwali VIP"
    )
    assert members(migrated_db, "Diwali VIP") == [A, B]
    with migrated_db.session() as session:
        list_id = first.list_id
        assert list_id is not None
        create_list(session, None, "Untouched")
    rows = [["Name", "Phone"], ["Asha", "9876543210"], ["Meera", "9876543212"]]
    rows += [["Meera again", "09876543212"]]
    again = import_file(
        migrated_db, instance, _sheet(tmp_path, "b.csv", rows), list_id=list_id, chunk_rows=2
    )
    assert again.list_id == list_id
    assert members(migrated_db, "Diwali VIP") == [A, B, C]
    assert members(migrated_db, "Untouched") == []


def _numbered(n: int) -> list[list[str]]:
    return [["Name", "Phone"], *[[f"P{i}", f"98765{i:05d}"] for i in range(n)]]


@pytest.mark.parametrize("ids_trusted", [True, False])
def test_new_contacts_join_the_list_by_id_or_fall_back_to_phones(
    migrated_db, tmp_path, instance, monkeypatch, ids_trusted
):
    from wabulk.contacts import bulk

    # Contacts made before the import: one in its sheet, then one not in it, with the
    # highest id (a wrong id range would take it into the list).
    before = [["Name", "Phone"], ["P11", "9876500011"], ["Outside", "9123456789"]]
    import_file(migrated_db, instance, _sheet(tmp_path, "old.csv", before))
    real = bulk.add_new_members
    outcomes: list[object] = []

    def watched(*args):
        try:
            outcomes.append(real(*args))
        except bulk.NotTheNewRows as exc:
            outcomes.append(exc)
            raise
        if not ids_trusted:
            raise bulk.NotTheNewRows("told to distrust the ids")
        return outcomes[-1]

    monkeypatch.setattr(bulk, "add_new_members", watched)
    rows = [*_numbered(12), ["Repeat", "9876500003"]]  # a repeat in a later chunk
    imp = import_file(
        migrated_db, instance, _sheet(tmp_path, "new.csv", rows), new_list_name="L", chunk_rows=4
    )
    assert (imp.created_count, imp.unchanged_count, imp.duplicate_count) == (11, 1, 1)
    assert members(migrated_db, "L") == sorted(f"+9198765{i:05d}" for i in range(12))
    with migrated_db.session() as session:
        assert session.get(ContactList, imp.list_id).member_count == 12
    if migrated_db.is_sqlite:  # chunks 1 and 2 are all new: their contacts joined by id
        assert outcomes[:2] == [4, 4]
    else:  # PostgreSQL ids come from a shared sequence: always by phone
        assert set(outcomes) == {None}


def test_an_opt_out_list_marks_contacts_and_creates_missing_ones(migrated_db, tmp_path, instance):
    import_file(migrated_db, instance, _sheet(tmp_path, "first.csv", FIRST[:3]))  # A and B
    earlier = [["Phone"], ["9876543211"]]
    import_file(
        migrated_db,
        instance,
        _sheet(tmp_path, "stop.csv", earlier),
        kind=ImportKind.OPT_OUTS,
        opt_out_reason="Replied STOP",
    )
    sheet = [["Phone", "Note"], ["9876543210", "x"], ["9876543211", "y"], ["9876543212", "z"]]
    imp = import_file(
        migrated_db,
        instance,
        _sheet(tmp_path, "dnd.csv", sheet),
        kind=ImportKind.OPT_OUTS,
        opt_out_reason="DND registry",
    )
    assert (imp.created_count, imp.updated_count, imp.unchanged_count) == (1, 1, 1)
    people = contacts(migrated_db)
    assert all(p["opted_out"] for p in people.values())
    assert people[A]["opt_out_reason"] == "DND registry"
    assert people[B]["opt_out_reason"] == "Replied STOP"  # already out: left as it was
    assert people[C]["opt_out_reason"] == "DND registry"
    assert people[C]["attributes"] == {}  # an opt-out list brings no attributes
    assert people[A]["attributes"] == {"city": "Pune", "plan": "Gold"}

    # A later ordinary import never opts anyone back in, and says how many are out.
    later = [*FIRST, ["Dev", "9876543213", "Agra", ""]]
    normal = import_file(migrated_db, instance, _sheet(tmp_path, "later.csv", later))
    assert normal.opted_out_count == 3
    assert normal.created_count == 1
    people = contacts(migrated_db)
    assert [p for p, v in people.items() if not v["opted_out"]] == [D]
    assert people[C]["attributes"] == {"city": "Goa"}  # details still update


@pytest.mark.parametrize("chunk_rows", [1, 5000])
def test_an_opted_out_contact_repeated_in_a_file_is_counted_once(
    migrated_db, tmp_path, instance, chunk_rows
):
    stop = _sheet(tmp_path, "stop.csv", [["Phone"], ["9876543210"]])
    import_file(migrated_db, instance, stop, kind=ImportKind.OPT_OUTS)
    rows = [["Name", "Phone"], ["Asha", "9876543210"], ["Asha", "09876543210"]]
    imp = import_file(migrated_db, instance, _sheet(tmp_path, "a.csv", rows), chunk_rows=chunk_rows)
    assert (imp.opted_out_count, imp.duplicate_count, imp.updated_count) == (1, 1, 1)


def test_completion_is_recorded_as_an_event_with_the_counts(migrated_db, tmp_path, instance):
    rows = [*FIRST, ["Bad", "12345", "", ""], ["Asha", "9876543210", "", ""]]
    imp = import_file(
        migrated_db, instance, _sheet(tmp_path, "diwali.csv", rows), new_list_name="Diwali"
    )
    with migrated_db.session() as session:
        texts = {e.kind: e.text for e in session.scalars(select(Event))}
    assert texts["import.started"] == "Import of 'diwali.csv' started."
    assert texts["import.completed"] == (
        "Imported 'diwali.csv' into 'Diwali': 5 rows read, 3 created, 0 updated, "
        "0 unchanged, 1 duplicates in the file, 1 invalid, 0 opted out."
    )
    assert imp.finished_at is not None


# ---- crashes, resuming and leases -----------------------------------------------------------

RESUMABLE = [
    ["Name", "Phone", "City"],
    ["Asha", "9876543210", "Pune"],  # chunk 1 (rows 2-4)
    ["Bad", "12345", ""],
    ["Ravi", "9876543211", "Delhi"],
    ["Asha R", "9876543210", ""],  # chunk 2: a duplicate of a row before the crash
    ["Meera", "9876543212", "Goa"],
    ["", "", ""],  # blank: skipped
    ["Dev", "9876543213 or 9876543299", "Agra"],
    ["Kiran", "9876543214", "Pune"],  # chunk 3
]


class Crash(RuntimeError):
    pass


def _crash_after_first_chunk(imp: Import) -> None:
    raise Crash(f"worker killed after row {imp.rows_done}")


def _snapshot(db: Database, import_id: int) -> tuple[object, ...]:
    with db.session() as session:
        imp = session.get(Import, import_id)
        assert imp is not None
        state = (counts(imp), imp.rows_done, imp.status, imp.lease_owner)
    return contacts(db), members(db, "Resumed"), issues(db, import_id), state


def _clean_run(tmp_path: Path, path: Path) -> tuple[object, ...]:
    clean = Database(f"sqlite:///{tmp_path / 'clean.db'}")
    migrate.upgrade(clean.engine)
    try:
        imp = import_file(clean, tmp_path / "clean", path, new_list_name="Resumed", chunk_rows=3)
        return _snapshot(clean, imp.id)
    finally:
        clean.dispose()


@pytest.mark.parametrize("resumer", ["same worker", "another worker after the lease expired"])
def test_a_crashed_import_resumes_to_the_same_result_as_a_clean_run(
    migrated_db, tmp_path, instance, resumer
):
    path = _sheet(tmp_path, "big.csv", RESUMABLE)
    import_id = upload(migrated_db, instance, path, new_list_name="Resumed")
    with migrated_db.session() as session:
        assert importer.claim_next(session, "worker-1") == import_id
    with pytest.raises(Crash, match="after row 4"):
        importer.run(
            migrated_db,
            import_id,
            instance,
            "worker-1",
            progress=_crash_after_first_chunk,
            chunk_rows=3,
        )

    # Exactly the first chunk is in: its rows, counts and cursor, nothing of the second.
    people, listed, reported, (done, rows_done, status, owner) = _snapshot(migrated_db, import_id)
    assert sorted(people) == [A, B]
    assert people[A]["name"] == "Asha"
    assert listed == [A, B]
    assert reported == [(3, True, "row 3: '12345' is too short for India")]
    assert done == dict(
        rows_read=3, created=2, updated=0, unchanged=0, duplicate=0, invalid=1, opted_out=0
    )
    assert (rows_done, status, owner) == (4, ImportStatus.RUNNING, "worker-1")

    worker = "worker-1"
    if resumer != "same worker":
        with migrated_db.session() as session:
            # The lease is live: nobody else may take the import.
            assert importer.claim_next(session, "worker-2") is None
            session.execute(
                update(Import)
                .where(Import.id == import_id)
                .values(lease_until=utcnow() - timedelta(seconds=1))
            )
        with migrated_db.session() as session:
            assert importer.claim_next(session, "worker-2") == import_id
        worker = "worker-2"
    finished = importer.run(migrated_db, import_id, instance, worker, chunk_rows=3)
    assert finished.status is ImportStatus.COMPLETED
    assert _snapshot(migrated_db, import_id) == _clean_run(tmp_path, path)


def test_a_stalled_worker_whose_lease_was_taken_over_writes_nothing_more(
    migrated_db, tmp_path, instance
):
    path = _sheet(tmp_path, "big.csv", RESUMABLE)
    import_id = upload(migrated_db, instance, path, new_list_name="Resumed")
    with migrated_db.session() as session:
        assert importer.claim_next(session, "worker-1") == import_id

    def stall_past_the_lease(imp: Import) -> None:
        # worker-1 hangs after its first chunk; its lease runs out and worker-2 takes over.
        with migrated_db.session() as session:
            session.execute(
                update(Import)
                .where(Import.id == import_id)
                .values(lease_until=utcnow() - timedelta(seconds=1))
            )
        with migrated_db.session() as session:
            assert importer.claim_next(session, "worker-2") == import_id

    with pytest.raises(RuntimeError, match="taken over by worker-2"):
        importer.run(
            migrated_db,
            import_id,
            instance,
            "worker-1",
            progress=stall_past_the_lease,
            chunk_rows=3,
        )
    assert sorted(contacts(migrated_db)) == [A, B]  # worker-1's second chunk never landed
    importer.run(migrated_db, import_id, instance, "worker-2", chunk_rows=3)
    assert _snapshot(migrated_db, import_id) == _clean_run(tmp_path, path)


def test_claim_next_never_hands_one_import_to_two_workers(migrated_db, tmp_path, instance):
    import_id = upload(migrated_db, instance, _sheet(tmp_path, "one.csv", FIRST))
    workers = [f"worker-{n}" for n in range(6)]
    start = threading.Barrier(len(workers))
    won: dict[str, int | None] = {}

    def claim(owner: str) -> None:
        start.wait()
        with migrated_db.session() as session:
            won[owner] = importer.claim_next(session, owner)

    threads = [threading.Thread(target=claim, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [w for w, got in won.items() if got == import_id]
    assert len(won) == len(workers)
    assert len(winners) == 1
    with migrated_db.session() as session:
        imp = session.get(Import, import_id)
        assert imp is not None
        assert (imp.status, imp.lease_owner) == (ImportStatus.RUNNING, winners[0])
        assert importer.claim_next(session, "late-worker") is None


def test_a_draft_is_not_run_and_a_finished_import_is_not_run_again(migrated_db, tmp_path, instance):
    path = _sheet(tmp_path, "first.csv", FIRST)
    with migrated_db.session() as session, path.open("rb") as stream:
        draft = importer.save_upload(session, None, instance, stream, "first.csv")
    with migrated_db.session() as session:
        assert importer.claim_next(session, "worker-1") is None  # a draft is not queued
    assert importer.run(migrated_db, draft.id, instance, "worker-1").status is ImportStatus.DRAFT
    done = import_file(migrated_db, instance, path)
    again = importer.run(migrated_db, done.id, instance, "worker-1")
    assert counts(again) == counts(done)
    assert len(contacts(migrated_db)) == 3
