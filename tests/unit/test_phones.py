"""Phone cells to E.164: the artefacts spreadsheets produce, and the fast path's exactness."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from phonenumbers import timezone as pn_timezone

from wabulk.contacts import phones
from wabulk.contacts.phones import clean_cell, normalise

INDIA = "+919876543210"


@pytest.mark.parametrize(
    "cell",
    [
        "9.19876543210E+11",  # Excel's scientific notation
        "9.1987654321e11",
        "919876543210.0",  # a number column exported as float
        "'9876543210",  # leading apostrophe that forces text in Excel
        "\u20189876543210",  # the same, auto-corrected to a curly quote
        "98765 43210",
        "98765\u00a043210",  # non-breaking space
        "98.765.43210",
        "98765-43210",
        "(98765) 43210",
        "[98765] 43210",
        "09876543210",  # trunk 0
        "0 98765 43210",
        "00919876543210",  # 00 international prefix
        "00 91 98765 43210",
        "919876543210",  # the + lost by Excel
        "+919876543210",
        "+91 98765 43210",
        "+91-98765-43210",
        "  +91 (98765) 43210  ",
    ],
)
def test_spreadsheet_artefacts_become_the_same_e164(cell: str) -> None:
    result = normalise(clean_cell(cell), "IN")
    assert result.ok, result.error
    assert result.e164 == INDIA
    assert result.country == "IN"
    assert result.extras == ()


@pytest.mark.parametrize("value", [9.19876543210e11, 919876543210.0, 919876543210])
def test_python_numbers_from_a_workbook_lose_no_digits(value: float) -> None:
    assert clean_cell(value) == "919876543210"
    assert normalise(clean_cell(value), "IN").e164 == INDIA


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (True, ""),
        (float("nan"), ""),
        (float("inf"), ""),
        ("  '  9876543210 ", "9876543210"),
        ("9.19876543210E+11", "919876543210"),
        ("9876543210.000", "9876543210"),
        ("12.5", "12.5"),  # not an integer: left alone
        ("Asha", "Asha"),
    ],
)
def test_clean_cell_undoes_only_excel_artefacts(value: object, expected: str) -> None:
    assert clean_cell(value) == expected


def test_timezone_and_country_come_from_the_number() -> None:
    result = normalise("9876543210", "IN")
    library = pn_timezone.time_zones_for_number(phonenumbers.parse(INDIA))
    assert library == (result.timezone,)
    assert result.country == "IN"


@pytest.mark.parametrize(
    ("cell", "region", "e164", "country"),
    [
        ("(650) 253-0000", "US", "+16502530000", "US"),
        ("650.253.0000", "US", "+16502530000", "US"),
        ("1 650 253 0000", "US", "+16502530000", "US"),
        ("+1 650 253 0000", "IN", "+16502530000", "US"),
        ("020 7946 0958", "GB", "+442079460958", "GB"),
        ("+44 20 7946 0958", "IN", "+442079460958", "GB"),
        ("07400 123456", "GB", "+447400123456", "GB"),
        ("447400123456", "IN", "+447400123456", "GB"),  # + lost, other country
        ("00447400123456", "IN", "+447400123456", "GB"),
    ],
)
def test_other_countries_with_and_without_plus(
    cell: str, region: str, e164: str, country: str
) -> None:
    result = normalise(clean_cell(cell), region)
    assert (result.e164, result.country) == (e164, country)
    zones = pn_timezone.time_zones_for_number(phonenumbers.parse(e164))
    assert result.timezone == (zones[0] if len(zones) == 1 else None)


def test_a_number_written_for_another_country_is_read_in_the_default_region() -> None:
    # Without a country code, the sheet's default country decides.
    assert normalise("6502530000", "US").e164 == "+16502530000"
    assert normalise("6502530000", "IN").e164 == "+916502530000"


@pytest.mark.parametrize(
    ("cell", "e164", "extras"),
    [
        ("98765 43210, 98765 11111", INDIA, ("+919876511111",)),
        ("9876543210 / 9876511111", INDIA, ("+919876511111",)),
        ("9876543210; +1 650 253 0000", INDIA, ("+16502530000",)),
        ("9876543210 or 9876511111", INDIA, ("+919876511111",)),
        ("9876543210\n9876511111", INDIA, ("+919876511111",)),
        ("9876543210  9876511111", INDIA, ("+919876511111",)),  # two spaces split
        ("9876543210, 09876543210", INDIA, ()),  # the same number twice is one number
        ("9876543210 / 12345", INDIA, ("12345",)),  # an invalid extra is still reported
        ("12345 / 9876543210", INDIA, ("12345",)),  # the first *valid* one wins
    ],
)
def test_several_numbers_in_one_cell_keep_the_first_valid_and_report_the_rest(
    cell: str, e164: str, extras: tuple[str, ...]
) -> None:
    result = normalise(cell, "IN")
    assert result.e164 == e164
    assert result.extras == extras


def test_a_short_number_says_how_and_for_which_country() -> None:
    result = normalise("12345", "IN")
    assert not result.ok
    assert result.error == "'12345' is too short for India"


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("Asha", "is not a phone number"),
        ("n/a", "is not a phone number"),
        ("-", "is not a phone number"),
        ("98765432101234567890", "is too long"),
        ("+999 1234 5678", "has no valid country code"),
        ("5555555555", "is not a valid number for India"),
    ],
)
def test_non_numbers_are_rejected_with_a_reason(cell: str, words: str) -> None:
    result = normalise(cell, "IN")
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith(f"'{cell}' ")
    assert words in result.error


@pytest.mark.parametrize("cell", ["", "   ", clean_cell(None), clean_cell(float("nan"))])
def test_an_empty_cell_has_no_phone_number(cell: str) -> None:
    result = normalise(cell, "IN")
    assert not result.ok
    assert result.error == "has no phone number"


# ---- the fast path gives exactly what phonenumbers.parse gives -------------------------------

NUMBER_TYPES = [
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.UAN,
]
REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


def _renderings(number: phonenumbers.PhoneNumber) -> set[str]:
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    return {
        e164,
        phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL),
        national,
        "".join(ch for ch in national if ch.isdigit()),
        e164[1:],  # + lost
        "00" + e164[1:],
    }


EXAMPLES = [
    (region, text)
    for region in REGIONS
    for kind in NUMBER_TYPES
    if (number := phonenumbers.example_number_for_type(region, kind)) is not None
    for text in sorted(_renderings(number))
]


def _both_ways(text: str, region: str) -> tuple[phones.PhoneResult, phones.PhoneResult]:
    phones.normalise.cache_clear()
    fast = phones.normalise(text, region)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(phones, "quick", lambda *a: None)
        phones.normalise.cache_clear()
        slow = phones.normalise(text, region)
    phones.normalise.cache_clear()
    return fast, slow


def test_the_fast_path_is_taken_for_plain_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = phones.quick

    def spy(text: str, region: str) -> tuple[str, str, str | None] | None:
        calls.append(text)
        return real(text, region)

    monkeypatch.setattr(phones, "quick", spy)
    normalise.cache_clear()
    for cell in ["98765 43210", "919876543210", "09876543210", "0091 98765-43210"]:
        calls.clear()
        assert normalise(cell, "IN").e164 == INDIA
        assert calls == [cell]
        assert real(cell, "IN") == (INDIA, "IN", "Asia/Calcutta")
    normalise.cache_clear()


def test_fast_path_equals_parser_on_example_numbers_of_every_region() -> None:
    assert len({region for region, _ in EXAMPLES}) > 200
    mismatches = []
    for region, text in EXAMPLES:
        for default in {region, "IN", "US"}:
            fast, slow = _both_ways(text, default)
            if fast != slow:
                mismatches.append((text, default, fast, slow))
    assert mismatches == []


@settings(max_examples=300, deadline=None)
@given(
    example=st.sampled_from(EXAMPLES),
    default=st.sampled_from(REGIONS),
    separator=st.sampled_from(["", " ", "-", "."]),
)
def test_fast_path_equals_parser_on_examples_read_in_any_region(
    example: tuple[str, str], default: str, separator: str
) -> None:
    _, text = example
    if separator:
        text = separator.join([text[:4], text[4:]]) if text[:1].isdigit() else text
    fast, slow = _both_ways(text, default)
    assert fast == slow


@settings(max_examples=500, deadline=None)
@given(
    digits=st.text(alphabet="0123456789", min_size=6, max_size=15),
    prefix=st.sampled_from(["", "", "+", "00", "0"]),
    default=st.sampled_from(REGIONS),
)
def test_fast_path_equals_parser_on_random_digits(digits: str, prefix: str, default: str) -> None:
    fast, slow = _both_ways(prefix + digits, default)
    assert fast == slow


# ---- the same, at length: make test-slow -----------------------------------------------------


def _varied(number: phonenumbers.PhoneNumber, rng: random.Random, count: int) -> list[str]:
    """The example number with its last four digits replaced, `count` times, in every
    rendering (valid numbers and near misses alike: both ways must agree on either)."""
    national = str(number.national_number)
    texts: set[str] = set()
    for _ in range(count):
        digits = national[:-4] + "".join(rng.choice("0123456789") for _ in range(4))
        varied = phonenumbers.PhoneNumber(
            country_code=number.country_code,
            national_number=int(digits),
            italian_leading_zero=number.italian_leading_zero,
            number_of_leading_zeros=number.number_of_leading_zeros,
        )
        texts |= _renderings(varied)
    return sorted(texts)


@pytest.mark.slow
def test_fast_path_equals_parser_on_varied_numbers_of_every_region_at_length() -> None:
    rng = random.Random(5)
    mismatches, checked = [], 0
    for region in REGIONS:
        for kind in NUMBER_TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            for text in _varied(example, rng, 8):
                for default in sorted({region, "IN", "US", "GB"}):
                    fast, slow = _both_ways(text, default)
                    checked += 1
                    if fast != slow:
                        mismatches.append((text, default, fast, slow))
    assert checked > 100_000
    assert mismatches == []


# What people put around and between digits in a phone cell.
_NOISE = st.sampled_from([" ", "-", ".", "(", ")", "/", "+", "'", "\u00a0", "x", "ext. ", ",", ";"])


@pytest.mark.slow
@settings(max_examples=30_000, deadline=None)
@given(
    parts=st.lists(
        st.one_of(st.text(alphabet="0123456789", min_size=1, max_size=6), _NOISE),
        min_size=1,
        max_size=8,
    ),
    default=st.sampled_from(REGIONS),
)
def test_fast_path_equals_parser_on_noisy_cells_at_length(parts: list[str], default: str) -> None:
    fast, slow = _both_ways("".join(parts), default)
    assert fast == slow


@pytest.mark.slow
@settings(max_examples=30_000, deadline=None)
@given(
    digits=st.text(alphabet="0123456789", min_size=4, max_size=17),
    prefix=st.sampled_from(["", "+", "00", "0", "011", "+0", "0 0"]),
    default=st.sampled_from(REGIONS),
)
def test_fast_path_equals_parser_on_random_digits_at_length(
    digits: str, prefix: str, default: str
) -> None:
    fast, slow = _both_ways(prefix + digits, default)
    assert fast == slow
