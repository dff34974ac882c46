"""The sentence for a field no contact has: the closest field suggested, else the list."""

from __future__ import annotations

import pytest

from wabulk.campaigns import fields


@pytest.mark.parametrize(
    ("name", "sentence"),
    [
        ("nmae", '"nmae" is not a field; did you mean "name"?'),
        ("Name", '"Name" is not a field; did you mean "name"?'),
        ("ctiy", '"ctiy" is not a field; did you mean "city"?'),
        ("frist_name", '"frist_name" is not a field; did you mean "first_name"?'),
        (
            "zzz",
            '"zzz" is not a field of your contacts. The fields are name, first_name, phone, '
            "country and city.",
        ),
    ],
)
def test_an_unknown_field_is_named_with_the_closest_one(name: str, sentence: str) -> None:
    known = [*fields.CONTACT_FIELDS, "city"]
    assert fields.unknown_sentence(name, known) == sentence


def test_without_contacts_the_sentence_says_to_import_them_first() -> None:
    sentence = fields.unknown_sentence("city", list(fields.CONTACT_FIELDS))
    assert sentence.startswith('"city" is not a field yet: import contacts with a "city" column')


def test_a_long_list_of_fields_is_cut_short() -> None:
    known = [*fields.CONTACT_FIELDS, *(f"col_{i}" for i in range(30))]
    sentence = fields.unknown_sentence("qqqqqqq", known)
    assert sentence.endswith("col_6, col_7 and 22 more.")
