"""A body cannot freeze, exhaust or flood wabulk (issue 14, item 3): each render has a budget
of steps, sizes and output, and going past it is a sentence for the author.

Every test counts steps or characters, never seconds: the budget's wall-clock deadline is
set out of reach here, so these pass or fail the same on a busy machine.
"""

from __future__ import annotations

import tracemalloc

import pytest

from wabulk.campaigns import render_budget
from wabulk.campaigns.render_budget import MAX_STEPS, Budget
from wabulk.campaigns.rendering import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    TemplateError,
    compile_body,
    context_for,
)

ASHA = context_for("+919876543210", "Asha Rao", "IN", {"city": "Pune"})
WORK = "this message does too much work to prepare"
BIG = "grow past 20,000 characters or items"
NUMBER = "would grow past 300 digits"
DEEP = "calls itself too deeply"


def spend(body: str, context: dict | None = None, **kwargs) -> tuple[str | TemplateError, int]:
    """The text (or the error) and the steps it took, with no deadline in play."""
    budget = Budget(seconds=10**9)
    try:
        text: str | TemplateError = compile_body(body).render(
            ASHA if context is None else context, 1, spend=budget, **kwargs
        )
    except TemplateError as exc:
        text = exc
    return text, budget.steps


def refused(body: str, sentence: str, **kwargs) -> int:
    result, steps = spend(body, **kwargs)
    assert isinstance(result, TemplateError), f"rendered: {str(result)[:80]!r}"
    assert sentence in str(result), str(result)
    assert "Error" not in str(result) and "'" not in str(result)
    assert steps <= MAX_STEPS + 1
    return steps


# --- the attacks from the issue ------------------------------------------------------------


def test_a_chain_of_powers_is_refused_before_it_is_computed() -> None:
    # ~30 s of GIL per render before: now refused at the second power, in a few steps.
    assert refused("{{ (((9**64)**64)**64)**64 > 1 }}", NUMBER) < 10


def test_nested_loops_over_long_text_end_within_the_budget() -> None:
    body = "{% for a in 'x'*20000 %}{% for b in 'x'*20000 %}{% endfor %}{% endfor %}"
    assert refused(body, WORK) == MAX_STEPS + 1
    with_output = "{% for a in 'x'*20000 %}{% for b in 'x'*20000 %}{{ b }}{% endfor %}{% endfor %}"
    # Printing, it passes 20,000 characters of text first.
    assert refused(with_output, "comes to more than 20,000 characters") < MAX_STEPS


def test_a_loop_whose_items_are_all_filtered_out_still_counts_them() -> None:
    body = "{% for a in 'x'*20000 %}{% for b in 'x'*20000 if false %}{% endfor %}{% endfor %}"
    assert refused(body, WORK) == MAX_STEPS + 1


def test_doubling_a_text_stops_at_the_size_bound() -> None:
    by_macro = "{% macro d(s, n) %}{{ d(s ~ s, n - 1) if n else s | length }}{% endmacro %}"
    refused(by_macro + "{{ d('x', 40) }}", BIG)
    by_plus = "{% macro d(s, n) %}{{ d(s + s, n - 1) if n else s | length }}{% endmacro %}"
    refused(by_plus + "{{ d('x', 40) }}", BIG)
    by_set = "{% set s = 'x' * 15000 %}{% set s = s ~ s %}{{ s | length }}"
    refused(by_set, BIG)


def test_a_10_mb_body_is_never_built_nor_stored() -> None:
    body = "{% for i in 'x' * 20000 %}{{ 'y' * 500 }}{% endfor %}"
    steps = refused(body, "comes to more than 20,000 characters once filled in")
    assert steps < 5_000  # stopped as the text passed 20,000 characters, not at 10 MB


def test_text_is_limited_to_whatsapps_length_and_a_caption_to_1024() -> None:
    result, _ = spend("{{ 'y' * 5210 }}")
    assert str(result) == (
        "the message comes to 5,210 characters once filled in; WhatsApp allows 4,096"
    )
    assert spend("{{ 'y' * 4096 }}  \n")[0] == "y" * TEXT_LIMIT
    caption, _ = spend("{{ 'y' * 1025 }}", limit=CAPTION_LIMIT)
    assert str(caption) == (
        "the message comes to 1,025 characters once filled in; "
        "WhatsApp allows 1,024 in the caption of a photo or video"
    )
    assert spend("{{ 'y' * 1024 }}", limit=CAPTION_LIMIT)[0] == "y" * CAPTION_LIMIT


# --- recursion -----------------------------------------------------------------------------


def test_an_exponential_macro_ends_within_the_budget() -> None:
    body = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
    assert refused(body + "{{ f(40) }}", WORK) == MAX_STEPS + 1


def test_a_macro_writing_text_into_a_variable_is_counted_by_its_text() -> None:
    # Nothing is printed, yet 40 levels of 3,000 characters would be terabytes.
    body = "{% macro f(n) %}" + "L" * 3000 + "{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}"
    refused(body + "{% endmacro %}{% set x = f(40) %}ok", "")


def test_deep_recursion_is_a_sentence() -> None:
    refused("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", DEEP)
    refused("{% for x in [[1, 1]] recursive %}{{ loop([[1, 1], [1, 1]]) }}{% endfor %}", "")


def test_a_set_block_filled_by_a_loop_is_counted() -> None:
    body = "{% set x %}{% for a in 'x' * 20000 %}" + "L" * 3000 + "{% endfor %}{% endset %}ok"
    # Stopped as the block passes 20,000 characters (7 passes), long before its steps end.
    assert refused(body, BIG) < 2_000


# --- sizes are checked before they are allocated ---------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "{{ 'x'.ljust(10**9) }}",
        "{{ 'x'.ljust(999999999) }}",
        "{{ 'x'.zfill(999999999) }}",
        "{{ 'x'.center(999999999) }}",
        "{{ (1).to_bytes(999999999, 'big') | length }}",
        "{{ ('x' * 200).replace('x', 'y' * 200) }}",
        "{{ ('y' * 200).join(['a'] * 200) }}",
        "{{ ('\\t' * 200).expandtabs(200) }}",
        "{{ ('x' * 200).translate({120: 'y' * 200}) }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ ('{0}' * 200).format('y' * 200) }}",
        "{{ ('{a}' * 200).format_map({'a': 'y' * 200}) }}",
        "{{ '%999999999s' % 1 }}",
        "{{ '%*s' % (999999999, 'x') }}",
        "{{ ('%s' * 200) % (('y' * 200,) * 200) }}",
        "{{ (['x' * 200] * 200) | join }}",
        "{{ ('x' * 200) | list | map('center', 200) | join }}",
        "{{ ('x' * 200) | list | map('center', 200) | list | length }}",
        "{{ ('\\n' * 200) | indent('y' * 200) }}",
        "{{ ('x ' * 200) | wordwrap(1, wrapstring='y' * 200) }}",
        "{{ ('x' * 200) | replace('x', 'y' * 200) }}",
        "{{ ('x' * 200) | join('y' * 200) }}",
        "{{ ('%s' * 200) | format(*(['y' * 200] * 200)) }}",
        "{{ ('x' * 200) | truncate(5, end='y' * 30000) }}",
        "{{ 'x' * 1000000000 }}",
        "{{ [1] * 1000000000 }}",
        # Markup's methods (after `| e`) are Python functions wrapping str's.
        "{{ ('x' | e).ljust(999999999) | length }}",
        "{{ ('x' | e).center(999999999) | length }}",
        "{{ (('x' * 200) | e).replace('x', 'y' * 200) }}",
        "{{ (('y' * 200) | e).join(['a'] * 200) }}",
        "{{ ('x'.encode()).ljust(999999999) | length }}",
        "{{ ('x' * 200).encode().replace('x'.encode(), ('y' * 200).encode()) | length }}",
    ],
)
def test_multiplying_sizes_are_refused_before_they_are_built(body: str) -> None:
    # Each would build 40,000 to billions of characters; none gets to.
    tracemalloc.start()
    try:
        refused(body, BIG)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20  # bytes: a render never holds much more than a few texts


def test_numbers_stay_under_300_digits() -> None:
    refused("{{ 2 ** 64 * 2 ** 64 * 2 ** 64 * 2 ** 64 * 2 ** 64 * 2 ** 64 * 2 ** 64 * 2 ** 64"
            " * 2 ** 64 * 2 ** 64 * 2 ** 64 * 2 ** 64 * 2 ** 64 * 2 ** 64 * 2 ** 64 * 2 ** 64 }}",
            NUMBER)  # fmt: skip
    refused("{{ 2 ** 100000000 }}", "a power above 64 cannot be used")
    assert spend("{{ 2 ** 64 * 3 }}")[0] == str(2**64 * 3)


def test_python_giving_up_on_a_body_is_a_sentence() -> None:
    for body in (
        "{{ " + "(" * 1000 + "1" + ")" * 1000 + " }}",
        "{{ " + " and ".join(["a"] * 400) + " }}",
        "{% if a %}" * 150 + "{% endif %}" * 150,
    ):
        with pytest.raises(TemplateError, match="too complicated to prepare"):
            compile_body(body)


def test_the_deadline_is_a_backstop_for_what_steps_do_not_see() -> None:
    # A budget whose deadline has passed refuses at the next step, whatever the count.
    result, _ = spend_with(Budget(seconds=-1), "{% for a in 'xx' %}{{ a }}{% endfor %}")
    assert WORK in str(result)


def spend_with(budget: Budget, body: str) -> tuple[str | TemplateError, int]:
    try:
        return compile_body(body).render(ASHA, 1, spend=budget), budget.steps
    except TemplateError as exc:
        return exc, budget.steps


# --- what real messages do keeps working, cheaply --------------------------------------------


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ('Hi {{ name | default("there") | title }}!', "Hi Asha Rao!"),
        ("{{ first_name | upper }} from {{ city }}", "ASHA from Pune"),
        ("{% for w in name.split() %}{{ w[0] }}{% endfor %}", "AR"),
        ("{{ name ~ ' / ' ~ city }}", "Asha Rao / Pune"),
        ("{{ missing ~ 'x' }}", "x"),
        ("{{ '%s, %s' | format(first_name, city) }}", "Asha, Pune"),
        ("{{ '{} in {}'.format(first_name, city) }}", "Asha in Pune"),
        ("{{ ', '.join(['a', 'b']) }}|{{ ['a', 'b'] | join(', ') }}", "a, b|a, b"),
        ("{{ (10 / 4) | round(1) }} {{ 7 // 2 }} {{ 7 % 3 }} {{ -2 + 1 }}", "2.5 3 1 -1"),
        ("{% for x in [3, 1, 2] | sort %}{{ loop.index }}{{ x }}{% endfor %}", "112233"),
        ("{% for x in 'ab' %}{{ loop.length }}{{ loop.last }}{% endfor %}", "2False2True"),
        ("{% for x in [] %}a{% else %}none{% endfor %}", "none"),
        ("{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(name) }}", "<Asha Rao>"),
        ("{% for x in [[1, [2]]] recursive %}{{ x if x is number else loop(x) }}{% endfor %}",
         "12"),
        ("{{ ('=' * 5) ~ ([1] * 2) | length }}", "=====2"),
        ("{{ [{'n': 'a'}, {'n': 'b'}] | join('+', attribute='n') }}", "a+b"),
        ("{{ {'ref': first_name} | urlencode }}", "ref=Asha"),
        ("{{ '{:>{}}'.format(first_name, 6) }}|{{ '%5.1f' % 2.25 }}", "  Asha|  2.2"),
        ("{% set x %}{{ name }}!{% endset %}{{ x | upper }}", "ASHA RAO!"),
        ("{{ 3 | string }}{{ '' ~ 2.5 ~ none }}{{ missing | string }}", "32.5None"),
    ],
)  # fmt: skip
def test_ordinary_bodies_render_as_before(body: str, text: str) -> None:
    result, steps = spend(body)
    assert result == text
    assert steps < 100


def test_the_budget_counts_the_same_steps_on_every_run() -> None:
    body = "{% for a in 'x' * 50 %}{% for b in 'y' * 50 %}{{ b }}{% endfor %}{% endfor %}"
    assert spend(body)[1] == spend(body)[1] > 2_500


def test_no_budget_is_left_behind_after_a_render() -> None:
    spend("{{ 'x' * 5 }}")
    assert render_budget._CURRENT.get() is None


def test_a_body_longer_than_any_message_is_refused_before_it_is_compiled() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_body("{{ name }}" * 410)  # 4,100 characters
    assert str(caught.value) == "The message has 4,100 characters; WhatsApp allows 4,096."
    assert compile_body("x" * TEXT_LIMIT).render({}, 1) == "x" * TEXT_LIMIT


# --- the review of the budget: text conversions, captured blocks, nested widths, spintax ----

NOT_TEXT = "not text"
VIEWS = "{% set d = {'k': 'x' * 19990} %}{% set v = [d.items()] * "


def traced_peak(run) -> int:
    """Bytes at the peak of `run()`, traced: memory counted, not time."""
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        # A dict's items() held the whole dict yet counted as one item: written out, 9,999
        # of them were 200 MB, and a list of 9,999 such lists 3.9 GB.
        (VIEWS + "9999 %}{% set w = [{'a': v}.items()] * 9999 %}{{ ('' ~ w) | length }}", BIG),
        (VIEWS + "9999 %}{{ ('' ~ v) | length }}", BIG),
        (VIEWS + "3300 %}{{ v | join | length }}", BIG),
        # A list or dict is never written out as text, however small.
        ("{% set d = {'k': 'x' * 19990} %}{{ ('' ~ [d.items()]) | length }}", NOT_TEXT),
        ("{{ [1, 2] | string }}", NOT_TEXT),
        ("{{ {'a': 1} ~ '' }}", NOT_TEXT),
        ("{{ [[1]] | join }}", NOT_TEXT),
        ("{{ '%s' % ([1],) }}", NOT_TEXT),
        ("{{ '%s' % {'a': 1} }}", NOT_TEXT),
        ("{{ '%s' | format([1]) }}", NOT_TEXT),
        ("{{ '{}'.format([1]) }}", NOT_TEXT),
        ("{{ [1] | tojson }}", NOT_TEXT),
        ("{{ [1] | pprint }}", NOT_TEXT),
        ("{{ {'k': 'v'}.items() | list | upper }}", NOT_TEXT),
    ],
)
def test_lists_and_dicts_are_never_written_out_as_text(body: str, sentence: str) -> None:
    assert traced_peak(lambda: refused(body, sentence)) < 5 * 2**20


def test_a_set_block_stops_as_it_passes_the_size_bound() -> None:
    # Each `{{ n }}` writes 257 digits: 72,000 of them made an 18.5 M character block.
    body = (
        "{% set n = (10 ** 64) ** 4 %}{% set x %}{% for i in 'a' * 120 %}"
        + "{{n}}" * 600
        + "{% endfor %}{% endset %}{{ x.split('0') | length }}"
    )
    compile_body(body)  # its 600 outputs compile to a few MiB; the render is what is measured
    assert traced_peak(lambda: refused(body, BIG)) < 5 * 2**20
    by_macro = "{% macro m(n) %}{% for i in 'a' * 9999 %}{{ n }}{% endfor %}{% endmacro %}"
    assert traced_peak(lambda: refused(by_macro + "{{ m((10 ** 50) ** 4) | length }}", BIG)) < 2**20


@pytest.mark.parametrize(
    "body",
    [
        "{{ ('{0:{1}}' * 500).format('😀', 19999) }}",
        "{{ ('{0:>{1}}' * 3).format('x', 19999) }}",
        "{{ '{0:{1}}'.format('x', 99999) }}",
        "{{ '{:.{}f}'.format(1.5, 99999) }}",
        "{{ ('{0:{1[0]}}' * 500).format('x', [19999]) }}",
    ],
)
def test_a_nested_format_width_is_known_before_the_field_is_built(body: str) -> None:
    assert traced_peak(lambda: refused(body, BIG)) < 5 * 2**20


@pytest.mark.parametrize(
    "body",
    [
        ("{" + "|" * 78 + "}") * 50,  # 3,950 options: a second or more to compile
        "{" + "|" * 4090 + "}",
        "{a|b}" * 101,  # 202
    ],
)
def test_spintax_with_hundreds_of_options_is_refused_before_it_is_compiled(body: str) -> None:
    def compile_it() -> None:
        compile_body.cache_clear()
        with pytest.raises(TemplateError, match=r"more than 200 spintax options in all"):
            compile_body(body)

    # Refused while the braces are read: nothing of Jinja's or Python's compiler runs.
    assert traced_peak(compile_it) < 2**20


def test_a_message_with_200_spintax_options_still_compiles() -> None:
    body = "{Hi|Hello|Hey|Good day} {{ first_name }}, " * 50
    assert spend(body)[0].startswith(("Hi ", "Hello ", "Hey ", "Good day "))


@pytest.mark.parametrize(
    "body",
    [
        "{{ '' ~ name.upper }}",
        "{{ '{}'.format(name.split) }}",
        "{{ '{0.upper}'.format(name) }}",
        "{{ '{0!r}'.format(name.upper) }}",
        "{{ '{a}'.format_map({'a': name.upper}) }}",
        "{{ '%s' % name.upper }}",
        "{{ '%s' | format(name.upper) }}",
        "{{ name.upper | string }}",
        "{{ name.upper | upper }}",
        "{{ name.upper | e }}",
        "{{ [name.upper] | join }}",
        "{{ [name.upper] | join(', ') }}",
        "{{ ', ' | join([name]) }}",
        "{{ (', ' | e).join([name.upper]) }}",
        "{{ ('x' | e).escape(name.upper) }}",
        "{{ {'a': name.upper} | urlencode }}",
        "{% for x in 'a' %}{{ '' ~ loop }}{% endfor %}",
        "{% macro m() %}{% endmacro %}{{ m ~ '' }}",
    ],
)
def test_methods_and_objects_are_never_written_out_as_text(body: str) -> None:
    # Their repr showed "<built-in method upper of str object at 0x7f…>" in the chat.
    result, _ = spend(body)
    assert isinstance(result, TemplateError), str(result)
    assert "0x" not in str(result) and "built-in" not in str(result)
    assert traced_peak(lambda: refused(body, NOT_TEXT)) < 2**20


def test_a_missing_item_looked_up_by_a_method_does_not_show_its_address() -> None:
    result, _ = spend("{{ [1][name.upper] + 1 }}")
    assert str(result) == (
        'Line 1: placeholder "name" could not be filled: it looks up an item that is not there'
    )
