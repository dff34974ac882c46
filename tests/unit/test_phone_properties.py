"""Whatever a phone cell holds, normalise answers: an E.164 number, or the reason it is none.

The quick variant runs a few hundred examples in `make test`; its `slow` twin runs 10,000+
in `make test-slow`. No deadline: a slow example on a busy machine is not a failure here.
"""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wabulk.contacts.phones import PhoneResult, normalise

E164 = re.compile(r"\+[1-9]\d{6,14}")
# The unknown region ("ZZ") and lower case are what a careless caller may pass.
REGIONS = st.one_of(
    st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)),
    st.sampled_from(["IN", "US", "GB", "in", "ZZ"]),
)
_DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=18)
# Digits as other scripts and fonts write them: Devanagari, Arabic-Indic, full width.
_OTHER_DIGITS = st.text(
    alphabet="".join(chr(zero + n) for zero in (0x966, 0x660, 0xFF10) for n in range(10)),
    min_size=1,
    max_size=14,
)
_PIECES = st.sampled_from(
    [" ", "-", ".", "(", ")", "/", "+", "00", "'", "\u00a0", "\u2018", "x", "ext. ", ",", ";",
     " or ", "  ", "\n", "|", "e+", "E+11", ".0", "tel:", "\u200b", "\ufeff", "*", "#"]
)  # fmt: skip
CELLS = st.one_of(
    st.text(max_size=60),  # anything at all
    st.text(max_size=2000),  # long cells
    st.lists(st.one_of(_DIGITS, _OTHER_DIGITS, _PIECES), max_size=12).map("".join),
    st.tuples(st.sampled_from(["", "+", "00", "0", "+0"]), _DIGITS).map("".join),
    st.floats(allow_nan=True, allow_infinity=True).map(str),  # a number column as text
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)


def check_result(cell: str, region: str, result: object) -> None:
    assert isinstance(result, PhoneResult)
    if result.e164 is not None:
        assert result.error is None
        assert E164.fullmatch(result.e164), result
        # Valid by the function's own rule, and stable: read again, it stays the same number.
        assert phonenumbers.is_valid_number(phonenumbers.parse(result.e164, None)), result
        assert normalise(result.e164, "IN").e164 == result.e164
        assert (
            result.country is None
            or phonenumbers.region_code_for_country_code(
                phonenumbers.parse(result.e164, None).country_code
            )
            != "ZZ"
        )
        assert all(isinstance(extra, str) and extra for extra in result.extras)
    else:
        assert isinstance(result.error, str) and result.error.strip(), result
        # A reason for a person, not the parser's own words (the cell it quotes may say
        # anything: a cell reading "Exception" is quoted as it is).
        words = re.sub(r"'[^']*'|\"[^\"]*\"", "", result.error.replace(repr(cell.strip()), ""))
        assert not re.search(r"Error|Exception|Traceback|\(\d+\)", words), result.error


def _normalise(cell: str, region: str) -> None:
    check_result(cell, region, normalise(cell, region))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cell=CELLS, region=REGIONS)
# phonenumbers calls this German number valid, but it has 16 digits: no E.164 number does.
@example(cell="004920100000000000", region="IN")
@example(cell="+49 20100000000000, 9876543210", region="IN")
@example(cell="Exception", region="AC")  # the reason quotes the cell: its words are not ours
def test_any_cell_becomes_e164_or_a_reason(cell: str, region: str) -> None:
    _normalise(cell, region)


@pytest.mark.slow
@settings(max_examples=12_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cell=CELLS, region=REGIONS)
def test_any_cell_becomes_e164_or_a_reason_at_length(cell: str, region: str) -> None:
    _normalise(cell, region)
