"""When a recurring campaign's next run comes: DST changes, month ends, weekday sets."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from wabulk.campaigns.recurrence_rules import (
    Rule,
    describe,
    due_in_zone,
    end_of,
    next_occurrence,
    start_of,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))


def series(rule: Rule, after: datetime, n: int) -> list[datetime]:
    out: list[datetime] = []
    for _ in range(n):
        found = next_occurrence(rule, after)
        assert found is not None
        out.append(found)
        after = found
    return out


def test_new_york_keeps_ten_oclock_across_both_dst_changes() -> None:
    rule = Rule("daily", "10:00", timezone="America/New_York")
    march = series(rule, utc(2026, 3, 7, 0), 3)
    assert march == [utc(2026, 3, 7, 15), utc(2026, 3, 8, 14), utc(2026, 3, 9, 14)]
    november = series(rule, utc(2026, 10, 31, 0), 3)
    assert november == [utc(2026, 10, 31, 14), utc(2026, 11, 1, 15), utc(2026, 11, 2, 15)]
    for at in march + november:
        assert at.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "10:00"


def test_a_time_the_clocks_skip_runs_as_much_later_and_a_repeated_one_runs_first() -> None:
    skipped = Rule("daily", "02:30", timezone="America/New_York")
    # 8 March 2026: 02:00 jumps to 03:00; 02:30 does not exist, so it runs at 03:30 EDT.
    assert next_occurrence(skipped, utc(2026, 3, 8, 0)) == local(
        "America/New_York", 2026, 3, 8, 3, 30
    )
    twice = Rule("daily", "01:30", timezone="America/New_York")
    # 1 November 2026: 01:30 happens twice; the first one (EDT, 05:30 UTC) is taken.
    assert next_occurrence(twice, utc(2026, 11, 1, 0)) == utc(2026, 11, 1, 5, 30)


def test_sao_paulo_midnight_change_of_2018_and_its_end_in_2019() -> None:
    # São Paulo moved 00:00 to 01:00 on 4 November 2018: 00:30 ran at 01:30 local.
    rule = Rule("daily", "00:30", timezone="America/Sao_Paulo")
    found = next_occurrence(rule, utc(2018, 11, 3, 12))
    assert found == utc(2018, 11, 4, 3, 30)
    assert found.astimezone(ZoneInfo("America/Sao_Paulo")).strftime("%d %H:%M") == "04 01:30"
    # 17 February 2019: 00:00 went back to 23:00 on the 16th; 23:30 came twice, first taken.
    late = Rule("daily", "23:30", timezone="America/Sao_Paulo")
    assert next_occurrence(late, utc(2019, 2, 16, 12)) == utc(2019, 2, 17, 1, 30)


def test_london_weekly_monday_keeps_its_hour_when_summer_time_starts() -> None:
    rule = Rule("weekly", "09:00", weekdays=(0,), timezone="Europe/London")
    runs = series(rule, utc(2026, 3, 20), 3)
    assert runs == [utc(2026, 3, 23, 9), utc(2026, 3, 30, 8), utc(2026, 4, 6, 8)]


def test_the_31st_runs_on_each_shorter_month_s_last_day_leap_years_included() -> None:
    rule = Rule("monthly", "10:00", day_of_month=31, timezone="UTC")
    runs = series(rule, utc(2027, 12, 31, 11), 5)
    assert [r.date() for r in runs] == [
        date(2028, 1, 31),
        date(2028, 2, 29),
        date(2028, 3, 31),
        date(2028, 4, 30),
        date(2028, 5, 31),
    ]
    assert next_occurrence(rule, utc(2027, 1, 31, 11)) == utc(2027, 2, 28, 10)


def test_the_first_of_the_month_at_a_month_end_and_year_end() -> None:
    rule = Rule("monthly", "10:00", day_of_month=1, timezone="Asia/Kolkata")
    assert next_occurrence(rule, local("Asia/Kolkata", 2026, 12, 1, 10, 0)) == local(
        "Asia/Kolkata", 2027, 1, 1, 10, 0
    )
    assert next_occurrence(rule, local("Asia/Kolkata", 2026, 12, 1, 9, 59)) == local(
        "Asia/Kolkata", 2026, 12, 1, 10, 0
    )


def test_a_set_of_weekdays_in_order_and_a_start_date_in_the_future() -> None:
    starts = start_of(date(2026, 12, 10), Rule("weekly", timezone="UTC"))
    rule = Rule("weekly", "18:00", weekdays=(0, 3), timezone="UTC", starts_at=starts)
    runs = series(rule, utc(2026, 12, 6), 4)  # a Sunday, before the start
    assert [r.strftime("%a %d") for r in runs] == ["Thu 10", "Mon 14", "Thu 17", "Mon 21"]


def test_the_end_date_is_the_last_day_with_a_run() -> None:
    base = Rule("daily", "10:00", timezone="Europe/London")
    rule = Rule("daily", "10:00", timezone="Europe/London", ends_at=end_of(date(2027, 3, 31), base))
    assert next_occurrence(rule, utc(2027, 3, 30, 12)) == utc(2027, 3, 31, 9)
    assert next_occurrence(rule, utc(2027, 3, 31, 9)) is None


def test_in_customers_local_time_the_run_is_ready_before_the_day_begins_anywhere() -> None:
    rule = Rule("monthly", "10:00", day_of_month=1)
    occurrence = next_occurrence(rule, utc(2026, 11, 15))
    assert occurrence == utc(2026, 11, 30, 20)  # 10:00 on 1 December at UTC+14
    assert due_in_zone(rule, occurrence, "Asia/Kolkata") == utc(2026, 12, 1, 4, 30)
    assert due_in_zone(rule, occurrence, "America/New_York") == utc(2026, 12, 1, 15)
    assert due_in_zone(rule, occurrence, None) == utc(2026, 12, 1, 10)


def test_the_rule_in_words() -> None:
    until = end_of(date(2027, 3, 31), Rule("monthly"))
    monthly = Rule("monthly", "10:00", day_of_month=1, ends_at=until)
    assert describe(monthly) == (
        "Every month on the 1st at 10:00, each customer's local time, until 31 March 2027"
    )
    weekly = Rule("weekly", "09:30", weekdays=(0, 3), timezone="Asia/Kolkata")
    assert describe(weekly) == "Every Monday and Thursday at 09:30, Asia/Kolkata time"
    assert describe(Rule("monthly", "08:00", day_of_month=31, timezone="UTC")).startswith(
        "Every month on the 31st (or the month's last day, when it is shorter)"
    )
    assert describe(Rule("daily", "07:00")) == "Every day at 07:00, each customer's local time"
