"""Guessing which column is the phone and the name, and naming the others as placeholders."""

from __future__ import annotations

import pytest

from wabulk.contacts.mapping import apply_overrides, attribute_key, guess, validate
from wabulk.errors import ValidationError


def test_telling_headers_are_recognised() -> None:
    header = ["Customer Name", "Mobile No.", "Due Amount", "City"]
    assert guess(header, [["Asha", "9876543210", "1500", "Pune"]], "IN") == {
        "phone": "Mobile No.",
        "name": ["Customer Name"],
        "attributes": {"Due Amount": "due_amount", "City": "city"},
    }


def test_headers_in_other_languages_and_with_accents() -> None:
    mapping = guess(["Número de Teléfono", "Nombre", "Ciudad"], [], "MX")
    assert (mapping["phone"], mapping["name"]) == ("Número de Teléfono", ["Nombre"])


def test_first_and_last_name_columns_make_the_name() -> None:
    mapping = guess(["First name", "Surname", "WhatsApp"], [], "IN")
    assert mapping["name"] == ["First name", "Surname"]
    assert mapping["phone"] == "WhatsApp"


def test_without_a_telling_header_the_column_of_phone_numbers_is_picked() -> None:
    header = ["Column A", "Column B", "Column C"]
    sample = [["Asha", "Pune", "98765 43210"], ["Ravi", "Goa", "9876543211"], ["X", "Y", ""]]
    assert guess(header, sample, "IN")["phone"] == "Column C"


def test_no_phone_like_column_gives_none_and_a_message_listing_the_columns() -> None:
    header = ["Name", "City", "Notes"]
    mapping = guess(header, [["Asha", "Pune", "VIP"], ["Ravi", "Delhi", "12345"]], "IN")
    assert mapping["phone"] is None
    with pytest.raises(ValidationError, match='Columns found: "Name", "City", "Notes"'):
        validate(mapping, header)


def test_validate_refuses_columns_the_sheet_does_not_have() -> None:
    header = ["Phone", "Name"]
    for mapping, field in [
        ({"phone": "Mobile"}, "phone"),
        ({"phone": "Phone", "name": ["Full name"]}, "name"),
        ({"phone": "Phone", "attributes": {"City": "city"}}, "attributes"),
    ]:
        with pytest.raises(ValidationError) as caught:
            validate(mapping, header)
        assert caught.value.field == field
        assert "There is no column" in str(caught.value)


def test_validate_keeps_phone_and_name_out_of_attributes_and_renames_keys() -> None:
    header = ["Phone", "Name", "City", "Due Amount"]
    mapping = {
        "phone": "Phone",
        "name": "Name",
        "attributes": {"Phone": "phone", "Name": "name", "City": "", "Due Amount": "Due"},
    }
    assert validate(mapping, header) == {
        "phone": "Phone",
        "name": ["Name"],
        "attributes": {"City": "city", "Due Amount": "due"},
        "duplicates": "first",  # a repeated number: its first row is taken unless told
    }


@pytest.mark.parametrize("choice", ["first", "last"])
def test_validate_keeps_the_choice_for_a_repeated_number(choice: str) -> None:
    mapping = {"phone": "Phone", "duplicates": choice}
    assert validate(mapping, ["Phone"])["duplicates"] == choice


def test_validate_refuses_an_unknown_choice_for_a_repeated_number() -> None:
    with pytest.raises(ValidationError, match="keep the first row or the last row") as caught:
        validate({"phone": "Phone", "duplicates": "newest"}, ["Phone"])
    assert caught.value.field == "duplicates"


def test_overrides_choose_columns_by_name() -> None:
    header = ["Phone", "Alt phone", "Full name", "City"]
    mapping = apply_overrides(
        ("phone=Alt phone", "name = Full name", "skip=City"),
        header,
        guess(header, [], "IN"),
    )
    assert mapping["phone"] == "Alt phone"
    assert mapping["name"] == ["Full name"]
    assert "City" not in mapping["attributes"]


@pytest.mark.parametrize("pair", ["phone", "email=Phone", "phone=Nope"])
def test_a_wrong_override_says_what_to_write(pair: str) -> None:
    header = ["Phone", "Name"]
    with pytest.raises(ValidationError, match="--mapping"):
        apply_overrides((pair,), header, guess(header, [], "IN"))


def test_attribute_keys_are_placeholder_safe_and_unique() -> None:
    taken: set[str] = set()
    keys = [attribute_key(h, taken) for h in ["Due Amount", "due-amount", "Name", "2024", "Città"]]
    assert keys == ["due_amount", "due_amount_2", "name_2", "col_2024", "citta"]
    assert attribute_key("", set()) == "column"
