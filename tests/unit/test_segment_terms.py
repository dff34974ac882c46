"""Segment terms: bounds first, clear messages naming the condition and its field."""

from __future__ import annotations

import pytest

from wabulk.errors import ValidationError
from wabulk.segments import terms


def _refused(raw: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        terms.validate(raw)
    return caught.value


def _one(**condition: object) -> dict:
    return {"match": "all", "conditions": [condition]}


def test_empty_terms_mean_everyone() -> None:
    assert terms.validate(None) == {"match": "all", "conditions": []}
    assert terms.validate({}) == {"match": "all", "conditions": []}
    assert terms.validate({"match": "any", "conditions": None}) == {
        "match": "any",
        "conditions": [],
    }


def test_too_many_conditions_are_refused_before_any_is_read() -> None:
    # 21 conditions, each of them also broken: the count is what is reported.
    error = _refused({"conditions": [{"field": "nonsense"}] * 21})
    assert error.field == "conditions"
    assert "at most 20 conditions" in str(error)


def test_long_values_and_long_lists_are_refused_before_checking() -> None:
    error = _refused(
        {
            "conditions": [
                {"field": "nonsense"},
                {"field": "attribute", "key": "city", "op": "eq", "value": "x" * 201},
            ]
        }
    )
    assert error.field == "conditions.1.value"
    assert str(error).startswith("Condition 2:")
    error = _refused(_one(field="list", op="in", value=list(range(1, 202))))
    assert error.field == "conditions.0.value"
    assert "at most 200" in str(error)


def test_messages_name_the_condition_by_number_and_field() -> None:
    error = _refused(
        {
            "conditions": [
                {"field": "list", "op": "in", "value": [1]},
                {"field": "country", "op": "in", "value": ["IN"]},
                {"field": "attribute", "key": "due_amount", "op": "gt", "value": "lots"},
            ]
        }
    )
    assert str(error) == "Condition 3: “Due Amount” needs a number."
    assert error.field == "conditions.2.value"
    error = _refused(_one(field="attribute", key="last", op="before", value="01/10/2026"))
    assert str(error) == "Condition 1: “Last” needs a date (YYYY-MM-DD)."
    error = _refused(_one(field="country", op="in", value=["ZZ"]))
    assert error.field == "conditions.0.value" and "Country" in str(error)
    error = _refused(_one(field="timezone", op="in", value=["Mars/Base"]))
    assert "Timezone" in str(error)
    error = _refused(_one(field="outcome", op="replied"))
    assert error.field == "conditions.0.campaign_id"
    error = _refused(_one(field="list", op="near", value=[1]))
    assert error.field == "conditions.0.op"
    assert _refused(_one(field=["list"])).field == "conditions.0.field"
    assert _refused({"match": "most"}).field == "match"
    assert _refused([1, 2]).field == "conditions"


@pytest.mark.parametrize(
    "key", ['a"b', "a'b", "", "x" * 101, "a\nb", "$.x", "a)b"], ids=lambda k: repr(k)[:12]
)
def test_attribute_names_that_could_reach_sql_are_refused(key: str) -> None:
    error = _refused(_one(field="attribute", key=key, op="empty"))
    assert error.field == "conditions.0.key"


def test_values_are_normalised() -> None:
    checked = terms.validate(
        {
            "match": "any",
            "conditions": [
                {"field": "attribute", "key": "due_amount", "op": "gt", "value": " 1,250 "},
                {"field": "attribute", "key": "rate", "op": "lte", "value": "2.5"},
                {"field": "attribute", "key": "last", "op": "after", "value": "2026-10-01T00:00"},
                {"field": "attribute", "key": "city", "op": "eq", "value": "  Pune  East "},
                {"field": "attribute", "key": "city", "op": "empty", "value": "ignored"},
                {"field": "list", "op": "in", "value": ["3", 3, 4]},
                {"field": "country", "op": "not_in", "value": ["in", "AE"]},
                {"field": "not_on_whatsapp", "op": "eq", "value": "true"},
                {"field": "outcome", "campaign_id": "7", "op": "failed", "value": "131026"},
                {"field": "outcome", "campaign_id": 7, "op": "replied", "value": "x"},
            ],
        }
    )
    values = [c["value"] for c in checked["conditions"]]
    assert values == [
        1250,
        2.5,
        "2026-10-01",
        "Pune East",
        None,
        [3, 4],
        ["IN", "AE"],
        True,
        "131026",
        None,
    ]
    assert checked["conditions"][8]["campaign_id"] == 7


@pytest.mark.parametrize("days", ["90", " 90 days", "90 Days", "90day"])
def test_within_days_reads_the_word_days_too(days: str) -> None:
    # The builder says "is a date in the last … days"; a shop owner types "90 days".
    checked = terms.validate(_one(field="attribute", key="last", op="within_days", value=days))
    assert checked["conditions"][0]["value"] == 90


@pytest.mark.parametrize("days", [0, -1, 2.5, 36_501, "many", "days", "90 weeks"])
def test_within_days_needs_a_sensible_whole_number(days: object) -> None:
    error = _refused(_one(field="attribute", key="last", op="within_days", value=days))
    assert error.field == "conditions.0.value"


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", True, None, [1]])
def test_numbers_must_be_finite_numbers(value: object) -> None:
    assert _refused(_one(field="attribute", key="n", op="gt", value=value)).field.endswith("value")


def test_labels_read_like_a_sheet_header() -> None:
    assert terms.label("due_amount") == "Due Amount"
    assert terms.label("Due Amount") == "Due Amount"
    assert terms.label("GSTIN") == "GSTIN"
