"""The budget of one render: how much work, memory and text a message body may take.

Jinja's sandbox stops a body from reaching the server's secrets but bounds neither CPU nor
memory, and an operator's body (or a viewer's preview) runs on the server once per contact.
Every render gets one `Budget`, held in a context variable while the template runs:

- Steps, counted as the body runs: each loop item, each call (macros, methods, recursive
  loops), each filter and operator, plus one step per `CHARS_PER_STEP` characters a step
  writes or builds. The count is deterministic, so a body fails the same way on every
  machine; a wall-clock deadline is only a backstop for what a count cannot foresee.
- Sizes: no value a body builds (text, list, number) may pass `MAX_SIZE` characters or
  items, or `MAX_BITS` bits; operations that multiply a size (repeat, replace, join,
  padding, `%` and `format` widths, nested ones too) are checked before they allocate,
  the rest after. A dict's items(), keys() and values() count all the dict holds.
- Only text-like values become text (`text_only`): a list, dict, method or object written
  out is Python's notation of all it holds, or a memory address, never what an author meant.
- The text itself, and what a block writes (`render_weave.Buffer`), stops being built once
  it passes `MAX_SIZE`; the caller checks the text against WhatsApp's limit (`TEXT_LIMIT`,
  or `CAPTION_LIMIT` for the caption of a photo or video).

Every refusal is a `RenderLimit` whose message is a sentence for the author.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MappingView
from contextvars import ContextVar
from datetime import date
from decimal import Decimal
from typing import Any

import jinja2
from jinja2.filters import make_attrgetter
from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter
from markupsafe import Markup

from ..words import N_, said

TEXT_LIMIT = 4096  # WhatsApp's limit for a text message
CAPTION_LIMIT = 1024  # and for the caption of a photo or video
# Far above any real message, far below what would exhaust memory.
MAX_SIZE = 20_000
MAX_BITS = 1024  # about 300 digits
MAX_STEPS = 100_000
CHARS_PER_STEP = 32
DEADLINE_SECONDS = 2.0
CLOCK_STEPS = 256  # ~0.5 ms of work between two looks at the clock
MACRO_STEPS = 4

TOO_MUCH_WORK = N_(
    "this message does too much work to prepare (a loop, repeat or macro runs too many "
    "times); make it simpler"
)
TOO_BIG = said(
    "that would make a text or list grow past %(most)s characters or items", most=f"{MAX_SIZE:,}"
)
TOO_LARGE_NUMBER = N_("a number in this message would grow past 300 digits")
TOO_DEEP = N_("a macro or loop calls itself too deeply; make sure it stops")


def limit_for(mime_type: str | None) -> int:
    """WhatsApp's length for a message's text: a photo or video carries it as a caption; a
    document is sent with the text as a message of its own."""
    return CAPTION_LIMIT if (mime_type or "").startswith(("image/", "video/")) else TEXT_LIMIT


class RenderLimit(Exception):
    """A body went past a bound; the message is a sentence for the author."""


class Budget:
    """Steps left for one render, and the deadline behind them."""

    __slots__ = ("clock_at", "deadline", "max_steps", "steps")

    def __init__(self, max_steps: int = MAX_STEPS, seconds: float = DEADLINE_SECONDS) -> None:
        self.max_steps = max_steps
        self.steps = 0
        self.deadline = time.monotonic() + seconds
        self.clock_at = 0  # the clock is read at the first step, then every CLOCK_STEPS

    def charge(self, steps: int) -> None:
        self.steps += steps
        if self.steps > self.max_steps:
            self._spent()
        if self.steps >= self.clock_at:
            self.clock_at = self.steps + CLOCK_STEPS
            if time.monotonic() > self.deadline:
                self._spent()

    def _spent(self) -> None:
        # Stays spent: anything that swallowed this (Jinja's constant folding at compile
        # time does) fails again at its next step.
        self.steps = self.max_steps + 1
        raise RenderLimit(TOO_MUCH_WORK)


_CURRENT: ContextVar[Budget | None] = ContextVar("wabulk_render_budget", default=None)


def start(budget: Budget) -> Any:
    return _CURRENT.set(budget)


def stop(token: Any) -> None:
    _CURRENT.reset(token)


def charge(steps: int = 1) -> None:
    budget = _CURRENT.get()
    if budget is None:
        # Outside a render (a test calling a filter, say) there is nothing to count against;
        # every render and compile sets one.
        return
    budget.charge(steps)


def charge_chars(chars: int) -> None:
    charge(1 + chars // CHARS_PER_STEP)


class Counted:
    """A loop's items, one step each (Jinja has no hook for loop iterations)."""

    __slots__ = ("_items", "_iterator", "_weight")

    def __init__(self, items: Any, weight: int = 1) -> None:
        self._items = items
        self._iterator: Iterator[Any] | None = None
        self._weight = weight

    def __len__(self) -> int:
        return len(self._items)  # TypeError when it has none: Jinja then counts the items

    def __iter__(self) -> Counted:
        if self._iterator is None:
            self._iterator = iter(self._items)
        return self

    def __next__(self) -> Any:
        charge(self._weight)
        return next(self._iterator or iter(self))


# --- sizes --------------------------------------------------------------------------------


def size(value: Any, cap: int = MAX_SIZE) -> int:
    """Characters plus items in `value`, nested values counted each time they appear;
    stops counting past `cap` so that a list repeating one long text costs little to
    measure."""
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, Mapping):
        items: Iterable[Any] = (x for pair in value.items() for x in pair)
        total = len(value)
    elif isinstance(value, list | tuple | set | frozenset | MappingView):
        # A dict's items(), keys() or values() hold the whole dict: one item would let a
        # list of 9,999 of them pass as small.
        items = value
        total = len(value)
    else:
        return 1
    for item in items:
        if total > cap:
            break
        total += size(item, cap - total)
    return total


def check(value: Any) -> Any:
    """`value`, if it stays within the bounds a body may build."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_BITS:
            raise RenderLimit(TOO_LARGE_NUMBER)
    elif size(value) > MAX_SIZE:
        raise RenderLimit(TOO_BIG)
    return value


def need(estimate: int) -> None:
    """Refuse before building a value that would come to `estimate` characters or items."""
    if estimate > MAX_SIZE:
        raise RenderLimit(TOO_BIG)


def text_len(value: Any) -> int:
    """About how long `value` is once written out: exact for text, a bound for a number."""
    if isinstance(value, jinja2.Undefined):
        return 0
    if isinstance(value, str):
        return len(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return 24 if isinstance(value, float) else value.bit_length() // 3 + 2
    # str() of a list or dict quotes and separates each item: a few characters per item.
    return size(value) * 4 + 2


# --- what may be written out as text -------------------------------------------------------

TEXT_TYPES = (str, int, float, Decimal, date)


def text_only(value: Any) -> Any:
    """`value`, if writing it out gives text an author meant: text, a number, a date, or
    nothing (None, undefined).

    Checked wherever a value becomes text (`{{ }}`, `~`, `join`, `format`, `%`, `string`,
    text filters): a list or dict written out is Python's notation of everything it holds
    (a list of one dict's items() 9,999 times over is gigabytes, though its size is 20,000),
    and a method or object written out shows a memory address.
    """
    if value is None or isinstance(value, (*TEXT_TYPES, jinja2.Undefined)):
        return value
    if callable(value):
        kind = N_('a method (add "()" to call it)')
    elif isinstance(value, Mapping):
        kind = N_("a group of named values (write one of them, as in order.city)")
    elif isinstance(value, Iterable):
        kind = N_('a list (write its items out with | join(", "))')
    else:
        kind = N_("something other than text")
    raise RenderLimit(said("a placeholder gives %(what)s, not text", what=kind))


# --- operations that multiply a size: estimated before they run ---------------------------

_NUMBER_RE = re.compile(r"\d+")
_PERCENT_SPEC_RE = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


def _widest(numbers: Iterable[str]) -> int:
    widest = 0
    for number in numbers:
        if len(number) > 5:
            raise RenderLimit(TOO_BIG)
        widest = max(widest, int(number))
    need(widest)
    return widest


def _values(fmt: str, args: Any) -> list[Any]:
    """What `fmt % args` writes out: a mapping is written whole unless `fmt` names keys."""
    if isinstance(args, Mapping) and "%(" in fmt:
        return list(args.values())
    if isinstance(args, tuple):
        return list(args)
    return [args]


def percent_estimate(fmt: str, args: Any) -> int:
    """An upper bound on the length of `fmt % args`, whose values must be text-like."""
    for value in _values(fmt, args):
        text_only(value)
    specs = _PERCENT_SPEC_RE.findall(fmt)
    widest = _widest(n for spec in specs for n in spec if n and n != "*")
    if any("*" in spec for spec in specs):
        for value in _values(fmt, args):  # `%*s`: a width given as an argument
            if isinstance(value, int) and not isinstance(value, bool):
                widest = max(widest, abs(value))
                need(widest)
    longest = max((text_len(v) for v in _values(fmt, args)), default=0)
    return len(fmt) + len(specs) * (longest + widest + 24)


class TextFormatter(SandboxedFormatter):
    """`str.format` for a body: each field must be text-like (`text_only`), and its width,
    nested ones (`{0:{1}}`) included, is known before the field is built; the fields
    together stop at `MAX_SIZE`."""

    written = 0

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self.written = 0
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        return super().convert_field(text_only(value), conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        # By now a nested width is filled in: `format_spec` holds the number itself.
        value = text_only(value)
        need(self.written + _widest(_NUMBER_RE.findall(format_spec)) + text_len(value) + 24)
        text = super().format_field(value, format_spec)
        self.written += len(text)
        charge_chars(len(text))
        return text


class TextEscapeFormatter(TextFormatter, SandboxedEscapeFormatter):
    """The same, for Markup's `format` (after `| e`), which escapes what it writes."""


def _occurrences(text: str, old: str) -> int:
    return len(text) + 1 if not old else text.count(old)


def replace_estimate(text: Any, old: Any, new: Any, count: Any = -1) -> int:
    text, old, new = str(text), str(old), str(new)
    times = _occurrences(text, old)
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    return len(text) + times * max(0, len(new) - len(old))


def bounded_items(items: Any) -> list[Any]:
    """A stream's items as a list, refused once together they pass `MAX_SIZE`."""
    if isinstance(items, list | tuple | str):
        return list(items)
    out: list[Any] = []
    total = 0
    for item in items:
        total += 1 + size(item)
        need(total)
        out.append(item)
    charge_chars(total)
    return out


def join_estimate(items: list[Any], separator: Any) -> int:
    sep = len(str(separator)) if separator is not None else 0
    return sum(text_len(item) for item in items) + sep * max(0, len(items) - 1)


# --- str methods the sandbox lets a body call --------------------------------------------


# Values a body may hold whose methods it may call: their numeric arguments are widths,
# lengths and counts (ljust, zfill, to_bytes, …), never more than MAX_SIZE.
_VALUES = (str, bytes, bytearray, int, float, list, tuple, dict, set, frozenset, Decimal, date)


def _text(value: Any) -> Any:
    """Bytes as text, so that one set of estimates serves both."""
    return value.decode("latin-1") if isinstance(value, bytes | bytearray) else value


def _method_precheck(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple:
    """Check a method's call on a value before it runs; may return replacement arguments.

    By its owner, not its type: Markup's methods (from `| e`) are Python functions
    wrapping str's, and `ljust(10**9)` on one allocates just the same.
    """
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, str):
        for arg in (*args, *kwargs.values()):
            text_only(arg)  # Markup.escape(x) writes x out
        return args, kwargs
    if not isinstance(owner, _VALUES):
        return args, kwargs
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, int) and not isinstance(arg, bool):
            need(abs(arg))
    owner = _text(owner)
    if not isinstance(owner, str):
        return args, kwargs
    name = getattr(obj, "__name__", "")
    texts = [_text(arg) for arg in args]
    if name == "replace" and len(texts) >= 2:
        need(replace_estimate(owner, *texts[:3]))
    elif name == "join" and args:
        items = bounded_items(args[0])
        for item in items:
            text_only(item)  # Markup's join writes out whatever it is given
        need(join_estimate([_text(item) for item in items], owner))
        args = (items, *args[1:])
    elif name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tab, int):
            need(len(owner) + owner.count("\t") * max(0, tab))
    elif name == "translate" and args and isinstance(args[0], Mapping):
        widest = max((text_len(_text(v)) for v in args[0].values()), default=1)
        need(len(owner) * max(1, widest))
    return args, kwargs


def guarded_call(call: Callable[..., Any], obj: Any, args: tuple, kwargs: dict) -> Any:
    """What the sandbox's `call` does for a body, within the budget."""
    # A macro call costs Jinja several times a loop step (its frame, its arguments).
    charge(MACRO_STEPS if isinstance(obj, jinja2.runtime.Macro) else 1)
    if isinstance(obj, jinja2.runtime.LoopContext) and args:
        args = (Counted(args[0]), *args[1:])  # a recursive loop's next level
    else:
        args, kwargs = _method_precheck(obj, args, kwargs)
    result = call(obj, *args, **kwargs)
    if isinstance(result, str):
        charge_chars(len(result))
    return check(result)


def guarded_format(env: jinja2.Environment, method: Any) -> Callable[..., str]:
    """`'…'.format(…)` and `format_map` for a body: see `TextFormatter`."""
    fmt: str = method.__self__
    if isinstance(fmt, Markup):
        formatter: TextFormatter = TextEscapeFormatter(env, escape=fmt.escape)
    else:
        formatter = TextFormatter(env)
    name = method.__name__

    def formatted(*args: Any, **kwargs: Any) -> str:
        if name == "format_map":
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one argument")
            args, kwargs = (), args[0]
        return check(type(fmt)(formatter.vformat(fmt, args, kwargs)))

    formatted.__name__ = name
    return formatted


# --- filters ------------------------------------------------------------------------------


# Filters that take a list or dict as it is: they count, pick, sort or join its items and
# never write the list itself out. Every other filter writes its value (and arguments) out
# as text, so those must be text-like; `urlencode` and `xmlattr` also take a dict of text.
CONTAINER_FILTERS = frozenset(
    {"attr", "batch", "count", "d", "default", "dictsort", "first", "float", "groupby", "int",
     "items", "join", "last", "length", "list", "map", "max", "min", "random", "reject",
     "rejectattr", "reverse", "round", "select", "selectattr", "slice", "sort", "sum",
     "unique"}
)  # fmt: skip
_DICT_FILTERS = frozenset({"urlencode", "xmlattr"})


def _text_filter_precheck(name: str, value: Any, rest: tuple, kwargs: dict[str, Any]) -> None:
    if name in _DICT_FILTERS and isinstance(value, Mapping):
        for pair in value.items():
            for part in pair:
                text_only(part)
    else:
        text_only(value)
    for arg in (*rest, *kwargs.values()):
        text_only(arg)


def _join_attribute(env: jinja2.Environment, args: tuple, kwargs: dict[str, Any]) -> tuple:
    """`join(attribute=…)`'s items looked up first, so that they can be checked as text."""
    kwargs = dict(kwargs)
    attribute = args[2] if len(args) > 2 else kwargs.pop("attribute", None)
    if attribute is None or not args:
        return args, kwargs
    items = [make_attrgetter(env, attribute)(item) for item in bounded_items(args[0])]
    return (items, *args[1:2]), kwargs


def _filter_precheck(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple:
    """Check a filter's arguments before it runs (args[0] is the value filtered)."""
    for arg in (*args[1:], *kwargs.values()):
        if isinstance(arg, int) and not isinstance(arg, bool):
            need(abs(arg))
    if not args:
        return args, kwargs
    value, rest = args[0], args[1:]
    if isinstance(value, Iterator):
        value = bounded_items(value)  # map(), select(), …: known to fit before use
        args = (value, *rest)
    if name not in CONTAINER_FILTERS:
        _text_filter_precheck(name, value, rest, kwargs)
    if name == "replace" and len(rest) >= 2:
        need(replace_estimate(value, *rest[:3]))
    elif name == "join":
        items = bounded_items(value) if not isinstance(value, str) else list(value)
        for item in items:
            text_only(item)
        need(join_estimate(items, text_only(rest[0] if rest else kwargs.get("d", ""))))
    elif name == "format":
        need(percent_estimate(str(value), rest or kwargs))
    elif name == "indent":
        width = rest[0] if rest else kwargs.get("width", 4)
        per_line = len(width) if isinstance(width, str) else int(width or 0)
        text = str(value)
        need(len(text) + (text.count("\n") + 1) * max(0, per_line))
    elif name == "wordwrap":
        width = rest[0] if rest else kwargs.get("width", 79)
        wrap = rest[2] if len(rest) > 2 else kwargs.get("wrapstring") or "\n"
        text = str(value)
        breaks = len(text) // max(1, int(width or 1)) + text.count(" ") + text.count("\n") + 1
        need(len(text) + breaks * len(str(wrap)))
    elif name == "truncate":
        end = rest[2] if len(rest) > 2 else kwargs.get("end", "...")
        need(len(str(value)) + len(str(end)))
    return args, kwargs


def guarded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that counts its work and refuses sizes past the bounds."""
    passes = getattr(original, "jinja_pass_arg", None)

    def filtered(*args: Any, **kwargs: Any) -> Any:
        lead = args[:1] if passes is not None else ()
        rest = args[len(lead) :]
        if name == "join" and lead:
            rest, kwargs = _join_attribute(lead[0].environment, rest, kwargs)
        rest, kwargs = _filter_precheck(name, rest, kwargs)
        charge_chars(size(rest[0]) if rest else 0)
        result = original(*lead, *rest, **kwargs)
        if isinstance(result, Iterator):
            return result  # lazy (map, select, …): whatever consumes it is checked
        if isinstance(result, str):
            charge_chars(len(result))
        return check(result)

    filtered.__name__ = getattr(original, "__name__", name)
    filtered.__doc__ = original.__doc__
    if passes is not None:
        filtered.jinja_pass_arg = passes  # type: ignore[attr-defined]
    return filtered


def guarded_test(original: Callable[..., Any]) -> Callable[..., Any]:
    passes = getattr(original, "jinja_pass_arg", None)

    def tested(*args: Any, **kwargs: Any) -> Any:
        charge()
        return original(*args, **kwargs)

    tested.__name__ = getattr(original, "__name__", "test")
    if passes is not None:
        tested.jinja_pass_arg = passes  # type: ignore[attr-defined]
    return tested


# --- operators ----------------------------------------------------------------------------

_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "//": lambda a, b: a // b,
    "%": lambda a, b: a % b,
}
BINOPS = frozenset({*_BINOPS, "**"})
UNOPS = frozenset({"+", "-"})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def binop(operator: str, left: Any, right: Any) -> Any:
    charge()
    for operand in (left, right):
        if _is_int(operand):
            check(operand)
    if operator == "**":
        if isinstance(right, int | float) and abs(right) > 64:
            raise RenderLimit("a power above 64 cannot be used in a message")
        if _is_int(left) and _is_int(right) and left.bit_length() * right > MAX_BITS:
            raise RenderLimit(TOO_LARGE_NUMBER)
        return check(left**right)
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and _is_int(times):
                need(size(seq) * times)
    elif operator == "%" and isinstance(left, str):
        need(percent_estimate(left, right))
    result = _BINOPS[operator](left, right)
    if isinstance(result, str):
        charge_chars(len(result))
    return check(result)


def unop(operator: str, value: Any) -> Any:
    charge()
    return check(-value if operator == "-" else +value)
