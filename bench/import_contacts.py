"""Contacts import: rows per second and peak memory, beside the floor and the naive way.

Generates a messy 1,000,000-row CSV and a 200,000-row XLSX of Indian customers, imports
each into a fresh SQLite database the way the CLI and the web do (save_upload, preview,
configure, run), and measures in the same run:

- floor: the same reader and the same phone normalisation in a plain loop, no database;
- naive: `pandas.read_excel(engine="openpyxl")` and one ORM insert + flush per row
  (on 20,000 rows; rows/s extrapolates linearly).

Every measurement runs in its own child process (this script with `--child`), so peak RSS
belongs to that measurement alone and not to the generator or another baseline. Three
rounds of all five (one with --quick); each figure is its median round, since a shared
2-core machine's speed drifts by 10-20% from one minute to the next.
Prints; never fails on a slow machine. The last line is the JSON summary (see docs/performance.md).

    .venv/bin/python bench/import_contacts.py [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

BENCH = "import_contacts"
REGION = "IN"
SEED = 20261124
FULL = {"csv": 1_000_000, "xlsx": 200_000, "naive": 20_000}
QUICK = {"csv": 20_000, "xlsx": 5_000, "naive": 2_000}
TARGET_ROWS_PER_S = 50_000
TARGET_FLOOR_FACTOR = 1.5
TARGET_VS_NAIVE = 20
TARGET_PEAK_MB = 600

HEADER = [
    "Customer ID",
    "Name",
    "Phone",
    "City",
    "Pincode",
    "Due Amount",
    "Email",
    "Last Order",
    "Notes",
]
PHONE_HEADERS = {"phone", "mobile"}

# ---- data generation -------------------------------------------------------------------------

# Word lists stay as text (noqa SIM905): as list literals the formatter spreads them over 100 lines.
FIRST = (  # noqa: SIM905
    "Aarav Vivaan Aditya Vihaan Arjun Sai Reyansh Ayaan Krishna Ishaan Rohan Rahul Amit Suresh "
    "Ramesh Mahesh Vikram Anil Sunil Deepak Priya Ananya Diya Saanvi Aadhya Kavya Pooja Neha "
    "Sneha Anjali Lakshmi Meena Sunita Kiran Divya Shreya Fatima Imran Mohammed Harpreet Gurpreet"
).split()
LAST = (  # noqa: SIM905
    "Sharma Verma Gupta Singh Kumar Patel Shah Reddy Rao Nair Iyer Menon Das Bose Banerjee "
    "Chatterjee Mukherjee Joshi Kulkarni Deshpande Pillai Khan Ahmed Sheikh Yadav Mishra Pandey "
    "Agarwal Jain Mehta Chauhan Thakur Naidu Gowda Hegde"
).split()
CITIES = (  # noqa: SIM905
    "Mumbai|Delhi|Bengaluru|Hyderabad|Ahmedabad|Chennai|Kolkata|Pune|Jaipur|Surat|Lucknow|"
    "Kanpur|Nagpur|Indore|Thane|Bhopal|Visakhapatnam|Patna|Vadodara|Ludhiana|Agra|Nashik|"
    "Coimbatore|Kochi|Mysuru|Navi Mumbai"
).split("|")
NOTES = [
    "VIP",
    "call after 6pm, prefers Hindi",
    'said "not now"',
    "wholesale",
    "moved to new address",
    "referred by Rahul",
]
ORDER_DAYS = [date(2024, 1, 1) + timedelta(days=d) for d in range(700)]

# An affine map i -> (i * STEP + offset) mod MOD is one-to-one because STEP is coprime with MOD
# (odd, not a multiple of 5), so every index gives a distinct 10-digit mobile starting 6-9
# without keeping a million numbers in a set.
MOD = 4_000_000_000
STEP = 2_654_435_761
SECOND_NUMBERS = MOD // 2  # indices for second numbers in a cell never meet primary ones


def _mobile(index: int, offset: int) -> str:
    return str(6_000_000_000 + (index * STEP + offset) % MOD)


# How people and Excel write the same mobile, with rough shares from real uploads.
_TEXT_STYLES = [
    (30, lambda m: m),
    (3, lambda m: f" {m} "),
    (12, lambda m: f"+91 {m[:5]} {m[5:]}"),
    (10, lambda m: "91" + m),  # the + lost
    (8, lambda m: "0" + m),  # trunk 0
    (5, lambda m: f"0091 {m[:5]}-{m[5:]}"),
    (5, lambda m: f"({m[:5]}) {m[5:]}"),
    (5, lambda m: "'+91" + m),
    # "81281.00000" would read as the float 81281.0 (clean_cell's Excel rule), so no dots there.
    (4, lambda m: f"{m[:5]}.{m[5:]}" if m[5:] != "00000" else m),
    (5, lambda m: f"+91-{m[:5]}-{m[5:]}"),
    (5, lambda m: f"{m[:5]} {m[5:]}"),
]
_FLOAT_SHARE = 8  # CSV: "9.19876543210E+11"; XLSX: a numeric cell
_STYLE_FUNCS = [f for _, f in _TEXT_STYLES]
_STYLE_CUM: list[int] = []
for _weight, _ in _TEXT_STYLES:
    _STYLE_CUM.append((_STYLE_CUM[-1] if _STYLE_CUM else 0) + _weight)
_STYLE_TOTAL = _STYLE_CUM[-1] + _FLOAT_SHARE
INVALID = ["12345", "abc", "", "N/A", "0"]


def _styled(rng: random.Random, m: str, numeric: bool) -> str | int:
    pick = rng.random() * _STYLE_TOTAL
    if pick >= _STYLE_CUM[-1]:
        if numeric:
            return int("91" + m) if pick < _STYLE_CUM[-1] + _FLOAT_SHARE / 2 else int(m)
        digits = "91" + m
        return f"{digits[0]}.{digits[1:]}E+11"
    for i, edge in enumerate(_STYLE_CUM):
        if pick < edge:
            return _STYLE_FUNCS[i](m)
    return m


def people(n: int, numeric: bool, stats: Counter[str]) -> Iterator[list[Any]]:
    """n customer rows (cells in HEADER order); `stats` counts what the importer should find.

    `numeric` writes phones, pincodes, amounts and dates as workbook numbers/dates
    (for XLSX) instead of text.
    """
    rng = random.Random(SEED)
    offset = rng.randrange(MOD)
    fresh = 0  # mobiles handed out so far, all valid and primary: duplicates reuse one
    seconds = 0
    for i in range(n):
        roll = rng.random()
        if roll < 0.015:
            phone: str | int = rng.choice(INVALID)
            stats["invalid"] += 1
        elif roll < 0.035 and fresh:
            phone = _styled(rng, _mobile(rng.randrange(fresh), offset), numeric)
            stats["duplicate"] += 1
        elif roll < 0.045:
            m, other = _mobile(fresh, offset), _mobile(SECOND_NUMBERS + seconds, offset)
            fresh, seconds = fresh + 1, seconds + 1
            phone = f"{m[:5]} {m[5:]} / {other[:5]} {other[5:]}"
            stats["two_numbers"] += 1
        else:
            phone = _styled(rng, _mobile(fresh, offset), numeric)
            fresh += 1
        first, last = rng.choice(FIRST), rng.choice(LAST)
        amount = round(rng.uniform(0, 50_000), 2)
        style = rng.random()
        due: str | float
        if numeric and style < 0.7:
            due = amount
        elif style < 0.4:
            due = f"{amount:,.2f}"
        elif style < 0.7:
            due = f"₹{amount:,.0f}"
        elif style < 0.9:
            due = str(int(amount))
        else:
            due = ""
        day = rng.choice(ORDER_DAYS)
        ordered: str | date = day if numeric else day.strftime("%d/%m/%Y")
        if rng.random() < 0.1:
            ordered = ""
        pincode: str | int = rng.randint(110_001, 855_999)
        yield [
            f"C{100_000 + i}",
            f"{first} {last}" if rng.random() < 0.97 else "",
            phone,
            rng.choice(CITIES),
            pincode if numeric else str(pincode),
            due,
            f"{first}.{last}{i % 100}@gmail.com".lower() if rng.random() < 0.7 else "",
            ordered,
            rng.choice(NOTES) if rng.random() < 0.1 else "",
        ]


def _csv_field(value: Any) -> str:
    text = str(value)
    if any(ch in text for ch in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_csv(path: Path, n: int) -> Counter[str]:
    # Plain writes in batches: the csv module would double the generation time for nothing.
    stats: Counter[str] = Counter()
    # Excel's "CSV UTF-8" has a BOM and CRLF line ends; so does this file.
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        out.write(",".join(HEADER) + "\r\n")
        batch: list[str] = []
        for row in people(n, numeric=False, stats=stats):
            batch.append(",".join(map(_csv_field, row)))
            if len(batch) >= 50_000:
                out.write("\r\n".join(batch) + "\r\n")
                batch = []
        if batch:
            out.write("\r\n".join(batch) + "\r\n")
    return stats


def write_xlsx(path: Path, n: int) -> Counter[str]:
    import xlsxwriter

    stats: Counter[str] = Counter()
    options = {"constant_memory": True, "default_date_format": "dd/mm/yyyy"}
    with xlsxwriter.Workbook(str(path), options) as book:
        sheet = book.add_worksheet("Customers")
        sheet.write_row(0, 0, HEADER)
        for r, row in enumerate(people(n, numeric=True, stats=stats), start=1):
            sheet.write_row(r, 0, row)
    return stats


# ---- measurements (each runs in a child process) ---------------------------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _reader_peak_rss_mb() -> float:
    """The largest finished child process's peak (the import's reader, for big sheets)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _rss_now_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _fresh_database(near: Path) -> tuple[Any, Path]:
    from wabulk import migrate
    from wabulk.db import Database

    work = Path(tempfile.mkdtemp(prefix="db-", dir=near.parent))
    db = Database(f"sqlite:///{work}/bench.db")
    migrate.upgrade(db.engine)
    return db, work


def measure_product(path: Path) -> dict[str, Any]:
    from wabulk.contacts import importer
    from wabulk.contacts.phones import normalise

    db, work = _fresh_database(path)
    instance = work / "instance"
    instance.mkdir()
    normalise.cache_clear()
    rss_before = _rss_now_mb()
    start = time.perf_counter()
    with db.session() as session, path.open("rb") as stream:
        imp = importer.save_upload(session, None, instance, stream, path.name)
        shown = importer.preview(imp, instance, REGION)
        importer.configure(
            session, None, imp, instance, shown.mapping, REGION, new_list_name="Bench"
        )
        import_id = imp.id
    done = importer.run(db, import_id, instance, "bench")
    seconds = time.perf_counter() - start
    db.dispose()
    return {
        "seconds": seconds,
        "rows": done.rows_read,
        "status": str(done.status),
        "phone_column": shown.mapping.get("phone"),
        "created": done.created_count,
        "updated": done.updated_count,
        "unchanged": done.unchanged_count,
        "duplicate": done.duplicate_count,
        "invalid": done.invalid_count,
        "rss_before_mb": rss_before,
        # The import's reader process counts too: both are in memory at once.
        "peak_rss_mb": _peak_rss_mb() + _reader_peak_rss_mb(),
        "reader_peak_rss_mb": _reader_peak_rss_mb(),
    }


def measure_floor(path: Path) -> dict[str, Any]:
    from wabulk.contacts.phones import clean_cell, normalise
    from wabulk.contacts.sheets import open_sheet

    normalise.cache_clear()
    rss_before = _rss_now_mb()
    start = time.perf_counter()
    sheet = open_sheet(path)
    col = next(i for i, h in enumerate(sheet.header) if h.strip().lower() in PHONE_HEADERS)
    rows = valid = 0
    for _number, cells in sheet.rows():
        rows += 1
        valid += normalise(clean_cell(cells[col]), REGION).ok
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": rows,
        "valid": valid,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
    }


def measure_naive(path: Path) -> dict[str, Any]:
    """What a first version would do: pandas + openpyxl, parse, one ORM insert per row."""
    import pandas as pd
    import phonenumbers
    from phonenumbers import timezone as pn_timezone

    from wabulk.models import Contact

    db, _work = _fresh_database(path)
    rss_before = _rss_now_mb()
    start = time.perf_counter()
    frame = pd.read_excel(path, engine="openpyxl", dtype=str)
    phone_col = next(c for c in frame.columns if str(c).strip().lower() in PHONE_HEADERS)
    others = [c for c in frame.columns if c not in (phone_col, "Name")]
    # A set of phones already inserted stands in for the unique constraint: generous to the
    # naive way, which would otherwise need a SELECT per row or a failed flush per duplicate.
    seen: set[str] = set()
    inserted = 0
    with db.session() as session:
        for record in frame.to_dict("records"):
            raw = record[phone_col]
            if not isinstance(raw, str):
                continue
            try:
                number = phonenumbers.parse(raw, REGION)
            except phonenumbers.NumberParseException:
                continue
            if not phonenumbers.is_valid_number(number):
                continue
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if e164 in seen:
                continue
            seen.add(e164)
            zones = pn_timezone.time_zones_for_number(number)
            name = record.get("Name")
            session.add(
                Contact(
                    phone=e164,
                    name=name if isinstance(name, str) else None,
                    attributes={str(c): record[c] for c in others if isinstance(record[c], str)},
                    country=phonenumbers.region_code_for_number(number),
                    timezone=zones[0] if zones else None,
                )
            )
            session.flush()
            inserted += 1
    seconds = time.perf_counter() - start
    db.dispose()
    return {
        "seconds": seconds,
        "rows": len(frame),
        "inserted": inserted,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
    }


CHILDREN = {"product": measure_product, "floor": measure_floor, "naive": measure_naive}


def run_child(mode: str, path: Path) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(path)]
    # Our own interpreter running this very file: no untrusted input reaches the command.
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"the {mode} measurement on {path.name} failed (see above)")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the run ---------------------------------------------------------------------------------


def _rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else float("inf")


def _vs_naive(product_seconds: float, naive_seconds: float, sizes: dict[str, int]) -> float:
    return _rate(sizes["xlsx"], product_seconds) / _rate(sizes["naive"], naive_seconds)


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median time, with the highest peak memory of all the runs."""
    middle = dict(sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2])
    middle["peak_rss_mb"] = max(run["peak_rss_mb"] for run in runs)
    return middle


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _check_counts(label: str, got: dict[str, Any], rows: int, stats: Counter[str]) -> None:
    """Print (never fail) when the import's counts differ from what the generator wrote."""
    expected = {"rows": rows, "invalid": stats["invalid"], "duplicate": stats["duplicate"]}
    wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    if got.get("status") != "completed" or wrong:
        print(f"  WARNING {label}: status {got.get('status')}, (got, expected) {wrong}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke check")
    parser.add_argument(
        "--repeat", type=int, default=None, help="rounds of measurements (3; --quick: 1)"
    )
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, path = args.child
        print(json.dumps(CHILDREN[mode](Path(path))))
        return 0

    sizes = QUICK if args.quick else FULL
    args.repeat = args.repeat or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="wabulk-bench-") as tmp:
        folder = Path(tmp)
        csv_path, xlsx_path = folder / "customers.csv", folder / "customers.xlsx"
        naive_path = folder / "customers-naive.xlsx"
        start = time.perf_counter()
        csv_stats = write_csv(csv_path, sizes["csv"])
        xlsx_stats = write_xlsx(xlsx_path, sizes["xlsx"])
        write_xlsx(naive_path, sizes["naive"])  # same seed: the first rows of the big XLSX
        print(
            f"generated {sizes['csv']:,}-row CSV ({csv_path.stat().st_size / 2**20:.0f} MiB), "
            f"{sizes['xlsx']:,}-row XLSX ({xlsx_path.stat().st_size / 2**20:.0f} MiB), "
            f"{sizes['naive']:,}-row XLSX in {time.perf_counter() - start:.1f} s; "
            f"CSV has {csv_stats['invalid']:,} invalid, {csv_stats['duplicate']:,} duplicate, "
            f"{csv_stats['two_numbers']:,} two-number phone cells"
        )

        plan = {
            "floor_csv": ("floor", csv_path),
            "product_csv": ("product", csv_path),
            "floor_xlsx": ("floor", xlsx_path),
            "product_xlsx": ("product", xlsx_path),
            "naive": ("naive", naive_path),
        }
        # Rounds of every measurement, not each one N times in a row: a slow spell of the
        # machine then touches the product and its baselines alike; the median round counts.
        runs: dict[str, list[dict[str, Any]]] = {key: [] for key in plan}
        for round_number in range(1, args.repeat + 1):
            for key, (mode, path) in plan.items():
                runs[key].append(run_child(mode, path))
            seconds = ", ".join(f"{k} {v[-1]['seconds']:.2f}" for k, v in runs.items())
            last = {k: v[-1]["seconds"] for k, v in runs.items()}
            csv_ratio = last["product_csv"] / last["floor_csv"]
            xlsx_ratio = _vs_naive(last["product_xlsx"], last["naive"], sizes)
            print(
                f"round {round_number}: {seconds} s; CSV {csv_ratio:.2f}x the floor, "
                f"XLSX {xlsx_ratio:.1f}x the naive way"
            )
        floor_csv, product_csv, floor_xlsx, product_xlsx, naive = (
            _median(runs[key]) for key in plan
        )

    _check_counts("CSV import", product_csv, sizes["csv"], csv_stats)
    _check_counts("XLSX import", product_xlsx, sizes["xlsx"], xlsx_stats)
    csv_rps = _rate(sizes["csv"], product_csv["seconds"])
    floor_rps = _rate(sizes["csv"], floor_csv["seconds"])
    xlsx_rps = _rate(sizes["xlsx"], product_xlsx["seconds"])
    xlsx_floor_rps = _rate(sizes["xlsx"], floor_xlsx["seconds"])
    naive_rps = _rate(sizes["naive"], naive["seconds"])
    floor_over_product = floor_csv["seconds"] / product_csv["seconds"]
    vs_naive = _vs_naive(product_xlsx["seconds"], naive["seconds"], sizes)
    peak = product_csv["peak_rss_mb"]

    for label, figures, rows in [
        (f"CSV  product ({sizes['csv']:,} rows)", product_csv, sizes["csv"]),
        (f"CSV  floor   ({sizes['csv']:,} rows)", floor_csv, sizes["csv"]),
        (f"XLSX product ({sizes['xlsx']:,} rows)", product_xlsx, sizes["xlsx"]),
        (f"XLSX floor   ({sizes['xlsx']:,} rows)", floor_xlsx, sizes["xlsx"]),
        (f"XLSX naive   ({sizes['naive']:,} rows)", naive, sizes["naive"]),
    ]:
        print(
            f"{label:<32} {figures['seconds']:8.2f} s  {_rate(rows, figures['seconds']):>9,.0f} "
            f"rows/s  peak RSS {figures['peak_rss_mb']:6.0f} MiB "
            f"(at start {figures['rss_before_mb'] or 0:.0f} MiB)"
        )
    print(
        f"CSV import: {product_csv['created']:,} created, {product_csv['duplicate']:,} "
        f"duplicates, {product_csv['invalid']:,} invalid; "
        f"naive inserted {naive['inserted']:,} of {naive['rows']:,}"
    )
    print("targets:")
    print(
        f"  CSV end to end >= {TARGET_ROWS_PER_S:,} rows/s: {csv_rps:,.0f}"
        f"  {_verdict(csv_rps >= TARGET_ROWS_PER_S)}"
    )
    print(
        f"  CSV within {TARGET_FLOOR_FACTOR}x of the floor: "
        f"{product_csv['seconds'] / floor_csv['seconds']:.2f}x"
        f"  {_verdict(floor_over_product >= 1 / TARGET_FLOOR_FACTOR)}"
    )
    print(
        f"  XLSX >= {TARGET_VS_NAIVE}x the naive way: {vs_naive:.1f}x"
        f"  {_verdict(vs_naive >= TARGET_VS_NAIVE)}"
    )
    print(
        f"  peak RSS < {TARGET_PEAK_MB} MB for the {sizes['csv']:,}-row CSV: {peak:.0f} MiB"
        f" (writer and reader process together)"
        f"  {_verdict(peak < TARGET_PEAK_MB)}"
        + ("" if sizes is FULL else " (quick run: sizes are not the issue's)")
    )
    summary = {
        "bench": BENCH,
        "unit": "rows/s",
        "product": round(csv_rps),
        "baseline": {
            "csv_floor_rows_per_s": round(floor_rps),
            "naive_xlsx_rows_per_s": round(naive_rps),
            "xlsx_rows_per_s": round(xlsx_rps),
            "xlsx_floor_rows_per_s": round(xlsx_floor_rps),
            "peak_rss_mb": round(peak, 1),
            "csv_floor_peak_rss_mb": round(floor_csv["peak_rss_mb"], 1),
            "csv_rows": sizes["csv"],
            "xlsx_rows": sizes["xlsx"],
            "naive_rows": sizes["naive"],
        },
        "ratio": {
            "floor_over_product": round(floor_over_product, 3),
            "vs_naive": round(vs_naive, 1),
        },
        "target": {
            "product": TARGET_ROWS_PER_S,
            "floor_over_product": round(1 / TARGET_FLOOR_FACTOR, 3),
            "vs_naive": TARGET_VS_NAIVE,
            "peak_rss_mb": TARGET_PEAK_MB,
        },
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
