"""Message rendering: the one place a campaign body becomes the text one contact receives.

- A body is Jinja placeholders (`{{ name | default("there") }}`) plus spintax for variation
  (`{Hi|Hello|Good morning}`, nestable; options may hold placeholders and newlines).
- Spintax is translated into Jinja `if` tags at compile time, on the same lines, so Jinja's
  line numbers are the user's and each body is one compiled template. `{{`, `{%` and `{#`
  always start Jinja, so a nested group cannot follow its opening brace directly: write
  `{Hi|{Hey|Hello}}`, not `{{Hey|Hello}|Hi}`. A brace group without a `|` is literal text
  (`use code {SAVE10}`); a `|` outside braces is literal text; an unmatched brace is an error.
  A body offers at most `MAX_SPIN_OPTIONS` options in all, counted as the braces are read,
  so that what Jinja and Python then compile stays small.
- The option a group shows depends only on (seed, group): the dispatcher passes the message
  id, so a re-render after a crash gives the same text, and ids spread evenly over options.
- Rendering is sandboxed (operators write bodies; the server holds secrets): no loader, no
  globals, no `_` attributes, no `self`, and only text-like values may become text, by
  `{{ }}` or any other way (`~`, `join`, `format`, `%`, text filters).
- A missing or blank field is undefined, so it prints "" and `default()` applies to it.
- The sandbox bounds neither CPU nor memory: every compile and render runs on a budget of
  steps, sizes and output (`render_budget.py`), woven into the compiled body, and a text
  longer than WhatsApp allows (4,096 characters; 1,024 for a caption) is refused.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import TracebackType
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from wabulk.errors import ValidationError
from wabulk.words import N_, said

from . import render_budget as budget
from . import render_weave
from .render_budget import CAPTION_LIMIT, MAX_SIZE, TEXT_LIMIT, RenderLimit

__all__ = ["CAPTION_LIMIT", "MAX_SIZE", "TEXT_LIMIT", "RenderLimit"]

# The per-render spintax choices; a name no attribute can have (attributes never start "_").
_SPIN = "_wabulk_spin"
_MASK = (1 << 64) - 1
CONTACT_FIELDS = frozenset({"phone", "name", "first_name", "country"})
_STRING_RE = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.DOTALL)
_RAW_RE = re.compile(r"\{%[-+]?\s*raw\s*[-+]?%\}")
_ENDRAW_RE = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LAST_TOKEN_RE = re.compile(r"([\w.]+|\"[^\"]*\"|'[^']*'|\S)\s*$")
_QUOTED_RE = re.compile(r"'([^']*)'")
_NEWLINE_RE = re.compile(r"\r\n|\r|\n")
_SPECIAL_RE = re.compile(r"[{|}]")
_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "if", "else", "true", "false", "none"})
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_FORBIDDEN_NODES = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from … import",
    nodes.Extends: "extends",
}


class TemplateError(ValidationError):
    """A body that cannot be compiled or rendered; the message names the line for a person."""

    def __init__(
        self, message: str, line: int | None = None, placeholder: str | None = None
    ) -> None:
        super().__init__(
            said("Line %(line)s: %(problem)s", line=line, problem=message) if line else message,
            field="body",
        )
        self.line = line
        self.placeholder = placeholder


class _Forbidden(SecurityError):
    """A sandbox refusal whose message is ours, fit to show to the user."""


def _finalize(value: Any) -> Any:
    """What `{{ … }}` prints: text-like values; None and undefined print nothing.

    Anything else (a method without `()`, a list, a loop object) is refused rather than
    printed (`text_only`, the rule for every conversion to text), so no Python object's
    repr can end up in a customer's chat.
    """
    if value is None or isinstance(value, jinja2.Undefined):
        return ""
    # What a loop or macro writes is counted as it is written, so text built up in a macro
    # or `{% set %}` block is bounded before it is ever printed; a number by its digits.
    budget.charge_chars(budget.text_len(budget.text_only(value)))
    return value


class _MessageEnvironment(ImmutableSandboxedEnvironment):
    code_generator_class = render_weave.WovenCodeGenerator
    # What a block (macro, `{% set %}`, filter, call) writes; the woven code makes each one.
    bounded_buffer = staticmethod(render_weave.Buffer)
    # Every operator is intercepted: it is counted and its size checked, and an intercepted
    # operator is never folded at compile time, where no budget would see it.
    intercepted_binops = budget.BINOPS
    intercepted_unops = budget.UNOPS

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        return budget.binop(operator, left, right)

    def call_unop(self, context: Any, operator: str, arg: Any) -> Any:
        return budget.unop(operator, arg)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        call = functools.partial(ImmutableSandboxedEnvironment.call, __self, __context)
        return budget.guarded_call(call, __obj, args, kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        if super().wrap_str_format(value) is None:  # not str.format: left to the sandbox
            return None
        return budget.guarded_format(self, value)

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        # The stock sandbox returns an undefined that prints "" with ChainableUndefined;
        # failing tells the author at preview instead of silently dropping text.
        raise _Forbidden(f'"{attribute}" cannot be used in a message')


def _environment() -> _MessageEnvironment:
    env = _MessageEnvironment(
        autoescape=False,  # WhatsApp text, not HTML: "&" must stay "&"
        undefined=jinja2.ChainableUndefined,  # `{{ order.city }}` on a missing field is ""
        finalize=_finalize,
    )
    # range, lipsum, cycler, joiner and namespace: a message needs none of them, and each
    # one is a callable the sandbox would otherwise have to be right about.
    env.globals.clear()
    for name, original in list(env.filters.items()):
        env.filters[name] = budget.guarded_filter(name, original)
    for name, original in list(env.tests.items()):
        env.tests[name] = budget.guarded_test(original)
    return env


_ENV = _environment()


@dataclass(frozen=True)
class CompiledBody:
    """A body compiled once; `render` fills it for one contact."""

    source: str
    placeholders: frozenset[str]
    _template: jinja2.Template = field(repr=False, compare=False)
    # Number of options of each spintax group, by group index.
    _sizes: tuple[int, ...] = field(repr=False, compare=False)

    def render(
        self,
        context: Mapping[str, Any],
        seed: int,
        limit: int = TEXT_LIMIT,
        spend: budget.Budget | None = None,
    ) -> str:
        """The message for one contact; `seed` (the message id) fixes every spintax choice.

        - Only trailing whitespace of the whole message is stripped.
        - `limit`: WhatsApp's length for this message (`CAPTION_LIMIT` when the text goes
          as the caption of a photo or video).
        - Raises TemplateError (with the line) when a placeholder fails at run time, when
          the body goes past its budget (`spend`, a fresh one by default), and when the text
          is longer than `limit`.
        """
        picks = tuple(_pick(seed, group, size) for group, size in enumerate(self._sizes))
        variables = dict(context)
        variables["_wabulk_spin"] = picks
        template = self._template
        token = budget.start(spend or budget.Budget())
        pieces: list[str] = []
        written = 0
        # The environment has no globals, so the variables can be the context itself
        # (shared=True): half the cost of `Template.render`, which the dispatcher pays for
        # every message.
        stream = template.root_render_func(template.new_context(variables, True))
        try:
            for piece in stream:
                pieces.append(piece)
                written += len(piece)
                if written > MAX_SIZE:
                    # Stop building: the text is far past any limit already.
                    raise TemplateError(_too_long(f"{MAX_SIZE:,}", limit, more=True))
        except TemplateError:
            raise
        except Exception as exc:
            raise _runtime_error(exc, self.source, template) from None
        finally:
            stream.close()
            budget.stop(token)
        text = "".join(pieces).rstrip()
        if len(text) > limit:
            raise TemplateError(_too_long(f"{len(text):,}", limit))
        return text


def _too_long(length: str, limit: int, more: bool = False) -> str:
    caption = limit == CAPTION_LIMIT
    if more and caption:
        msgid = N_(
            "the message comes to more than %(length)s characters once filled in; WhatsApp "
            "allows %(limit)s in the caption of a photo or video"
        )
    elif more:
        msgid = N_(
            "the message comes to more than %(length)s characters once filled in; WhatsApp "
            "allows %(limit)s"
        )
    elif caption:
        msgid = N_(
            "the message comes to %(length)s characters once filled in; WhatsApp allows "
            "%(limit)s in the caption of a photo or video"
        )
    else:
        msgid = N_(
            "the message comes to %(length)s characters once filled in; WhatsApp allows %(limit)s"
        )
    return said(msgid, length=length, limit=f"{limit:,}")


def _pick(seed: int, group: int, size: int) -> int:
    """Option of group `group` for `seed`: splitmix64, stable across Python versions.

    Python's own hash of a tuple is not promised to stay the same between releases, and a
    re-render after an upgrade must give the text that was already sent.
    """
    z = ((seed & _MASK) * 0x9E3779B97F4A7C15 + (group + 1) * 0xD1B54A32D192ED03) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return (z ^ (z >> 31)) % size


# Spintax options a body may offer in all: a few dozen groups of a few options is the most
# a real message has, and each option is a branch Jinja and Python then compile (at ~0.3 ms
# each, 4,000 options would take a second or more per body).
MAX_SPIN_OPTIONS = 200
_TOO_MANY_OPTIONS = said(
    "this message has more than %(most)s spintax options in all "
    "({Hi|Hello} has 2); use fewer groups or fewer options in each",
    most=MAX_SPIN_OPTIONS,
)
_TOO_COMPLEX = N_(
    "this message is too complicated to prepare (too many nested brackets or conditions)"
)


@lru_cache(maxsize=128)
def compile_body(body: str) -> CompiledBody:
    """Check and compile a body; cached, as the dispatcher compiles per batch.

    - Raises TemplateError naming the line (and the placeholder when known) for unbalanced
      spintax braces, Jinja syntax errors, unknown filters and forbidden tags.
    """
    if len(body) > TEXT_LIMIT:
        # Longer than any message, so never sent whole; compiling it would only cost.
        raise TemplateError(
            said(
                "The message has %(n)s characters; WhatsApp allows %(limit)s.",
                n=f"{len(body):,}",
                limit=f"{TEXT_LIMIT:,}",
            )
        )
    try:
        return _compile(body)
    except (SyntaxError, RecursionError, MemoryError):
        # Python gives up on some bodies (hundreds of nested brackets or of `and`s in one
        # tag): in Jinja's parser, or compiling the code Jinja wrote.
        raise TemplateError(_TOO_COMPLEX) from None


def _compile(body: str) -> CompiledBody:
    translator = _Translator(body)
    translated = translator.translate()
    try:
        tree = _ENV.parse(translated)
    except jinja2.TemplateSyntaxError as exc:
        line = exc.lineno
        raise TemplateError(
            _jinja_message(exc.message or ""), line, translator.placeholder_on(line)
        ) from None
    _check_tree(tree)
    names = meta.find_undeclared_variables(tree) - {_SPIN}
    render_weave.weave(tree)
    # Jinja folds constant filters at compile time: a budget of its own bounds that too
    # (what it cannot fold within it is left to run, and be counted, at render time).
    token = budget.start(budget.Budget())
    try:
        template = _ENV.from_string(tree)
    except jinja2.TemplateError as exc:  # a check above should have caught it first
        raise TemplateError(_jinja_message(str(exc)), getattr(exc, "lineno", None)) from None
    finally:
        budget.stop(token)
    return CompiledBody(body, frozenset(names), template, tuple(translator.sizes))


def context_for(
    phone: str, name: str | None, country: str | None, attributes: Mapping[str, Any]
) -> dict[str, Any]:
    """The variables one contact offers a body.

    - phone, name, first_name (first word of name), country, then every attribute.
    - An attribute never overrides the four contact fields, even when they are empty.
    - Empty values are left out, so they are undefined: `default()` then applies.
    """
    context = {
        key: value
        for key, value in attributes.items()
        if key not in CONTACT_FIELDS and not _is_blank(value)
    }
    words = (name or "").split()
    own = (("phone", phone), ("name", name), ("first_name", words[0] if words else None))
    for key, value in (*own, ("country", country)):
        if not _is_blank(value):
            context[key] = value
    return context


def empty_placeholders(
    compiled: CompiledBody, contexts: Iterable[Mapping[str, Any]]
) -> dict[str, int]:
    """For each placeholder, how many recipients lack it (missing or blank); only those > 0."""
    counts = dict.fromkeys(sorted(compiled.placeholders), 0)
    for context in contexts:
        for name in counts:
            if _is_blank(context.get(name)):
                counts[name] += 1
    return {name: count for name, count in counts.items() if count}


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class _Translator:
    """Spintax to Jinja, keeping every character on its line.

    - `{{ … }}`, `{% … %}` and `{# … #}` are copied as they are (a small lexer finds their
      end the way Jinja does: strings and brackets first), so a `|` or brace inside them
      is never spintax. `{% raw %}` blocks are copied whole.
    - A group of several options becomes `{%if _wabulk_spin[k]==0%}A{%elif …%}B{%endif%}`.
    """

    def __init__(self, body: str) -> None:
        self.body = body
        self.pos = 0
        self.sizes: list[int] = []
        self.options = 0  # in all groups so far, counted as they are found
        # (start offset, text) of each `{{ … }}` tag, to name a placeholder in errors.
        self.prints: list[tuple[int, str]] = []
        self.blocks_on: set[int] = set()
        self._last_print_end = -1

    def translate(self) -> str:
        return self._options(None)[0]

    def line_of(self, offset: int) -> int:
        # Counted as Jinja counts them, so both agree on a line ending in a lone "\r".
        return len(_NEWLINE_RE.findall(self.body, 0, offset)) + 1

    def placeholder_on(self, line: int | None) -> str | None:
        """The placeholder of the only `{{ … }}` on `line` (no `{% %}` there), else None."""
        if line is None or line in self.blocks_on:
            return None
        texts = [text for start, text in self.prints if self.line_of(start) == line]
        return _first_name(texts[0]) if len(texts) == 1 else None

    def _options(self, opener: int | None) -> list[str]:
        """Translated options up to the `}` closing `opener` (or the end, at top level)."""
        body = self.body
        options: list[str] = []
        current: list[str] = []
        while True:
            found = _SPECIAL_RE.search(body, self.pos)
            if found is None:
                if opener is not None:
                    raise TemplateError(
                        '"{" is never closed; spintax is written {Hi|Hello}',
                        self.line_of(opener),
                    )
                current.append(body[self.pos :])
                self.pos = len(body)
                return ["".join(current)]
            brace = found.start()
            current.append(body[self.pos : brace])
            char = body[brace]
            self.pos = brace + 1
            if char == "{":
                if body[brace + 1 : brace + 2] in ("{", "%", "#"):
                    current.append(self._tag(brace))
                else:
                    current.append(self._group(brace))
            elif char == "|":
                if opener is None:
                    current.append("|")
                else:
                    self.options += 1 if options else 2
                    if self.options > MAX_SPIN_OPTIONS:
                        raise TemplateError(_TOO_MANY_OPTIONS, self.line_of(brace))
                    options.append("".join(current))
                    current = []
            elif opener is None:
                raise self._stray_brace(brace)
            else:
                options.append("".join(current))
                return options

    def _group(self, opener: int) -> str:
        options = self._options(opener)
        if len(options) == 1:
            return "{" + options[0] + "}"
        index = len(self.sizes)
        self.sizes.append(len(options))
        parts = [f"{{%if {_SPIN}[{index}]==0%}}", options[0]]
        for number, option in enumerate(options[1:-1], start=1):
            parts += [f"{{%elif {_SPIN}[{index}]=={number}%}}", option]
        parts += ["{%else%}", options[-1], "{%endif%}"]
        return "".join(parts)

    def _stray_brace(self, offset: int) -> TemplateError:
        line_start = self.body.rfind("\n", 0, offset) + 1
        if self._last_print_end == offset and self.prints:
            name = _first_name(self.prints[-1][1])
            before = name
        else:
            match = _LAST_TOKEN_RE.search(self.body[line_start:offset])
            before, name = (match.group(1) if match else None), None
        after = f' after "{before}"' if before else ""
        return TemplateError(f'unexpected "}}"{after}', self.line_of(offset), name)

    def _tag(self, start: int) -> str:
        """Copy one Jinja tag starting at `start`; return it (or a whole raw block)."""
        body = self.body
        kind = body[start + 1]
        if kind == "#":
            end = body.find("#}", start + 2)
            if end < 0:
                raise TemplateError('"{#" is never closed with "#}"', self.line_of(start))
            self.pos = end + 2
            return body[start : self.pos]
        end = self._tag_end(start, kind)
        text = body[start:end]
        self.pos = end
        if kind == "{":
            self.prints.append((start, text))
            self._last_print_end = end
            return text
        self.blocks_on.add(self.line_of(start))
        if _RAW_RE.fullmatch(text):
            closing = _ENDRAW_RE.search(body, end)
            if closing is None:
                raise TemplateError(
                    '"{% raw %}" is never closed with "{% endraw %}"', self.line_of(start)
                )
            self.pos = closing.end()
            return body[start : self.pos]
        return text

    def _tag_end(self, start: int, kind: str) -> int:
        """Offset just past the `}}` or `%}` closing the tag, as Jinja's lexer finds it."""
        body = self.body
        closer = "}" if kind == "{" else "%"
        stack: list[str] = []
        i = start + 2
        while i < len(body):
            char = body[i]
            if char in "'\"":
                match = _STRING_RE.match(body, i)
                if match is None:
                    break
                i = match.end()
                continue
            if char in _OPENERS:
                stack.append(_OPENERS[char])
            elif char == closer and not stack and body[i + 1 : i + 2] == "}":
                return i + 2
            elif char in ")]}":
                if not stack or stack[-1] != char:
                    raise self._unexpected(start, i, stack)
                stack.pop()
            i += 1
        opening, closing = ("{{", "}}") if kind == "{" else ("{%", "%}")
        name = _first_name(body[start:]) if kind == "{" else None
        raise TemplateError(
            f'"{opening}" is never closed with "{closing}"', self.line_of(start), name
        )

    def _unexpected(self, start: int, offset: int, stack: list[str]) -> TemplateError:
        char = self.body[offset]
        match = _LAST_TOKEN_RE.search(self.body[start + 2 : offset])
        before = match.group(1) if match else None
        message = f'unexpected "{char}"' + (f' after "{before}"' if before else "")
        if stack:
            message += f', expected "{stack[-1]}"'
        name = _first_name(self.body[start:offset]) if self.body[start + 1] == "{" else None
        return TemplateError(message, self.line_of(offset), name)


def _first_name(tag: str) -> str | None:
    """The first variable a `{{ … }}` tag uses; a best guess when the tag is broken."""
    try:
        return _name_in(_ENV.parse(tag))
    except jinja2.TemplateSyntaxError:
        pass
    text = _STRING_RE.sub('""', tag)
    for match in _IDENT_RE.finditer(text):
        before = text[: match.start()].rstrip()[-1:]
        if before not in ("|", ".") and match.group(0) not in _KEYWORDS:
            return match.group(0)
    return None


def _check_tree(tree: nodes.Template) -> None:
    """Refuse what the sandbox would only catch at send time, so the preview shows it."""
    for node in tree.find_all(tuple(_FORBIDDEN_NODES)):
        tag = _FORBIDDEN_NODES[type(node)]
        raise TemplateError(f'"{{% {tag} %}}" cannot be used in a message', node.lineno)
    for name in tree.find_all(nodes.Name):
        if name.name == "self":
            raise TemplateError('"self" cannot be used in a message', name.lineno)
    for attr in tree.find_all(nodes.Getattr):
        if attr.attr.startswith("_"):
            raise TemplateError(f'"{attr.attr}" cannot be used in a message', attr.lineno)
    for item in tree.find_all(nodes.Getitem):
        key = item.arg.value if isinstance(item.arg, nodes.Const) else None
        if isinstance(key, str) and key.startswith("_"):
            raise TemplateError(f'"{key}" cannot be used in a message', item.lineno)
    for filt in tree.find_all(nodes.Filter):
        if filt.name not in _ENV.filters:
            placeholder = _name_in(filt.node)
            on = f' on placeholder "{placeholder}"' if placeholder else ""
            raise TemplateError(f'unknown filter "{filt.name}"{on}', filt.lineno, placeholder)
    for test in tree.find_all(nodes.Test):
        if test.name not in _ENV.tests:
            raise TemplateError(f'unknown test "{test.name}"', test.lineno)


def _name_in(node: nodes.Node | None) -> str | None:
    """The first variable in an expression (the one a filter is applied to)."""
    if isinstance(node, nodes.Name):
        return node.name
    found = node.find(nodes.Name) if node is not None else None
    return found.name if found is not None else None


def _jinja_message(message: str) -> str:
    """Jinja's wording, for someone who has never heard of Jinja."""
    first = message.split("\n", 1)[0]
    unknown = re.match(r"Encountered unknown tag '(\w+)'", first)
    innermost = re.search(r"innermost block that needs to be closed is '(\w+)'", first)
    if unknown and innermost:
        return (
            f'unexpected "{{% {unknown[1]} %}}": close "{{% {innermost[1]} %}}" '
            f'with "{{% end{innermost[1]} %}}" first'
        )
    if unknown:
        return f'unknown tag "{{% {unknown[1]} %}}"'
    if innermost:
        return f'"{{% {innermost[1]} %}}" is never closed with "{{% end{innermost[1]} %}}"'
    text = first.replace("end of print statement", "}}").replace("end of statement block", "%}")
    text = _QUOTED_RE.sub(r'"\1"', text).rstrip(".")
    return text[:1].lower() + text[1:]


def _runtime_error(exc: Exception, body: str, template: jinja2.Template) -> TemplateError:
    line = _template_line(exc.__traceback__, template)
    translator = _Translator(body)
    translator.translate()  # compiled before, so it translates; run only to find the tags
    placeholder = translator.placeholder_on(line)
    if isinstance(exc, _Forbidden | RenderLimit):
        message = str(exc)
    elif isinstance(exc, RecursionError):
        message = budget.TOO_DEEP
    elif isinstance(exc, MemoryError | OverflowError):
        message = budget.TOO_LARGE_NUMBER if isinstance(exc, OverflowError) else budget.TOO_BIG
    elif isinstance(exc, SecurityError):
        message = N_("this is not allowed in a message")
    else:
        what = f'placeholder "{placeholder}"' if placeholder else "a placeholder"
        message = f"{what} could not be filled: " + _reason(exc)
    return TemplateError(message.rstrip("."), line, placeholder)


def _reason(exc: Exception) -> str:
    """Why a placeholder failed, in the author's words rather than Python's."""
    if isinstance(exc, ZeroDivisionError):
        return "it divides by zero"
    if isinstance(exc, TypeError):
        return "it mixes text and numbers, or gives a filter the wrong kind of value"
    if isinstance(exc, ValueError):
        return "a value is not in the form needed (a number written with letters, say)"
    text = str(exc)
    if isinstance(exc, jinja2.UndefinedError) and ("<" in text or len(text) > 200):
        # Jinja quotes the missing key as Python writes it: a method's address, say.
        return "it looks up an item that is not there"
    # Jinja's own (a missing field, a filter's complaint): already about the body.
    return _QUOTED_RE.sub(r'"\1"', text)


def _template_line(tb: TracebackType | None, template: jinja2.Template) -> int | None:
    """The body line of the innermost template frame.

    Read from the compiled code's own frames (Jinja maps their lines back to the body):
    rendering again the documented way to have Jinja rewrite the traceback would spend a
    second budget on a body that just went past its first.
    """
    line = None
    while tb is not None:
        if tb.tb_frame.f_globals.get("__jinja_template__") is template:
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line
