"""Phone numbers: the one place that turns what people type into E.164.

- Cleans the artefacts spreadsheets produce: floats (`9.19876543210E+11`, `919876543210.0`),
  leading apostrophes, spaces, dots, dashes, brackets, `00` international prefix, a trunk `0`,
  a `+` lost by Excel, several numbers in one cell (the first valid one wins; the others are
  reported).
- Validity is phonenumbers' own rule (`is_valid_number`): for a country code of one region
  its patterns are compiled once and tried directly (mobile first), else `is_valid_number`
  itself. For plain digit strings a fast path builds the number without the general parser
  (the parser costs ~13 µs, more than half of an import's time); any shape it is not sure of
  goes to `phonenumbers.parse`. A test compares both on many generated numbers.
- Country and timezone come from the number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, NumberParseException, PhoneNumber
from phonenumbers import timezone as pn_timezone
from phonenumbers.phonenumberutil import PhoneMetadata

E164 = phonenumbers.PhoneNumberFormat.E164
# Excel's float renderings of a long number. A short integer part ("81281.00000") is a number
# written with a dot, not a float.
_FLOAT_RE = re.compile(r"^\d+(\.\d+)?[eE]\+?\d+$|^\d{7,}\.0+$")
# Separators between several numbers in one cell. A lone "-" or space is formatting, not a split.
_SPLIT_RE = re.compile(r"\s*(?:[,;/|\n]|\s+or\s+|\s{2,})\s*", re.IGNORECASE)
_STRIP_RE = re.compile(r"[\s.\-()\[\]\u00a0\u2010-\u2015\u202f]")
_UNKNOWN_TZ = {"Etc/Unknown", ""}


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """What one cell became: a number, or the reason it could not be one."""

    e164: str | None
    country: str | None = None
    timezone: str | None = None
    error: str | None = None
    # Other numbers found in the same cell; not imported, but reported.
    extras: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.e164 is not None


def region_name(region: str | None) -> str:
    """English name of a region code: "IN" → "India"."""
    if not region:
        return "an unknown country"
    from .regions import NAMES

    return NAMES.get(region, region)


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


@lru_cache(maxsize=512)
def _metadata(region: str) -> PhoneMetadata | None:
    return PhoneMetadata.metadata_for_region(region, None)


@lru_cache(maxsize=512)
def _national_prefix_re(region: str) -> re.Pattern[str] | None:
    md = _metadata(region)
    if md is None:
        return None
    pattern = md.national_prefix_for_parsing or md.national_prefix
    return re.compile(pattern) if pattern else None


@lru_cache(maxsize=512)
def _single_region(country_code: int) -> str | None:
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    return regions[0] if len(regions) == 1 and regions[0] != "001" else None


@lru_cache(maxsize=512)
def _country_timezone(country_code: int) -> str | None:
    """The timezone when the whole country code has exactly one; else None (look it up)."""
    from phonenumbers.tzdata import TIMEZONE_DATA

    prefix = str(country_code)
    zones = {tz for key, tzs in TIMEZONE_DATA.items() if key.startswith(prefix) for tz in tzs}
    zones -= _UNKNOWN_TZ
    return next(iter(zones)) if len(zones) == 1 else None


@lru_cache(maxsize=512)
def _idd_re(region: str) -> re.Pattern[str] | None:
    md = _metadata(region)
    return re.compile(md.international_prefix) if md and md.international_prefix else None


def _idd_is_00(region: str, body: str) -> bool:
    """Whether the parser, for this region, reads a leading "00" of `body` as the IDD."""
    idd = _idd_re(region)
    match = idd.match(body) if idd is not None and body.startswith("00") else None
    return match is not None and match.end() == 2


def _fast_number(digits: str, international: bool, region: str) -> PhoneNumber | None:
    """Build the number without the general parser when its shape is unambiguous, else None."""
    if international:
        if digits[0] == "0":
            return None  # the parser refuses a country code after "00" + "0"
        for size in (1, 2, 3):
            cc = int(digits[:size])
            if cc in COUNTRY_CODE_TO_REGION_CODE:
                break
        else:
            return None
        nsn = digits[size:]
        target = _single_region(cc)
    else:
        cc = phonenumbers.country_code_for_region(region)
        nsn = digits
        target = region if _single_region(cc) == region else None
        if nsn.startswith(str(cc)):
            return None  # the parser may strip a leading country code: it knows when
        idd = _idd_re(region)
        if idd is not None and idd.match(nsn):
            return None  # an international prefix such as Chad's "16": the parser reads it
    if target is None or len(nsn) < 2 or nsn[0] == "0":
        return None
    prefix = _national_prefix_re(target)
    if prefix is not None and prefix.match(nsn):
        return None  # a trunk prefix may need stripping: the parser knows the rules
    return PhoneNumber(country_code=cc, national_number=int(nsn))


# One number-type pattern of a region: the lengths it allows (empty: any) and its regex.
_Desc = tuple[frozenset[int], re.Pattern[str]]


def _compiled(desc: object) -> _Desc | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None  # phonenumbers: a desc without a pattern matches nothing
    return frozenset(getattr(desc, "possible_length", ()) or ()), re.compile(pattern)


def _matches(nsn: str, desc: _Desc) -> bool:
    lengths, pattern = desc
    return (not lengths or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None


@lru_cache(maxsize=512)
def _validity(country_code: int) -> tuple[_Desc | None, tuple[_Desc, ...]] | None:
    """phonenumbers' validity rules for a single-region country code, compiled once.

    A number is valid when it matches the general pattern and the pattern of any number
    type (`_number_type_helper` returns something other than UNKNOWN): the same test as
    `phonenumbers.is_valid_number`, without its per-call lookups; mobile goes first, as the
    common case. None for codes shared by several regions (+1, +7, +44…): those need
    phonenumbers' own choice of region.
    """
    region = _single_region(country_code)
    md = _metadata(region) if region else None
    if md is None or md.country_code != country_code:
        return None
    types = [
        md.premium_rate,
        md.toll_free,
        md.shared_cost,
        md.voip,
        md.personal_number,
        md.pager,
        md.uan,
        md.voicemail,
        md.fixed_line,
    ]
    if not md.same_mobile_and_fixed_line_pattern:
        types.insert(0, md.mobile)
    compiled = tuple(d for d in map(_compiled, types) if d is not None)
    return _compiled(md.general_desc), compiled


def _national_number(number: PhoneNumber) -> str:
    if number.italian_leading_zero:
        return phonenumbers.national_significant_number(number)
    return str(number.national_number)


def _is_valid(number: PhoneNumber) -> bool:
    """phonenumbers.is_valid_number, faster for single-region country codes."""
    rules = _validity(number.country_code) if number.country_code else None
    if rules is None:
        return phonenumbers.is_valid_number(number)
    general, types = rules
    nsn = _national_number(number)
    if general is None or not _matches(nsn, general):
        return False
    return any(_matches(nsn, desc) for desc in types)


def _parse_one(text: str, region: str) -> tuple[PhoneNumber | None, str | None]:
    plus = text.startswith("+")
    body = _STRIP_RE.sub("", text[1:] if plus else text)
    if body.isdigit() and 4 <= len(body) <= 17 and body.isascii():
        idd = not plus and _idd_is_00(region, body)
        international = plus or idd
        digits = body[2:] if idd else body
        if digits:
            number = _fast_number(digits, international, region)
            if number is not None:
                return number, None
    try:
        return phonenumbers.parse(text, region), None
    except NumberParseException as exc:
        return None, _PARSE_ERRORS.get(exc.error_type, str(exc))


_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "has no valid country code",
    NumberParseException.NOT_A_NUMBER: "is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "is too short",
    NumberParseException.TOO_SHORT_NSN: "is too short",
    NumberParseException.TOO_LONG: "is too long",
}


def _why_invalid(number: PhoneNumber, region: str) -> str:
    target = phonenumbers.region_code_for_number(number) or region
    reason = phonenumbers.is_possible_number_with_reason(number)
    where = f"for {region_name(target)}"
    r = phonenumbers.ValidationResult
    if reason == r.TOO_SHORT:
        return f"is too short {where}"
    if reason == r.TOO_LONG:
        return f"is too long {where}"
    if reason == r.INVALID_COUNTRY_CODE:
        return "has no valid country code"
    return f"is not a valid number {where}"


def _try_lost_plus(text: str, number: PhoneNumber) -> PhoneNumber | None:
    """`919876543210` read as a national number: retry as international (Excel ate the '+')."""
    digits = _STRIP_RE.sub("", text)
    if not digits.isdigit() or len(digits) < 8 or digits.startswith("0"):
        return None
    candidate, _ = _parse_one("+" + digits, "ZZ")
    if candidate is not None and _is_valid(candidate):
        return candidate
    return None


def _normalise_single(text: str, region: str) -> tuple[PhoneResult | None, str]:
    """A PhoneResult when valid, else (None, reason)."""
    number, error = _parse_one(text, region)
    if number is None:
        return None, error or "is not a phone number"
    if not _is_valid(number):
        rescued = _try_lost_plus(text, number)
        if rescued is None:
            return None, _why_invalid(number, region)
        number = rescued
    return _result(number), ""


def _result(number: PhoneNumber) -> PhoneResult:
    cc = number.country_code
    tz = _country_timezone(cc)
    if tz is None:
        # Several zones (a mobile range spanning a big country): better none than a wrong one;
        # pacing then falls back to the sender's timezone.
        zones = {z for z in pn_timezone.time_zones_for_number(number) if z not in _UNKNOWN_TZ}
        tz = zones.pop() if len(zones) == 1 else None
    # E.164 is "+", the country code and the national significant number (format_number's
    # early exit for E164), except for the parser's raw-input oddities with no number.
    e164 = (
        f"+{cc}{_national_number(number)}"
        if number.national_number
        else phonenumbers.format_number(number, E164)
    )
    return PhoneResult(
        e164=e164,
        country=_single_region(cc) or phonenumbers.region_code_for_number(number),
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
    parts = [p for p in _SPLIT_RE.split(text) if p.strip()] if _SPLIT_RE.search(text) else [text]
    first: PhoneResult | None = None
    first_error = ""
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
        return PhoneResult(None, error=f"'{text}' {first_error}")
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
