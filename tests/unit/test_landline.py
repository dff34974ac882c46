"""`is_landline` says what `phonenumbers.number_type` says (FIXED_LINE), the fast way."""

from __future__ import annotations

import random

import phonenumbers
from phonenumbers import PhoneNumberType

from wabulk.contacts.phone_rules import is_landline

E164 = phonenumbers.PhoneNumberFormat.E164
TYPES = (
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.VOIP,
    PhoneNumberType.UAN,
)


def _numbers() -> list[phonenumbers.PhoneNumber]:
    """Every region's example of each type, and neighbours of it with other last digits."""
    rng = random.Random(17)
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            out.append(example)
            digits = str(example.national_number)
            for _ in range(3):
                tail = "".join(rng.choice("0123456789") for _ in range(min(4, len(digits))))
                other = phonenumbers.PhoneNumber(
                    country_code=example.country_code,
                    national_number=int(digits[: len(digits) - len(tail)] + tail),
                    italian_leading_zero=example.italian_leading_zero,
                )
                if phonenumbers.is_valid_number(other):
                    out.append(other)
    return out


def test_is_landline_agrees_with_phonenumbers() -> None:
    numbers = _numbers()
    assert len(numbers) > 2000
    wrong = [
        phonenumbers.format_number(n, E164)
        for n in numbers
        if is_landline(phonenumbers.format_number(n, E164))
        != (phonenumbers.number_type(n) == PhoneNumberType.FIXED_LINE)
    ]
    assert wrong == []


def test_common_cases() -> None:
    assert is_landline("+912224567890")  # Mumbai
    assert not is_landline("+919876543210")  # an Indian mobile
    assert is_landline("+442079460018")  # London
    assert not is_landline("+447911123456")
    assert not is_landline("+14155550123")  # the US cannot tell the two apart
    assert not is_landline("not a number")
