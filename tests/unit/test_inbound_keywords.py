"""Opt-out keywords: the one matching rule every channel uses, and the list's checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wabulk.errors import ValidationError
from wabulk.inbound import keywords as kw


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        " Stop! ",
        "STOP.",
        "🛑 stop 🛑",
        "\uff33\uff54\uff4f\uff50",  # full-width letters
        "stop   all",
        "Unsubscribe",
        "रुकें",
        "बंद करो।",
        "Parar",
        "SAIR!!",
        "cancelar suscripción",
        "Baja",
        "berhenti",
        "\u200bSTOP\u200b",
    ],
)
def test_a_whole_keyword_opts_out(text: str) -> None:
    assert kw.matches(text)


@pytest.mark.parametrize(
    "text",
    [
        "don't stop sending",
        "Please stop?? no wait, send me the blue one",
        "stopp",
        "s t o p",
        "unsubscribed already lol",
        "",
        None,
        "🙂",
        "stop " * 100,
        "रुक",  # a different word: Devanagari vowel signs are not accents to fold away
    ],
)
def test_anything_else_does_not(text: str | None) -> None:
    assert not kw.matches(text)


def test_accents_fold_but_devanagari_signs_stay() -> None:
    assert kw.normalise("CANCELAR SUSCRIPCIÓN") == "cancelar suscripcion"
    assert kw.normalise("Descadastrar, por favor") == "descadastrar por favor"
    assert kw.normalise("रुकें") != kw.normalise("रुक")


def test_an_administrators_list_replaces_the_defaults() -> None:
    words = kw.parse_keywords("Stop\nNo more, HENTIKAN\n\n  no   more  \n")
    assert words == ("Stop", "No more", "HENTIKAN")
    assert kw.matches("no more!", words) and kw.matches("hentikan", words)
    assert not kw.matches("unsubscribe", words)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one keyword"),
        ("\n , \n", "at least one keyword"),
        ("x" * 31, "too long"),
        ("!!!", "no letters or digits"),
        ("\n".join(f"word{i}" for i in range(61)), "60 at most"),
    ],
)
def test_a_bad_list_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        kw.parse_keywords(text)


def test_the_defaults_are_a_valid_list_in_five_languages() -> None:
    assert kw.parse_keywords("\n".join(kw.DEFAULT_KEYWORDS)) == kw.DEFAULT_KEYWORDS
    for word in ("STOP", "UNSUBSCRIBE", "रुकें", "PARAR", "BAJA", "BERHENTI"):
        assert kw.matches(word)


def test_the_opt_out_button_payload() -> None:
    assert kw.is_opt_out_payload("wabulk:opt-out")
    assert not kw.is_opt_out_payload("STOP_PROMOS") and not kw.is_opt_out_payload(None)


@given(st.text(max_size=60))
def test_normalising_is_stable_and_never_fails(text: str) -> None:
    once = kw.normalise(text)
    assert kw.normalise(once) == once
    assert once == once.strip() and "  " not in once
