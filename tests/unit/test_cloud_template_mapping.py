"""Cloud API templates: variables found in Meta's components, mappings checked, each
recipient's values rendered like a body and handed to the channel as plain values."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from wabulk.campaigns import cloud_template as ct
from wabulk.campaigns.rendering import TemplateError, context_for
from wabulk.channels.base import TemplateCall
from wabulk.errors import ValidationError

POSITIONAL: list[dict[str, Any]] = [
    {
        "type": "HEADER",
        "format": "TEXT",
        "text": "Sale in {{1}}",
        "example": {"header_text": ["Pune"]},
    },
    {
        "type": "BODY",
        "text": "Hi {{2}}, use {{1}} before Sunday.",
        "example": {"body_text": [["CARIBE25", "Pablo"]]},
    },
    {"type": "FOOTER", "text": "Tap Stop promotions to stop"},
    {
        "type": "BUTTONS",
        "buttons": [
            {
                "type": "URL",
                "text": "Shop now",
                "url": "https://shop.example/s/{{1}}",
                "example": ["https://shop.example/s/summer"],
            },
            {"type": "QUICK_REPLY", "text": "Stop promotions"},
            {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+15550001111"},
            {"type": "COPY_CODE", "example": "SAVE10"},
            {"type": "QUICK_REPLY", "text": "Tell me more"},
        ],
    },
]

NAMED: list[dict[str, Any]] = [
    {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://x/y.jpg"]}},
    {
        "type": "BODY",
        "text": "Dear {{customer_name}}, your {{order_id}} ships from {{city}}.",
        "example": {
            "body_text_named_params": [
                {"param_name": "customer_name", "example": "Pablo"},
                {"param_name": "order_id", "example": "A-17"},
                {"param_name": "city", "example": "Lima"},
            ]
        },
    },
]

FULL_POSITIONAL = {
    "header.1": "{{ city }}",
    "body.1": "CARIBE25",
    "body.2": "{{ first_name }}",
    "button.0": "{{ order_ref }}",
    "button.1": ct.OPT_OUT_PAYLOAD,
    "button.3": "{SAVE10|SAVE15}",
    "button.4": "MORE_INFO",
}


def _row(components: list[dict[str, Any]], **extra: Any) -> Any:
    values = {
        "name": "spring_sale",
        "language": "en_US",
        "category": "MARKETING",
        "parameter_format": "POSITIONAL",
        "components": components,
        **extra,
    }
    return SimpleNamespace(**values)


def _asha(**attributes: Any) -> dict[str, Any]:
    return context_for("+919876500001", "Asha Rao", "IN", attributes)


def test_variables_of_a_positional_template_in_order_with_examples() -> None:
    found = ct.variables(POSITIONAL)
    assert [v.slot for v in found] == [
        "header.1",
        "body.1",
        "body.2",
        "button.0",
        "button.1",
        "button.3",
        "button.4",
    ]
    assert [v.example for v in found[:4]] == ["Pune", "CARIBE25", "Pablo", "summer"]
    assert [(v.index, v.sub_type) for v in found[3:]] == [
        (0, "url"),
        (1, "quick_reply"),
        (3, "copy_code"),
        (4, "quick_reply"),
    ]
    assert found[5].label == "Copy offer code"  # WhatsApp's own words on a copy-code button
    assert ct.header_media_kind(POSITIONAL) is None


def test_variables_of_a_named_template_with_a_media_header() -> None:
    found = ct.variables(NAMED)
    assert [(v.slot, v.example) for v in found] == [
        ("body.customer_name", "Pablo"),
        ("body.order_id", "A-17"),
        ("body.city", "Lima"),
    ]
    assert ct.header_media_kind(NAMED) == "image"
    for kind in ("VIDEO", "DOCUMENT"):
        assert ct.header_media_kind([{"type": "HEADER", "format": kind}]) == kind.lower()


def test_positional_numbers_are_sent_in_number_order_not_text_order() -> None:
    body = [{"type": "BODY", "text": "{{3}} then {{1}} then {{2}} and {{1}} again"}]
    assert [v.key for v in ct.variables(body)] == ["1", "2", "3"]


def test_a_complete_mapping_is_kept_and_slots_the_template_lacks_are_dropped() -> None:
    clean = ct.validate_mapping(POSITIONAL, {**FULL_POSITIONAL, "body.9": "stray"})
    assert clean == FULL_POSITIONAL
    # A quick-reply answer left blank is the button's own text, as WhatsApp reports a tap.
    blank = ct.validate_mapping(POSITIONAL, {**FULL_POSITIONAL, "button.4": "  "})
    assert blank["button.4"] == "Tell me more"


@pytest.mark.parametrize(
    ("slot", "named"),
    [
        ("header.1", "the heading's {{1}}"),
        ("body.2", "the message's {{2}}"),
        ("button.0", "the link ending of the button “Shop now”"),
        ("button.3", "the code of the button “Copy offer code”"),
    ],
)
def test_a_variable_left_unmapped_is_named(slot: str, named: str) -> None:
    mapping = {k: v for k, v in FULL_POSITIONAL.items() if k != slot}
    with pytest.raises(ValidationError) as caught:
        ct.validate_mapping(POSITIONAL, mapping)
    assert str(caught.value).lower().startswith(named.lower())
    assert "choose a contact field or write a fixed text" in str(caught.value)
    assert caught.value.field == f"cloud:{slot}"


def test_a_named_variable_left_unmapped_is_named() -> None:
    with pytest.raises(ValidationError, match=r"message's \{\{order_id\}\}"):
        ct.validate_mapping(NAMED, {"body.customer_name": "{{ name }}", "body.city": "Lima"})


def test_a_mapped_value_is_checked_like_a_body() -> None:
    with pytest.raises(ValidationError) as caught:
        ct.validate_mapping(
            NAMED, {"body.customer_name": "{{ name", "body.order_id": "x", "body.city": "y"}
        )
    assert "customer_name" in str(caught.value) and "never closed" in str(caught.value)
    with pytest.raises(ValidationError, match="cannot be used in a message"):
        ct.validate_mapping(
            NAMED,
            {"body.customer_name": "{{ name.__class__ }}", "body.order_id": "x", "body.city": "y"},
        )
    too_long = {**FULL_POSITIONAL, "button.1": "x" * (ct.PAYLOAD_MAX + 1)}
    with pytest.raises(ValidationError, match="at most 500 characters"):
        ct.validate_mapping(POSITIONAL, too_long)
    with pytest.raises(ValidationError, match="by variable"):
        ct.validate_mapping(POSITIONAL, ["{{ name }}"])


def test_templates_wabulk_cannot_fill_are_refused_with_the_reason() -> None:
    location = [{"type": "HEADER", "format": "LOCATION"}, {"type": "BODY", "text": "Hi"}]
    with pytest.raises(ValidationError, match="heading is a location"):
        ct.validate_mapping(location, {})
    flow = [{"type": "BUTTONS", "buttons": [{"type": "FLOW", "text": "Book"}]}]
    with pytest.raises(ValidationError, match="“Book” is a flow button"):
        ct.validate_mapping(flow, {})


def test_render_params_for_a_contact_with_fields_and_attributes() -> None:
    snap = ct.snapshot(_row(POSITIONAL), FULL_POSITIONAL, None)
    text, params = ct.render_params(snap, _asha(city="Pune", order_ref="ord-77"), seed=11)
    assert text == (
        "Sale in Pune\n\nHi Asha, use CARIBE25 before Sunday.\n\nTap Stop promotions to stop"
    )
    code = params["buttons"][2][2]
    assert code in ("SAVE10", "SAVE15")
    assert params == {
        "header": ["1", "Pune"],
        "body": [["1", "CARIBE25"], ["2", "Asha"]],
        "buttons": [
            [0, "url", "ord-77"],
            [1, "quick_reply", ct.OPT_OUT_PAYLOAD],
            [3, "copy_code", code],
            [4, "quick_reply", "MORE_INFO"],
        ],
    }
    # The same seed gives the same spintax choice (a retry sends the same values).
    assert ct.render_params(snap, _asha(city="Pune", order_ref="ord-77"), seed=11)[1] == params
    call = ct.call_from(snap, params)
    assert call == TemplateCall(
        name="spring_sale",
        language="en_US",
        body=((None, "CARIBE25"), (None, "Asha")),
        header_text=(None, "Pune"),
        header_media_kind=None,
        buttons=(
            (0, "url", "ord-77"),
            (1, "quick_reply", ct.OPT_OUT_PAYLOAD),
            (3, "copy_code", code),
            (4, "quick_reply", "MORE_INFO"),
        ),
        marketing=True,
    )


def test_render_params_of_a_named_template_sends_the_names_and_the_media_kind() -> None:
    mapping = {
        "body.customer_name": "{{ name }}",
        "body.order_id": "#{{ order }}",
        "body.city": "{{ town | default('our store') }}",
    }
    row = _row(NAMED, parameter_format="NAMED", category="UTILITY")
    snap = ct.snapshot(row, mapping, media_id=42)
    assert (snap["header_media_kind"], snap["media_id"], snap["parameter_format"]) == (
        "image",
        42,
        "named",
    )
    text, params = ct.render_params(snap, _asha(order=1017), seed=3)
    assert text == "Dear Asha Rao, your #1017 ships from our store."
    call = ct.call_from(snap, params)
    assert call.body == (
        ("customer_name", "Asha Rao"),
        ("order_id", "#1017"),
        ("city", "our store"),
    )
    assert (call.header_media_kind, call.header_text, call.marketing) == ("image", None, False)


def test_a_media_header_without_a_file_cannot_be_snapshotted() -> None:
    mapping = {"body.customer_name": "x", "body.order_id": "y", "body.city": "z"}
    with pytest.raises(ValidationError, match="starts with a photo: attach one"):
        ct.snapshot(_row(NAMED), mapping, None)


def test_the_snapshot_is_plain_json_and_independent_of_the_row() -> None:
    import json

    components = [dict(c) for c in POSITIONAL]
    snap = ct.snapshot(_row(components), FULL_POSITIONAL, None)
    assert json.loads(json.dumps(snap)) == snap
    components[1]["text"] = "changed after the launch"
    assert snap["components"][1]["text"] == "Hi {{2}}, use {{1}} before Sunday."
    assert snap["category"] == "MARKETING" and snap["media_id"] is None


def test_an_empty_value_is_refused_naming_the_variable() -> None:
    snap = ct.snapshot(_row(POSITIONAL), FULL_POSITIONAL, None)
    with pytest.raises(TemplateError) as caught:
        ct.render_params(snap, _asha(order_ref="ord-1"), seed=1)  # no city
    message = str(caught.value)
    assert message.startswith("The heading's {{1}} comes out empty for this contact")
    assert "{{ city }}" in message and "WhatsApp refuses an empty value" in message
    blank = {**FULL_POSITIONAL, "body.2": "{{ first_name }}  "}
    nameless = context_for("+919876500002", "   ", None, {"city": "Pune", "order_ref": "o"})
    with pytest.raises(TemplateError, match=r"message's \{\{2\}\} comes out empty"):
        ct.render_params(ct.snapshot(_row(POSITIONAL), blank, None), nameless, seed=1)


def test_values_are_one_line_and_bounded_as_whatsapp_requires() -> None:
    snap = ct.snapshot(_row(POSITIONAL), FULL_POSITIONAL, None)
    _text, params = ct.render_params(snap, _asha(city="New\n\tDelhi    East", order_ref="o"), 1)
    assert params["header"] == ["1", "New Delhi East"]  # Meta refuses line breaks and tabs
    with pytest.raises(TemplateError, match="The heading comes to 68 characters"):
        ct.render_params(snap, _asha(city="x" * 60, order_ref="o"), 1)
    long_body = {**FULL_POSITIONAL, "body.1": "y" * 1000}
    with pytest.raises(TemplateError, match=r"The message comes to .* WhatsApp allows 1,024"):
        ct.render_params(
            ct.snapshot(_row(POSITIONAL), long_body, None), _asha(city="P", order_ref="o"), 1
        )
    code = {**FULL_POSITIONAL, "button.3": "{{ code }}"}
    with pytest.raises(TemplateError, match="code of the button “Copy offer code” comes to 16"):
        ct.render_params(
            ct.snapshot(_row(POSITIONAL), code, None),
            _asha(city="P", order_ref="o", code="C" * 16),
            1,
        )
    with pytest.raises(TemplateError, match="characters once filled in; WhatsApp allows 2,000"):
        ct.render_params(snap, _asha(city="P", order_ref="z" * 2000), 1)


def test_a_value_that_fails_at_render_time_names_the_variable() -> None:
    mapping = {**FULL_POSITIONAL, "body.1": "{{ total / count }}"}
    snap = ct.snapshot(_row(POSITIONAL), mapping, None)
    with pytest.raises(TemplateError) as caught:
        ct.render_params(snap, _asha(city="P", order_ref="o", total=5, count=0), 1)
    assert str(caught.value).startswith("The message's {{1}}: ") and "divides by zero" in str(
        caught.value
    )
    bomb = {**FULL_POSITIONAL, "body.1": "{{ 'x' * 100000 }}"}
    with pytest.raises(TemplateError, match="The message's"):
        ct.render_params(
            ct.snapshot(_row(POSITIONAL), bomb, None), _asha(city="P", order_ref="o"), 1
        )


def test_the_shown_buttons_are_drawn_filled_in() -> None:
    filled = ct.render(POSITIONAL, FULL_POSITIONAL, _asha(city="Pune", order_ref="ord-9"), 5)
    assert filled.shown_buttons[0] == {
        "kind": "url",
        "text": "Shop now",
        "url": "https://shop.example/s/ord-9",
    }
    assert filled.shown_buttons[1] == {
        "kind": "quick_reply",
        "text": "Stop promotions",
        "payload": ct.OPT_OUT_PAYLOAD,
        "opt_out": True,
    }
    assert filled.shown_buttons[2] == {
        "kind": "phone_number",
        "text": "Call us",
        "phone": "+15550001111",
    }
    assert filled.shown_buttons[4]["opt_out"] is False


def test_needs_template_only_for_cloud_api_senders() -> None:
    from wabulk.models import Channel

    web = SimpleNamespace(channel=Channel.WHATSAPP_WEB)
    cloud = SimpleNamespace(channel=Channel.CLOUD_API)
    assert ct.needs_template([web, cloud]) is True
    assert ct.needs_template([web]) is False
    assert ct.needs_template([]) is False


@pytest.mark.parametrize(
    ("source", "attributes"),
    [
        ("{{ city }}", {"city": "  Navi\nMumbai "}),
        ("{{ city }}", {"city": 411001}),  # a number: written as the renderer writes it
        ("{{ city }}", {"city": 4.5}),
        ("{{ true }}", {"true": "an attribute named true"}),  # Jinja's literal wins
        ("{{ first_name }}", {}),
        ("Fixed  text | with a bar", {}),
        ("{Hi|Hello} {{ city | upper }}", {"city": "goa"}),
    ],
)
def test_values_written_without_the_renderer_are_the_renderers_own(
    source: str, attributes: dict[str, Any]
) -> None:
    from wabulk.campaigns.rendering import compile_body

    body = [{"type": "BODY", "text": "Value: {{1}}"}]
    snap = ct.snapshot(_row(body), {"body.1": source}, None)
    ctx = _asha(**attributes)
    expected = " ".join(compile_body(source).render(ctx, 7).split())
    _text, params = ct.render_params(snap, ctx, seed=7)
    assert params["body"] == [["1", expected]]


def test_an_over_long_field_is_refused_by_the_renderers_rule() -> None:
    body = [{"type": "BODY", "text": "{{1}}"}]
    snap = ct.snapshot(_row(body), {"body.1": "{{ note }}"}, None)
    with pytest.raises(
        TemplateError, match="comes to 5,000 characters once filled in; WhatsApp allows 4,096"
    ):
        ct.render_params(snap, _asha(note="n" * 5000), seed=1)
    with pytest.raises(TemplateError, match="The message comes to 1,100 characters"):
        ct.render_params(snap, _asha(note="n" * 1100), seed=1)
