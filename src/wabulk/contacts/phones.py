"""Phone numbers: the one place that turns what people type into E.164.

- Cleans the artefacts spreadsheets produce: floats (`9.19876543210E+11`, `919876543210.0`),
  leading apostrophes, spaces, dots, dashes, brackets, `00` international prefix, a trunk `0`,
  a `+` lost by Excel, several numbers in one cell (the first valid one wins; the others are
  reported).
- Validity is phonenumbers' own rule (`is_valid_number`). The shapes sheets hold most go
  through `phone_rules.quick`, the parser's steps on patterns compiled once (~2 µs instead
  of ~15: the parser was most of an import's time); anything else, and every invalid number,
  goes to `phonenumbers.parse`, which also words the reason. A test compares both ways.
- Country and timezone come from the number.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber
from phonenumbers import timezone as pn_timezone

from ..words import N_, said
from .phone_rules import (
    STRIP_RE,
    UNKNOWN_TZ,
    country_timezone,
    is_valid,
    quick,
    single_region,
)

E164 = phonenumbers.PhoneNumberFormat.E164
# Excel's float renderings of a long number. A short integer part ("81281.00000") is a number
# written with a dot, not a float.
_FLOAT_RE = re.compile(r"^\d+(\.\d+)?[eE]\+?\d+$|^\d{7,}\.0+$")
# Separators between several numbers in one cell. A lone "-" or space is formatting, not a split.
_SPLIT_RE = re.compile(r"\s*(?:[,;/|\n]|\s+or\s+|\s{2,})\s*", re.IGNORECASE)
# Whether _SPLIT_RE matches anywhere, at half its cost (no leading \s* to try at every
# position): most cells hold one number, and this runs for each of them.
_SEPARATOR_RE = re.compile(r"[,;/|\n]|\s(?:\s|or\s)", re.IGNORECASE)
# "+" and at most 15 digits: E.164's own limit (and WhatsApp's). phonenumbers calls some
# longer numbers valid (German fixed lines of 14 national digits), which no one can message.
_MAX_E164 = 16
# Why a cell is not a number, as (the whole sentence's msgid, the country it names): the
# sentence is written once the cell's text is known ("'12345' is too short for India").
Why = tuple[str, str | None]
_TOO_LONG: Why = (N_("'%(number)s' is too long for a phone number (more than 15 digits)"), None)
_NOT_A_NUMBER: Why = (N_("'%(number)s' is not a phone number"), None)
# Every phone error that depends on the business's country says where it is set ("Settings →
# General", in phone_problem's sentences), and pages add a link next to it.
LANDLINE = N_("Landline: may not reach a phone")


class PhoneResult(NamedTuple):
    """What one cell became: a number, or the reason it could not be one.

    Immutable (normalise's cache hands the same one to every caller), and a tuple rather than
    a frozen dataclass: made once per phone of an import, and five times faster to make.
    """

    e164: str | None
    country: str | None = None
    timezone: str | None = None
    error: str | None = None
    # Other numbers found in the same cell; not imported, but reported.
    extras: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.e164 is not None


def region_name(region: str | None) -> str:
    """English name of a region code: "IN" → "India"."""
    if not region:
        return "an unknown country"
    from .regions import NAMES

    return NAMES.get(region, region)


def phone_problem(text: str, error: str | None, region: str | None) -> str:
    """A sentence for a number `normalise` refused, saying which country numbers without a
    country code are read as, and where that is set."""
    error = error or "is not a phone number"
    written = text.strip()
    if written.startswith(("+", "00")) or not any(c.isdigit() for c in written):
        # The country setting cannot be the cause: the number names its own country, or
        # there is no number at all.
        return said("The phone number %(problem)s.", problem=error)
    if not region and "country code" in error:
        return said(
            "The phone number '%(number)s' has no country code: write it with one (such as "
            "+91), or set your country under Settings → General.",
            number=text,
        )
    if not region:
        return said(
            "The phone number %(problem)s. Set your country under Settings → General for "
            "numbers without a country code.",
            problem=error,
        )
    return said(
        "The phone number %(problem)s. Numbers without a country code are read as numbers in "
        "%(country)s; set your country under Settings → General.",
        problem=error,
        country=region_name(region),
    )


def is_region(code: str | None) -> bool:
    return bool(code) and code.upper() in phonenumbers.SUPPORTED_REGIONS


def clean_cell(value: object) -> str:
    """A cell's text with Excel's float and apostrophe artefacts undone."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):  # NaN / inf
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value).strip().lstrip("'\u2018\u2019").strip()
    if _FLOAT_RE.match(text):
        try:
            number = Decimal(text)
        except InvalidOperation:
            return text
        if number == number.to_integral_value():
            return str(int(number))
    return text


def _parse_one(text: str, region: str) -> tuple[PhoneNumber | None, Why | None]:
    try:
        return phonenumbers.parse(text, region), None
    except NumberParseException as exc:
        return None, _PARSE_ERRORS.get(exc.error_type, (_UNWORDED, str(exc)))


_NO_COUNTRY_CODE: Why = (N_("'%(number)s' has no valid country code"), None)
_TOO_SHORT: Why = (N_("'%(number)s' is too short"), None)
_PARSE_ERRORS: dict[int, Why] = {
    NumberParseException.INVALID_COUNTRY_CODE: _NO_COUNTRY_CODE,
    NumberParseException.NOT_A_NUMBER: _NOT_A_NUMBER,
    NumberParseException.TOO_SHORT_AFTER_IDD: _TOO_SHORT,
    NumberParseException.TOO_SHORT_NSN: _TOO_SHORT,
    NumberParseException.TOO_LONG: (N_("'%(number)s' is too long"), None),
}
# The parser's own words for a failure it has no type for (kept as it says them).
_UNWORDED = "'%(number)s' %(country)s"


def _why_invalid(number: PhoneNumber, region: str) -> Why:
    target = region_name(phonenumbers.region_code_for_number(number) or region)
    reason = phonenumbers.is_possible_number_with_reason(number)
    r = phonenumbers.ValidationResult
    if reason == r.TOO_SHORT:
        return N_("'%(number)s' is too short for %(country)s"), target
    if reason == r.TOO_LONG:
        return N_("'%(number)s' is too long for %(country)s"), target
    if reason == r.INVALID_COUNTRY_CODE:
        return _NO_COUNTRY_CODE
    return N_("'%(number)s' is not a valid number for %(country)s"), target


def _cell_error(text: str, why: Why) -> str:
    """The sentence for a cell that holds no number: "'12345' is too short for India"."""
    return said(why[0], number=text, country=why[1])


def _try_lost_plus(text: str, number: PhoneNumber) -> PhoneNumber | None:
    """`919876543210` read as a national number: retry as international (Excel ate the '+')."""
    digits = STRIP_RE.sub("", text)
    if not digits.isdigit() or len(digits) < 8 or digits.startswith("0"):
        return None
    candidate, _ = _parse_one("+" + digits, "ZZ")
    if candidate is not None and is_valid(candidate):
        return candidate
    return None


def _normalise_single(text: str, region: str) -> tuple[PhoneResult | None, Why | None]:
    """A PhoneResult when valid, else (None, why)."""
    fast = quick(text, region)
    if fast is not None and len(fast[0]) <= _MAX_E164:
        return PhoneResult(*fast), None
    return _parsed(text, region)


def _parsed(text: str, region: str) -> tuple[PhoneResult | None, Why | None]:
    """_normalise_single through the parser (quick had no answer)."""
    number, error = _parse_one(text, region)
    if number is None:
        return None, error or _NOT_A_NUMBER
    if not is_valid(number):
        rescued = _try_lost_plus(text, number)
        if rescued is None:
            return None, _why_invalid(number, region)
        number = rescued
    result = _result(number)
    if result.e164 is not None and len(result.e164) > _MAX_E164:
        return None, _TOO_LONG
    return result, None


def _result(number: PhoneNumber) -> PhoneResult:
    cc = number.country_code
    tz = country_timezone(cc)
    if tz is None:
        # Several zones (a mobile range spanning a big country): better none than a wrong one;
        # pacing then falls back to the sender's timezone.
        zones = {z for z in pn_timezone.time_zones_for_number(number) if z not in UNKNOWN_TZ}
        tz = zones.pop() if len(zones) == 1 else None
    # E.164 is "+", the country code and the national significant number (format_number's
    # early exit for E164), except for the parser's raw-input oddities with no number.
    if number.national_number:
        e164 = f"+{cc}{phonenumbers.national_significant_number(number)}"
    else:
        e164 = phonenumbers.format_number(number, E164)
    return PhoneResult(
        e164=e164,
        country=single_region(cc) or phonenumbers.region_code_for_number(number),
        timezone=tz,
    )


@lru_cache(maxsize=65536)
def normalise(value: str, default_region: str) -> PhoneResult:
    """One cell's text (see `clean_cell`) to a PhoneResult.

    - `default_region` (ISO code such as "IN") applies to numbers written without a
      country code.
    - Errors read as the end of a sentence: "'12345' is too short for India".
    """
    text = value.strip()
    if not text:
        return PhoneResult(None, error="has no phone number")
    region = default_region.upper()
    # Plain digits cannot hold two numbers: skip the separator search for the common case.
    if text.isdigit() or _SEPARATOR_RE.search(text) is None:
        # One number, as almost every cell holds: straight to the answer.
        fast = quick(text, region)
        if fast is not None and len(fast[0]) <= _MAX_E164:
            return PhoneResult(*fast)
        result, error = _parsed(text, region)
        if result is not None:
            return result
        return PhoneResult(None, error=_cell_error(text, error or _NOT_A_NUMBER))
    parts = [p for p in _SPLIT_RE.split(text) if p.strip()]
    first: PhoneResult | None = None
    first_error: Why | None = None
    extras: list[str] = []
    for part in parts:
        result, error = _normalise_single(part.strip(), region)
        if result is None:
            first_error = first_error or error
            extras.append(part.strip())  # reported even when it comes before the valid one
            continue
        if first is None:
            first = result
        elif result.e164 != first.e164:
            extras.append(result.e164 or part)
    if first is None:
        return PhoneResult(None, error=_cell_error(text, first_error or _NOT_A_NUMBER))
    if extras:
        return PhoneResult(first.e164, first.country, first.timezone, extras=tuple(extras))
    return first


@lru_cache(maxsize=1)
def country_choices() -> list[tuple[str, str]]:
    """(code, "India (+91)") for every region phonenumbers knows, sorted by name."""
    out = []
    for code in phonenumbers.SUPPORTED_REGIONS:
        name = region_name(code)
        out.append((code, f"{name} (+{phonenumbers.country_code_for_region(code)})"))
    return sorted(out, key=lambda item: item[1])
