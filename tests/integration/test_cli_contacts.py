"""`wabulk contacts import/export` as a user runs them: a real process, real files."""

from __future__ import annotations

import csv

import pytest

from ..support import run_wabulk

SHEET = "Mobile,Customer Name,City\n9876543210,Asha,Pune\n12345,Bad,Goa\n+1 415 555 2671,Maria,SF\n"


@pytest.fixture
def instance(tmp_path):
    path = tmp_path / "instance"
    assert run_wabulk(path, "db", "upgrade").returncode == 0
    return path


def test_import_prints_the_summary_and_writes_the_report(instance, tmp_path) -> None:
    sheet = tmp_path / "customers.csv"
    sheet.write_text(SHEET)
    result = run_wabulk(
        instance, "contacts", "import", str(sheet), "--list", "VIP", "--country", "IN"
    )
    assert result.returncode == 0, result.stderr
    assert (
        "Imported 'customers.csv' into 'VIP': 3 rows read, 2 created, 0 updated, "
        "0 unchanged, 0 duplicates in the file, 1 invalid, 0 opted out."
    ) in result.stdout
    assert "row 3: '12345' is too short for India" in result.stdout
    report = next(tmp_path.glob("customers-import-*-report.csv"))
    rows = list(csv.reader(report.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[1][:3] == ["3", "rejected", "row 3: '12345' is too short for India"]
    again = run_wabulk(
        instance,
        "contacts",
        "import",
        str(sheet),
        "--list",
        "VIP",
        "--country",
        "IN",
        "--report",
        str(tmp_path / "r2.csv"),
    )
    assert "0 created, 0 updated, 2 unchanged" in again.stdout


def test_unreadable_file_exits_non_zero_with_a_message(instance, tmp_path) -> None:
    empty = tmp_path / "empty.xlsx"
    empty.write_bytes(b"")
    result = run_wabulk(instance, "contacts", "import", str(empty), "--country", "IN")
    assert result.returncode != 0
    assert "The file is empty." in result.stderr and "Traceback" not in result.stderr


def test_country_is_required_until_a_default_is_set(instance, tmp_path) -> None:
    sheet = tmp_path / "c.csv"
    sheet.write_text(SHEET)
    result = run_wabulk(instance, "contacts", "import", str(sheet))
    assert result.returncode != 0 and "Pass --country" in result.stderr
    assert run_wabulk(instance, "settings", "default-country", "in").returncode == 0
    assert run_wabulk(instance, "contacts", "import", str(sheet)).returncode == 0
    bad = run_wabulk(instance, "settings", "default-country", "XX")
    assert bad.returncode != 0 and "not a country code" in bad.stderr


def test_mapping_override_and_its_errors(instance, tmp_path) -> None:
    sheet = tmp_path / "c.csv"
    sheet.write_text("Notes,Contact\nhello,9876543210\n")
    ok = run_wabulk(
        instance, "contacts", "import", str(sheet), "--country", "IN", "--mapping", "phone=Contact"
    )
    assert ok.returncode == 0 and "1 created" in ok.stdout
    bad = run_wabulk(
        instance, "contacts", "import", str(sheet), "--country", "IN", "--mapping", "phone=Mobile"
    )
    assert bad.returncode != 0
    assert "--mapping 'phone=Mobile': there is no column \"Mobile\"" in bad.stderr
    # The refused import keeps no copy of the file (only the earlier, successful one).
    assert len(list((instance / "imports").iterdir())) == 1


def test_export_writes_e164_name_opted_out_then_attributes(instance, tmp_path) -> None:
    sheet = tmp_path / "c.csv"
    sheet.write_text(SHEET)
    run_wabulk(instance, "contacts", "import", str(sheet), "--list", "VIP", "--country", "IN")
    out = tmp_path / "out.csv"
    result = run_wabulk(instance, "contacts", "export", "--list", "VIP", "--output", str(out))
    assert result.returncode == 0 and "Wrote 2 contacts" in result.stdout
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert list(rows[0])[:3] == ["phone", "name", "opted_out"]
    assert {(r["phone"], r["name"], r["opted_out"], r["city"]) for r in rows} == {
        ("+919876543210", "Asha", "no", "Pune"),
        ("+14155552671", "Maria", "no", "SF"),
    }
    xlsx = tmp_path / "out.xlsx"
    assert run_wabulk(instance, "contacts", "export", "--output", str(xlsx)).returncode == 0
    from wabulk.contacts.sheets import open_sheet

    assert open_sheet(xlsx).header[:3] == ["phone", "name", "opted_out"]
    missing = run_wabulk(instance, "contacts", "export", "--list", "Nope", "--output", str(out))
    assert missing.returncode != 0 and "There is no list called 'Nope'" in missing.stderr


def test_opt_out_import_from_the_cli(instance, tmp_path) -> None:
    sheet = tmp_path / "c.csv"
    sheet.write_text(SHEET)
    run_wabulk(instance, "contacts", "import", str(sheet), "--country", "IN")
    stop = tmp_path / "stop.csv"
    stop.write_text("Phone\n9876543210\n")
    result = run_wabulk(
        instance,
        "contacts",
        "import",
        str(stop),
        "--country",
        "IN",
        "--opt-outs",
        "--reason",
        "Replied STOP",
    )
    assert result.returncode == 0 and "1 newly opted out" in result.stdout
    out = tmp_path / "o.csv"
    run_wabulk(instance, "contacts", "export", "--status", "opted_out", "--output", str(out))
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert [(r["phone"], r["opted_out"], r["opt_out_reason"]) for r in rows] == [
        ("+919876543210", "yes", "Replied STOP")
    ]


def test_a_repeated_number_keeps_its_first_row_unless_told_and_the_report_lists_it(
    instance, tmp_path
) -> None:
    sheet = tmp_path / "dups.csv"
    sheet.write_text("Sr No,Name,Phone\n1,Deepa Patel,9876543210\n2,Dup of row 1,09876543210\n")
    base = ("contacts", "import", str(sheet), "--country", "IN", "--mapping", "skip=Sr No")
    first = run_wabulk(instance, *base)
    assert first.returncode == 0, first.stderr
    assert "1 created, 0 updated, 0 unchanged, 1 duplicates in the file" in first.stdout
    assert "row 3 repeats row 2 (+919876543210); not taken: Name 'Dup of row 1'" in first.stdout
    report = next(tmp_path.glob("dups-import-*-report.csv"))
    rows = list(csv.reader(report.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[1][:2] == ["3", "rejected"]

    # The same sheet again, no --mapping: "Sr No" stays skipped, as chosen last time.
    again = run_wabulk(instance, "contacts", "import", str(sheet), "--country", "IN")
    assert "0 created, 0 updated, 1 unchanged" in again.stdout, again.stdout

    last = run_wabulk(instance, *base, "--duplicates", "last")
    assert "0 created, 1 updated, 0 unchanged" in last.stdout, last.stdout
    assert "taken, as the last row wins; replaced: Name 'Deepa Patel'" in last.stdout
    listed = run_wabulk(instance, "contacts", "export", "--output", str(tmp_path / "out.csv"))
    assert listed.returncode == 0, listed.stderr
    assert "Dup of row 1" in (tmp_path / "out.csv").read_text(encoding="utf-8-sig")
