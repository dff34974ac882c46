"""Whatever body an operator writes, rendering stays in the sandbox and within its bounds.

Bodies come from a small grammar of what Jinja and spintax offer (placeholders, loops,
macros, filters, methods, arithmetic, repeats, attribute names an escape would try), mixed
with raw text. The property: compiling and rendering give a text no longer than the limit,
or a TemplateError whose message is a sentence; never another exception, never a step past
the budget, never more than 32 MiB of memory (traced, compile included), never anything of
Python's own (reprs, the environment).

The quick variant runs a couple of hundred examples in `make test`; its `slow` twin runs
10,000 in `make test-slow`. Steps are counted, not seconds: no deadline, derandomized.
"""

from __future__ import annotations

import os
import re
import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wabulk.campaigns.render_budget import CAPTION_LIMIT, MAX_STEPS, TEXT_LIMIT, Budget
from wabulk.campaigns.rendering import TemplateError, compile_body, context_for

CANARY = "canary-7f3a91"  # an escape reading the process environment would print it
CONTEXT = context_for(
    "+919876543210", "Asha Rao", "IN", {"city": "Pune", "n": 3, "tags": ["a", "b"], "due": 1.5}
)
# Python's own objects and words, and the environment: what an escape would print.
PYTHON = re.compile(
    r"<(class|module|function|built-in|bound|generator|Macro|jinja2|wabulk)\b|"
    r"object at 0x|Traceback|" + CANARY
)

_NAMES = ["name", "first_name", "city", "n", "tags", "due", "missing", "x", "loop", "caller"]
_ATTRS = ["upper", "split", "__class__", "__globals__", "mro", "__subclasses__", "format",
          "ljust", "replace", "join", "zfill", "center", "expandtabs", "items", "length",
          "index", "cycle", "real", "to_bytes", "__init__", "_private", "count",
          "encode"]  # fmt: skip
_FILTERS = ["upper", "title", "default('there')", "length", "list", "join", "join('-')",
            "center(30)", "indent(4)", "wordwrap(5)", "replace('a', 'bb')", "format(1, 2)",
            "truncate(5)", "sort", "unique", "reverse", "string", "int", "float", "abs",
            "first", "last", "batch(2)", "slice(3)", "map('upper')", "select", "sum",
            "attr('__class__')", "e", "trim", "round(2)", "tojson", "pprint", "wordcount",
            "center(99999)", "indent('xxxxxxxx')", "urlize", "striptags", "dictsort"]  # fmt: skip
_BINOPS = ["+", "-", "*", "/", "//", "%", "**", "~", "==", "<", "and", "or", "in"]

_INTS = st.one_of(st.integers(-3, 12), st.sampled_from([64, 65, 200, 20000, 99999, 10**9]))
_STRINGS = st.sampled_from(["'x'", "'ab'", "''", "'%s'", "'{}'", "'{0.__class__}'", "'\\t'",
                            "'%999s'", "'{:>9999}'", "'a b c'", "'\\n'",
                            "'__class__'", "'{0:{1}}'", "'{0.upper}'", "'{0!r}'"])  # fmt: skip


def _expressions() -> st.SearchStrategy[str]:
    atoms = st.one_of(
        _INTS.map(str),
        _STRINGS,
        st.sampled_from(_NAMES),
        st.just("[1, 2, 3]"),
        st.just("{'k': 'v'}"),
        # A dict's views hold the whole dict; a method written out shows an address.
        st.just("{'k': 'v' * 9999}.items()"),
        st.just("name.upper"),
    )

    def grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(_BINOPS), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(inner, st.sampled_from(_FILTERS)).map(lambda t: f"({t[0]} | {t[1]})"),
            st.tuples(inner, st.sampled_from(_ATTRS)).map(lambda t: f"{t[0]}.{t[1]}"),
            st.tuples(inner, st.sampled_from(_ATTRS), st.lists(inner, max_size=2)).map(
                lambda t: f"{t[0]}.{t[1]}({', '.join(t[2])})"
            ),
            st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
            inner.map(lambda e: f"f({e})"),
            inner.map(lambda e: f"-{e}"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        )

    return st.recursive(atoms, grow, max_leaves=8)


EXPR = _expressions()


def _bodies() -> st.SearchStrategy[str]:
    text = st.one_of(
        st.sampled_from(["Hi ", "\n", " ", "{Hi|Hello}", "{a|{b|c}}", "{SAVE10}", "| ", "🎉"]),
        st.text(alphabet="ab {}|%#\n-", max_size=8),
    )
    leaf = st.one_of(text, EXPR.map(lambda e: "{{ " + e + " }}"))

    def grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        block = st.lists(inner, max_size=3).map("".join)
        return st.one_of(
            st.tuples(EXPR, block).map(lambda t: f"{{% for x in {t[0]} %}}{t[1]}{{% endfor %}}"),
            st.tuples(EXPR, block).map(
                lambda t: f"{{% for x in {t[0]} recursive %}}{t[1]}{{{{ loop(x) }}}}{{% endfor %}}"
            ),
            st.tuples(EXPR, block, block).map(
                lambda t: f"{{% if {t[0]} %}}{t[1]}{{% else %}}{t[2]}{{% endif %}}"
            ),
            EXPR.map(lambda e: f"{{% set x = {e} %}}"),
            block.map(lambda b: f"{{% set x %}}{b}{{% endset %}}{{{{ x }}}}"),
            block.map(lambda b: f"{{% filter upper %}}{b}{{% endfilter %}}"),
            st.tuples(block, EXPR).map(
                lambda t: f"{{% macro f(n) %}}{t[0]}{{{{ f({t[1]}) }}}}{{% endmacro %}}"
            ),
            st.lists(block, min_size=2, max_size=3).map(lambda bs: "{" + "|".join(bs) + "}"),
        )

    return st.lists(st.recursive(leaf, grow, max_leaves=10), max_size=6).map("".join)


BODIES = _bodies()


def check(body: str, limit: int) -> None:
    tracemalloc.start()
    try:
        _check(body, limit)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A value holds at most 20,000 characters or items and all the text a render writes
    # is paid for in steps (32 characters a step): a few MiB at worst.
    assert peak < MEMORY_BOUND, (peak, body)


def _check(body: str, limit: int) -> None:
    compile_body.cache_clear()  # compiling is part of what a body costs
    try:
        compiled = compile_body(body)
    except TemplateError as exc:
        assert not PYTHON.search(str(exc)), str(exc)
        return
    budget = Budget(seconds=10**9)  # steps only: the property holds on any machine
    try:
        text = compiled.render(CONTEXT, seed=7, limit=limit, spend=budget)
    except TemplateError as exc:
        assert not PYTHON.search(str(exc)), str(exc)
        assert str(exc).strip()
    else:
        assert isinstance(text, str)
        assert len(text) <= limit
        assert not PYTHON.search(text), text[:200]
    assert budget.steps <= MAX_STEPS + 1


MEMORY_BOUND = 32 * 2**20


COMMON = {
    "deadline": None,
    "derandomize": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@pytest.fixture(autouse=True, scope="module")
def _canary() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WABULK_RENDER_CANARY", CANARY)
        yield


@settings(max_examples=200, **COMMON)
@given(body=BODIES, caption=st.booleans())
def test_rendering_stays_sandboxed_and_bounded(body: str, caption: bool) -> None:
    assert os.environ["WABULK_RENDER_CANARY"] == CANARY
    check(body, CAPTION_LIMIT if caption else TEXT_LIMIT)


@pytest.mark.slow
@settings(max_examples=10_000, **COMMON)
@given(body=BODIES, caption=st.booleans())
def test_rendering_stays_sandboxed_and_bounded_slow(body: str, caption: bool) -> None:
    check(body, CAPTION_LIMIT if caption else TEXT_LIMIT)


@settings(max_examples=200, **COMMON)
@given(body=st.text(max_size=300))
def test_any_text_at_all_compiles_or_is_a_sentence(body: str) -> None:
    check(body, TEXT_LIMIT)


@pytest.mark.slow
@settings(max_examples=10_000, **COMMON)
@given(body=st.text(max_size=300))
def test_any_text_at_all_compiles_or_is_a_sentence_slow(body: str) -> None:
    check(body, TEXT_LIMIT)
