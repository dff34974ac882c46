"""phonenumbers' parsing and validity rules, compiled once per country, for plain digit strings.

`quick(text, region)` returns what `phonenumbers.parse` followed by `is_valid_number` gives
for the shapes customer sheets hold most: digits with spaces, dots, dashes or brackets, a
leading `+`, an international prefix (`00`), a trunk `0`, or a country code whose `+` Excel
dropped. It takes the parser's own steps (international prefix, country code, national
prefix, the length tests that decide whether to strip them) on patterns compiled once, and
builds no PhoneNumber: ~2 µs instead of ~15. Every other shape, and every number that is
not valid, returns None, and the caller asks phonenumbers itself (which also words the
reason). tests/unit/test_phones.py compares both ways on many generated numbers.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, PhoneNumber
from phonenumbers import timezone as pn_timezone

# What the parser ignores between digits. Its own list is longer; a cell with any other
# character goes to the parser.
STRIP_RE = re.compile(r"[\s.\-()\[\]\u00a0\u2010-\u2015\u202f]")
UNKNOWN_TZ = frozenset({"Etc/Unknown", ""})
# How an import's report notes a landline (and how the report's landline rows are found).
LANDLINE_NOTE = "landline: may not reach a phone"
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' _MIN_LENGTH_FOR_NSN and _MAX_LENGTH_FOR_NSN
# _test_number_length's outcomes that make the parser keep a national prefix.
_TOO_SHORT, _LOCAL_ONLY, _INVALID_LENGTH, _TOO_LONG, _POSSIBLE = range(5)
_KEEP_PREFIX = (_TOO_SHORT, _LOCAL_ONLY, _INVALID_LENGTH)

# One number-type pattern of a region: the lengths it allows (empty: any) and its regex.
Desc = tuple[frozenset[int], re.Pattern[str]]


def compiled(desc: object) -> Desc | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None  # phonenumbers: a desc without a pattern matches nothing
    return frozenset(getattr(desc, "possible_length", ()) or ()), re.compile(pattern)


def matches(nsn: str, desc: Desc) -> bool:
    lengths, pattern = desc
    return (not lengths or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None


@lru_cache(maxsize=512)
def metadata(region: str) -> PhoneMetadata | None:
    return PhoneMetadata.metadata_for_region(region, None)


@lru_cache(maxsize=512)
def single_region(country_code: int) -> str | None:
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    return regions[0] if len(regions) == 1 and regions[0] != "001" else None


@lru_cache(maxsize=512)
def country_timezone(country_code: int) -> str | None:
    """The timezone when the whole country code has exactly one; else None (look it up)."""
    from phonenumbers.tzdata import TIMEZONE_DATA

    prefix = str(country_code)
    zones = {tz for key, tzs in TIMEZONE_DATA.items() if key.startswith(prefix) for tz in tzs}
    zones -= UNKNOWN_TZ
    return next(iter(zones)) if len(zones) == 1 else None


@lru_cache(maxsize=512)
def validity(country_code: int) -> tuple[Desc | None, tuple[Desc, ...]] | None:
    """phonenumbers' validity rules for a single-region country code, compiled once.

    A number is valid when it matches the general pattern and the pattern of any number
    type (`_number_type_helper` returns something other than UNKNOWN): the same test as
    `phonenumbers.is_valid_number`, without its per-call lookups; mobile goes first, as the
    common case. None for codes shared by several regions (+1, +7, +44…): those need
    phonenumbers' own choice of region.
    """
    region = single_region(country_code)
    md = metadata(region) if region else None
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
    found = tuple(d for d in map(compiled, types) if d is not None)
    return compiled(md.general_desc), found


def valid_nsn(nsn: str, rules: tuple[Desc | None, tuple[Desc, ...]]) -> bool:
    general, types = rules
    if general is None or not matches(nsn, general):
        return False
    return any(matches(nsn, desc) for desc in types)


class Rules(NamedTuple):
    """One single-region country code's parsing rules, as the parser applies them."""

    code: int
    code_text: str
    region: str
    general: re.Pattern[str] | None  # the parser's "viable number" test (no length check)
    lengths: tuple[int, ...]  # the general description's possible lengths, sorted
    local_only: tuple[int, ...]
    national_prefix: re.Pattern[str] | None  # national_prefix_for_parsing
    idd: re.Pattern[str] | None  # the international prefix dialled from this region
    valid: tuple[Desc | None, tuple[Desc, ...]]
    timezone: str | None  # the country's only timezone, if it has one

    def viable(self, digits: str) -> bool:
        return self.general is not None and self.general.fullmatch(digits) is not None

    def length(self, digits: str) -> int:
        """phonenumbers' _test_number_length against the general description."""
        size = len(digits)
        if size in self.local_only:
            return _LOCAL_ONLY
        if size == self.lengths[0]:
            return _POSSIBLE
        if size < self.lengths[0]:
            return _TOO_SHORT
        if size > self.lengths[-1]:
            return _TOO_LONG
        return _POSSIBLE if size in self.lengths else _INVALID_LENGTH

    def strip_national_prefix(self, digits: str) -> str:
        """_maybe_strip_national_prefix_carrier_code, for rules with no transform rule."""
        if not digits or self.national_prefix is None:
            return digits
        found = self.national_prefix.match(digits)
        if found is None:
            return digits
        rest = digits[found.end() :]
        if self.viable(digits) and not self.viable(rest):
            return digits
        return rest


@lru_cache(maxsize=512)
def rules_for_code(country_code: int) -> Rules | None:
    """The rules of a country code with one region; None when the fast way does not apply."""
    region = single_region(country_code)
    md = metadata(region) if region else None
    checks = validity(country_code)
    if md is None or checks is None or md.country_code != country_code:
        return None
    if md.national_prefix_transform_rule:
        return None  # prefixes rewritten, not stripped (e.g. Argentina): the parser's job
    general = md.general_desc
    if general is None:
        return None
    lengths = tuple(sorted(general.possible_length or ()))
    if not lengths:
        return None
    pattern = general.national_number_pattern
    prefix = md.national_prefix_for_parsing
    return Rules(
        code=country_code,
        code_text=str(country_code),
        region=region,  # type: ignore[arg-type]
        general=re.compile(pattern) if pattern else None,
        lengths=lengths,
        local_only=tuple(general.possible_length_local_only or ()),
        national_prefix=re.compile(prefix) if prefix else None,
        idd=re.compile(md.international_prefix) if md.international_prefix else None,
        valid=checks,
        timezone=country_timezone(country_code),
    )


@lru_cache(maxsize=512)
def rules_for_region(region: str) -> Rules | None:
    md = metadata(region)
    if md is None or single_region(md.country_code) != region:
        return None
    return rules_for_code(md.country_code)


def _country_code(digits: str) -> tuple[int, str] | None:
    """_extract_country_code: the first 1 to 3 digits that are a known code, and the rest."""
    if digits[:1] == "0":
        return None
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            return code, digits[size:]
    return None


def _national(digits: str, rules: Rules) -> str:
    """_maybe_extract_country_code without a + or IDD: drop the region's own country code
    when the number is not viable with it (or too long) and is without it."""
    if digits.startswith(rules.code_text):
        rest = rules.strip_national_prefix(digits[len(rules.code_text) :])
        if (not rules.viable(digits) and rules.viable(rest)) or rules.length(digits) == _TOO_LONG:
            return rest
    return digits


def _significant(digits: str, rules: Rules) -> str | None:
    """The parser's last steps: strip a national prefix when what remains has a possible
    length; None where it would raise or set a leading zero."""
    if len(digits) < _MIN_NSN:
        return None
    stripped = rules.strip_national_prefix(digits)
    if stripped is not digits and rules.length(stripped) not in _KEEP_PREFIX:
        digits = stripped
    if len(digits) > _MAX_NSN or digits[0] == "0":
        return None
    return digits


def quick(text: str, region: str) -> tuple[str, str, str | None] | None:
    """(E.164, country, timezone) of a valid number in a plain shape; else None (ask the
    parser). `text` is stripped, `region` upper case."""
    plus = text[:1] == "+"
    body = text[1:] if plus else text
    if not body.isdigit():
        body = STRIP_RE.sub("", body)
    if not (4 <= len(body) <= _MAX_NSN and body.isdigit() and body.isascii()):
        return None
    home = rules_for_region(region)
    if home is None:
        return None
    international = plus
    if not plus and home.idd is not None and (idd := home.idd.match(body)) is not None:
        # _parse_prefix_as_idd: the prefix counts unless a 0 follows it
        if body[idd.end() : idd.end() + 1] == "0":
            return None
        body, international = body[idd.end() :], True
    if international:
        if len(body) <= _MIN_NSN:
            return None  # the parser: too short after the IDD
        split = _country_code(body)
        if split is None:
            return None
        rules = rules_for_code(split[0])
        if rules is None:
            return None
        nsn = _significant(split[1], rules)
    else:
        rules = home
        nsn = _significant(_national(body, home), home)
    if nsn is None or not valid_nsn(nsn, rules.valid):
        return None
    zone = rules.timezone
    if zone is None:
        number = PhoneNumber(country_code=rules.code, national_number=int(nsn))
        zones = {z for z in pn_timezone.time_zones_for_number(number) if z not in UNKNOWN_TZ}
        zone = zones.pop() if len(zones) == 1 else None
    return f"+{rules.code}{nsn}", rules.region, zone


def is_valid(number: PhoneNumber) -> bool:
    """phonenumbers.is_valid_number, faster for single-region country codes."""
    checks = validity(number.country_code) if number.country_code else None
    if checks is None:
        return phonenumbers.is_valid_number(number)
    if number.italian_leading_zero:
        nsn = phonenumbers.national_significant_number(number)
    else:
        nsn = str(number.national_number)
    return valid_nsn(nsn, checks)


@lru_cache(maxsize=512)
def _line_rules(region: str) -> tuple[tuple[Desc, ...], Desc, Desc | None] | None:
    """What tells a region's landline: (the types phonenumbers tests before fixed line,
    fixed line, mobile); None when fixed and mobile look alike (FIXED_LINE_OR_MOBILE)."""
    md = metadata(region)
    if md is None or md.same_mobile_and_fixed_line_pattern:
        return None
    fixed = compiled(md.fixed_line)
    if fixed is None:
        return None
    before = (md.premium_rate, md.toll_free, md.shared_cost, md.voip, md.personal_number)
    before += (md.pager, md.uan, md.voicemail)
    return tuple(d for d in map(compiled, before) if d is not None), fixed, compiled(md.mobile)


@lru_cache(maxsize=512)
def _region_test(region: str) -> tuple[re.Pattern[str] | None, Desc | None, tuple[Desc, ...]]:
    """(leading digits, general, every type) of one region of a shared country code."""
    md = metadata(region)
    if md is None:
        return None, None, ()
    types = (md.mobile, md.fixed_line, md.premium_rate, md.toll_free, md.shared_cost, md.voip)
    types += (md.personal_number, md.pager, md.uan, md.voicemail)
    leading = re.compile(md.leading_digits) if md.leading_digits else None
    found = tuple(d for d in map(compiled, types) if d is not None)
    return leading, compiled(md.general_desc), found


def _region_of(code: int, nsn: str) -> str | None:
    """phonenumbers' region_code_for_number for a shared code (+1, +44, +7), without a
    PhoneNumber: the first region whose leading digits, or else whose patterns, fit."""
    for region in COUNTRY_CODE_TO_REGION_CODE.get(code, ()):
        leading, general, types = _region_test(region)
        if leading is not None:
            if leading.match(nsn):
                return region
        elif general is not None and matches(nsn, general) and any(matches(nsn, d) for d in types):
            return region
    return None


def is_landline(e164: str) -> bool:
    """Whether a valid E.164 number is a fixed line, as `phonenumbers.number_type` says
    (FIXED_LINE, not FIXED_LINE_OR_MOBILE), in a few regex matches: imports ask it of
    every row."""
    digits = e164[1:] if e164[:1] == "+" else e164
    split = _country_code(digits) if digits.isdigit() else None
    if split is None:
        return False
    code, nsn = split
    region = single_region(code) or _region_of(code, nsn)
    rules = _line_rules(region) if region else None
    if rules is None:
        return False
    before, fixed, mobile = rules
    # Fixed line first: most numbers in a sheet are mobiles, and one pattern rules them out.
    if not matches(nsn, fixed) or any(matches(nsn, d) for d in before):
        return False
    return mobile is None or not matches(nsn, mobile)
