"""WhatsApp's *bold*, _italic_, ~strike~ and ```monospace``` as the pages show them."""

from __future__ import annotations

import pytest

from wabulk.campaigns.render_budget import MAX_SIZE
from wabulk.campaigns.wa_format import Styled, parse, to_html, to_json


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("*Sale* _today_ ~only~", "<strong>Sale</strong> <em>today</em> <del>only</del>"),
        ("*_both_*", "<strong><em>both</em></strong>"),
        ("_a *b* c_", "<em>a <strong>b</strong> c</em>"),
        ("Hi *Asha*, see you", "Hi <strong>Asha</strong>, see you"),
        ("line one\n*two*", "line one\n<strong>two</strong>"),
    ],
)
def test_markers_become_formatting(text: str, html: str) -> None:
    assert to_html(text) == html


@pytest.mark.parametrize(
    "text",
    [
        "2*3*4 = 24",  # inside a word
        "snake_case_name",
        "* not bold*",  # space after the opening marker
        "*not bold *",  # space before the closing marker
        "**",  # nothing between
        "*",
        "a lone * star",
        "*across\nlines*",  # bold, italic and strike stay on one line
    ],
)
def test_markers_that_do_not_pair_stay_plain_text(text: str) -> None:
    assert parse(text) == [text]


def test_an_unbalanced_marker_leaves_the_rest_formatted() -> None:
    assert to_html("*a *b* c*") == "<strong>a *b</strong> c*"
    assert to_html("_a *b_ c*") == "<em>a *b</em> c*"
    assert to_html("~gone~ *open") == "<del>gone</del> *open"


def test_monospace_wins_over_every_other_marker_and_may_span_lines() -> None:
    assert to_html("```*not bold* _x_```") == "<code>*not bold* _x_</code>"
    assert to_html("```a\nb``` then *b*") == "<code>a\nb</code> then <strong>b</strong>"
    assert to_html("*a ```b* c```") == "*a <code>b* c</code>"
    assert parse("``````") == ["``````"]  # empty


def test_html_in_a_message_is_text_never_markup() -> None:
    html = to_html('<script>alert(1)</script> *<b>&"x"</b>*')
    assert "<script>" not in html and "<b>" not in html
    assert html == (
        "&lt;script&gt;alert(1)&lt;/script&gt; <strong>&lt;b&gt;&amp;&#34;x&#34;&lt;/b&gt;</strong>"
    )
    assert to_html("```<img src=x onerror=alert(1)>```") == (
        "<code>&lt;img src=x onerror=alert(1)&gt;</code>"
    )


def test_the_browser_gets_a_tree_of_strings() -> None:
    assert to_json("Hi *<i>Asha</i>*!") == [
        "Hi ",
        {"style": "b", "children": ["<i>Asha</i>"]},
        "!",
    ]
    assert parse("```x```") == [Styled("code", ("x",))]


def test_work_stays_bounded_for_many_markers_that_never_close() -> None:
    text = "*a " * 1300 + "_b " * 1300
    assert parse(text) == [text]
    assert parse("*" * (MAX_SIZE + 1)) == ["*" * (MAX_SIZE + 1)]
