"""Cloud API templates: an approved template's variables, what fills them, and what one
recipient gets.

- Meta's template (synced into `CloudTemplate.components`, Meta's own shape) has variables
  `{{1}}`… or named `{{customer_name}}` in a text header and in the body, a `{{1}}` suffix in
  a URL button and a coupon in a copy-code button; a quick-reply button carries a payload
  that comes back when it is tapped.
- A mapping is `{slot: text}`, slot as `Variable.slot` ("body.1", "header.name",
  "button.2"). Each text is a small message of our own, compiled and rendered like a body
  (same sandbox, same budgets): a contact field is `{{ first_name }}`, a fixed text is itself.
- A quick-reply slot holds the payload as it is, not rendered: `OPT_OUT_PAYLOAD` marks the
  button whose tap opts the contact out (the inbound side acts on it).
- A campaign freezes the template and its mapping at launch (`snapshot`); the dispatcher
  renders each recipient's values from it (`render_params`) and hands the channel plain
  values (`call_from`). What the launch and the wizard check is in `cloud_launch`.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..channels.base import TemplateCall
from ..errors import ValidationError
from ..models import Channel, CloudTemplate, Media, Sender
from ..words import N_, said
from .media import media_kind
from .render_budget import TEXT_LIMIT
from .rendering import TemplateError, compile_body

OPT_OUT_PAYLOAD = "wabulk:opt-out"
APPROVED = "APPROVED"
# Meta's bounds once the values are filled in (a longer one is refused with 132005 or 100).
HEADER_TEXT_MAX = 60
BODY_MAX = 1024
URL_MAX = 2000
COPY_CODE_MAX = 15
# Our own: the payload comes back in a reply and is stored in `Inbound.payload`.
PAYLOAD_MAX = 500
# A customer who wrote within it can get a free-form message (DESIGN §8).
WINDOW = timedelta(hours=24)

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
# A mapped value that is exactly one contact field, as the editor writes it.
_FIELD = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}\}")
_LITERALS = frozenset({"true", "false", "none", "self"})  # words Jinja reads as its own
_MEDIA_FORMATS = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "document"}
# WhatsApp writes this on a copy-code button, whose template gives it no text.
_DEFAULT_LABELS = {"copy_code": "Copy offer code"}
_MEDIA_WORDS = {"image": N_("a photo"), "video": N_("a video"), "document": N_("a document")}


@dataclass(frozen=True)
class Variable:
    """One value a send of the template must carry.

    - `where`: "header", "body" or "button"; `key`: "1", "2"… or the parameter's name
      (for a button, its sub-type's variable: "1" for a URL suffix, "code", "payload").
    - `index`, `sub_type` ("url", "copy_code", "quick_reply") and `label` (the button's
      text) for buttons; `example`: Meta's sample value, shown as a hint.
    """

    where: str
    key: str
    example: str = ""
    index: int | None = None
    sub_type: str | None = None
    label: str = ""

    @property
    def slot(self) -> str:
        return f"button.{self.index}" if self.where == "button" else f"{self.where}.{self.key}"

    def describe(self) -> str:
        """The variable in a sentence, the way the editor shows it."""
        if self.where == "header":
            return f"the heading's {{{{{self.key}}}}}"
        if self.where == "body":
            return f"the message's {{{{{self.key}}}}}"
        what = {"url": "link ending", "copy_code": "code", "quick_reply": "answer"}
        return f"the {what.get(self.sub_type or '', 'value')} of the button “{self.label}”"

    @property
    def title(self) -> str:
        """`describe()` opening a sentence."""
        return _upper(self.describe())


def _kind(component: Any) -> str:
    return str(component.get("type", "")).upper() if isinstance(component, dict) else ""


def part(components: Sequence[Any], kind: str) -> dict[str, Any] | None:
    for component in components or ():
        if _kind(component) == kind:
            return component  # type: ignore[no-any-return]
    return None


def _names(text: Any) -> list[str]:
    """Distinct variables of Meta's text in order of first use."""
    seen: list[str] = []
    for name in _VARIABLE.findall(text if isinstance(text, str) else ""):
        if name not in seen:
            seen.append(name)
    return seen


def _ordered(names: list[str]) -> list[str]:
    # Positional values are sent as a list in the order of their numbers, not of their
    # place in the text.
    if names and all(name.isdigit() for name in names):
        return sorted(names, key=int)
    return names


def _examples(component: dict[str, Any], prefix: str) -> dict[str, str]:
    """Meta's sample values of a header or body, by variable."""
    example = component.get("example")
    if not isinstance(example, dict):
        return {}
    out: dict[str, str] = {}
    for item in example.get(f"{prefix}_named_params") or ():
        if isinstance(item, dict) and item.get("param_name"):
            out[str(item["param_name"])] = str(item.get("example", ""))
    positional = example.get(prefix)
    if isinstance(positional, list) and positional:
        row = positional[0] if isinstance(positional[0], list) else positional
        for number, value in enumerate(row, start=1):
            out.setdefault(str(number), str(value))
    return out


def buttons(components: Sequence[Any]) -> list[dict[str, Any]]:
    """The template's buttons as Meta lists them (index = position), each a dict."""
    found_part = part(components, "BUTTONS")
    found = found_part.get("buttons") if found_part else None
    return [b if isinstance(b, dict) else {} for b in found] if isinstance(found, list) else []


def variables(components: Sequence[Any]) -> list[Variable]:
    """Every value a send of this template needs: header, body, then buttons by index."""
    out: list[Variable] = []
    for where, kind in (("header", "HEADER"), ("body", "BODY")):
        found = part(components, kind)
        if found is None or (
            kind == "HEADER" and str(found.get("format", "TEXT")).upper() != "TEXT"
        ):
            continue
        samples = _examples(found, f"{where}_text")
        for name in _ordered(_names(found.get("text"))):
            out.append(Variable(where, name, samples.get(name, "")))
    for index, button in enumerate(buttons(components)):
        sub_type = str(button.get("type", "")).lower()
        label = str(button.get("text") or _DEFAULT_LABELS.get(sub_type, ""))
        example = button.get("example")
        sample = str(example[0] if isinstance(example, list) and example else example or "")
        if sub_type == "url" and _names(button.get("url")):
            prefix = _VARIABLE.split(str(button.get("url")))[0]
            suffix = sample[len(prefix) :] if sample.startswith(prefix) else sample
            out.append(Variable("button", "1", suffix, index, sub_type, label))
        elif sub_type == "copy_code":
            out.append(Variable("button", "code", sample, index, sub_type, label))
        elif sub_type == "quick_reply":
            out.append(Variable("button", "payload", "", index, sub_type, label))
    return out


def header_media_kind(components: Sequence[Any]) -> str | None:
    """The file the template starts with: "image", "video" or "document"; None if none."""
    header = part(components, "HEADER")
    return _MEDIA_FORMATS.get(str(header.get("format", "")).upper()) if header else None


def unsupported(components: Sequence[Any]) -> str | None:
    """Why wabulk cannot send this template (a sentence), or None."""
    header = part(components, "HEADER")
    fmt = str(header.get("format", "TEXT")).upper() if header else "TEXT"
    if fmt not in ("TEXT", *_MEDIA_FORMATS):
        return said(
            "Its heading is a %(format)s, which wabulk cannot fill in yet.", format=fmt.lower()
        )
    for button in buttons(components):
        kind = str(button.get("type", "")).upper()
        if kind not in ("QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE"):
            label = button.get("text", "")
            return said(
                "Its button “%(label)s” is a %(kind)s button, which wabulk cannot send yet.",
                label=label,
                kind=kind.lower(),
            )
    return None


def _fail(variable: Variable, sentence: str) -> ValidationError:
    return ValidationError(f"{variable.title}: {sentence}", field=f"cloud:{variable.slot}")


def _upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def validate_mapping(components: Sequence[Any], mapping: Any) -> dict[str, str]:
    """The mapping kept for this template: one text per variable, each compiled.

    - Raises ValidationError naming the variable (its `field` is "cloud:<slot>") when one is
      not mapped or its text is not a message wabulk can render.
    - A quick-reply button left blank gets its own text as payload (what WhatsApp reports
      for a tap anyway); slots the template does not have are dropped.
    """
    problem = unsupported(components)
    if problem:
        raise ValidationError(
            said("This WhatsApp template cannot be used. %(problem)s", problem=problem),
            field="cloud",
        )
    if not isinstance(mapping, Mapping):
        raise ValidationError(N_("The template's values must be given by variable."), field="cloud")
    clean: dict[str, str] = {}
    for variable in variables(components):
        raw = mapping.get(variable.slot)
        value = raw.strip() if isinstance(raw, str) else ""
        if variable.sub_type == "quick_reply":
            value = value or variable.label
            if len(value) > PAYLOAD_MAX:
                raise _fail(variable, f"an answer can have at most {PAYLOAD_MAX} characters.")
            clean[variable.slot] = value
            continue
        if not value:
            raise _fail(variable, "choose a contact field or write a fixed text for it.")
        try:
            compile_body(value)
        except TemplateError as exc:
            raise _fail(variable, str(exc)) from None
        clean[variable.slot] = value
    return clean


def check_media(components: Sequence[Any], media: Media | None) -> None:
    """A template that starts with a photo, video or document needs a file of that kind."""
    kind = header_media_kind(components)
    if kind is None:
        return
    if media is None:
        raise ValidationError(
            said(
                "This WhatsApp template starts with %(what)s: attach one.", what=_MEDIA_WORDS[kind]
            ),
            field="media",
        )
    if media_kind(media.mime_type) != kind:
        raise ValidationError(
            said(
                "This WhatsApp template starts with %(what)s, and %(name)s is not one.",
                what=_MEDIA_WORDS[kind],
                name=media.original_name,
            ),
            field="media",
        )


def snapshot(
    row: CloudTemplate, mapping: Mapping[str, str], media_id: int | None
) -> dict[str, Any]:
    """What a campaign freezes at launch (JSON-safe): later syncs and edits never change it.

    `media_id` is our own file's id; the channel sends it by the id it was uploaded as to
    the sender's account.
    """
    clean = validate_mapping(row.components, mapping)
    kind = header_media_kind(row.components)
    if kind is not None and media_id is None:
        raise ValidationError(
            said(
                "The WhatsApp template %(name)s starts with %(what)s: attach one.",
                name=row.name,
                what=_MEDIA_WORDS[kind],
            ),
            field="media",
        )
    return {
        "name": row.name,
        "language": row.language,
        "category": str(row.category or "").upper(),
        "parameter_format": str(row.parameter_format or "positional").lower(),
        "components": copy.deepcopy(list(row.components or [])),
        "mapping": clean,
        "header_media_kind": kind,
        "media_id": media_id if kind is not None else None,
    }


def _quick(source: str, ctx: Mapping[str, Any]) -> str | None:
    """The value without rendering when rendering could only give the same: a text with no
    braces at all, or one contact field holding text. None: render it.

    Most mapped values are one of the two, and the dispatcher fills every variable of every
    message (a fifth of a millisecond each through the renderer).
    """
    if "{" not in source and "}" not in source:
        return source
    field = _FIELD.fullmatch(source)
    if field is None or field.group(1).lower() in _LITERALS:
        return None
    value = ctx.get(field.group(1))
    if value is None:
        return ""
    # Anything else (numbers, an over-long text) goes the renderer's way and gets its checks.
    return value if isinstance(value, str) and len(value) <= TEXT_LIMIT else None


def _value(variable: Variable, source: str, ctx: Mapping[str, Any], seed: int) -> str:
    text = _quick(source, ctx)
    if text is None:
        try:
            text = compile_body(source).render(ctx, seed, limit=TEXT_LIMIT)
        except TemplateError as exc:
            raise TemplateError(f"{variable.title}: {exc}", placeholder=exc.placeholder) from None
    # Meta refuses a parameter with a line break, a tab or more than four spaces in a row.
    text = " ".join(text.split())
    if not text:
        raise TemplateError(
            f"{variable.title} comes out empty for this contact (it is {source}); "
            'WhatsApp refuses an empty value. Give it a default, as in {{ city | default("us") }}.'
        )
    if variable.sub_type == "copy_code" and len(text) > COPY_CODE_MAX:
        raise TemplateError(
            f"{variable.title} comes to {len(text)} characters; WhatsApp allows {COPY_CODE_MAX}."
        )
    return text


def _fill(text: Any, values: Mapping[str, str]) -> str:
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), str(text or ""))


def _check_length(what: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise TemplateError(
            f"{what} comes to {len(text):,} characters once filled in; WhatsApp allows {limit:,}."
        )


@dataclass(frozen=True)
class Rendered:
    """A template filled in for one recipient: the parts as read, and the values to send.

    `shown_buttons`: every button as WhatsApp draws it, {"kind", "text"} plus its "url"
    (filled in), "phone", "code" or "payload" (with "opt_out" when tapping it opts out).
    """

    heading: str
    message: str
    footer: str
    header: list[str] | None
    body: list[list[str]]
    buttons: list[list[Any]]
    shown_buttons: list[dict[str, Any]]

    @property
    def text(self) -> str:
        parts = (self.heading.strip(), self.message.strip(), self.footer.strip())
        return "\n\n".join(part for part in parts if part)

    @property
    def params(self) -> dict[str, Any]:
        return {"header": self.header, "body": self.body, "buttons": self.buttons}


@dataclass(frozen=True)
class _Plan:
    variables: tuple[Variable, ...]
    heading: str | None  # Meta's text of a text heading
    body: str
    footer: str
    buttons: tuple[dict[str, Any], ...]


_PLANS: dict[int, tuple[Any, _Plan]] = {}
_PLANS_LOCK = threading.Lock()


def _plan(components: Sequence[Any]) -> _Plan:
    """What `render` reads of the components, worked out once per components object.

    Keyed by identity, and the cached entry holds the object, so its id cannot be reused
    by another while cached: the dispatcher renders thousands of messages from one
    snapshot, and reading Meta's components again for each was a third of the time.
    """
    key = id(components)
    with _PLANS_LOCK:
        hit = _PLANS.get(key)
    if hit is not None and hit[0] is components:
        return hit[1]
    head = part(components, "HEADER")
    is_text = head is not None and str(head.get("format", "TEXT")).upper() == "TEXT"
    plan = _Plan(
        tuple(variables(components)),
        str(head.get("text") or "") if head is not None and is_text else None,
        str((part(components, "BODY") or {}).get("text") or ""),
        str((part(components, "FOOTER") or {}).get("text") or ""),
        tuple(buttons(components)),
    )
    with _PLANS_LOCK:
        if len(_PLANS) >= 64:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = (components, plan)
    return plan


def render(
    components: Sequence[Any], mapping: Mapping[str, Any], ctx: Mapping[str, Any], seed: int
) -> Rendered:
    """Fill the template for one recipient; `seed` (the message id) fixes spintax choices.

    Raises TemplateError naming the variable when a value cannot be written, comes out
    empty, or makes a part longer than WhatsApp allows.
    """
    values: dict[str, dict[str, str]] = {"header": {}, "body": {}}
    header: list[str] | None = None
    body: list[list[str]] = []
    sent: dict[int, list[Any]] = {}
    plan = _plan(components)
    for variable in plan.variables:
        source = mapping.get(variable.slot)
        if not isinstance(source, str) or (not source and variable.sub_type != "quick_reply"):
            raise TemplateError(
                f"{variable.title} has no value; choose one in the template editor."
            )
        index = variable.index or 0
        if variable.sub_type == "quick_reply":
            sent[index] = [index, variable.sub_type, source or variable.label]
            continue
        value = _value(variable, source, ctx, seed)
        if variable.where == "button":
            sent[index] = [index, variable.sub_type, value]
            continue
        values[variable.where][variable.key] = value
        if variable.where == "header":
            header = [variable.key, value]
        else:
            body.append([variable.key, value])
    heading = ""
    if plan.heading is not None:
        heading = _fill(plan.heading, values["header"])
        _check_length("The heading", heading, HEADER_TEXT_MAX)
    message = _fill(plan.body, values["body"])
    _check_length("The message", message, BODY_MAX)
    shown = []
    for index, button in enumerate(plan.buttons):
        kind = str(button.get("type", "")).lower()
        label = str(button.get("text") or _DEFAULT_LABELS.get(kind, ""))
        item: dict[str, Any] = {"kind": kind, "text": label}
        given = sent[index][2] if index in sent else None
        if kind == "url":
            item["url"] = _fill(button.get("url"), {"1": given} if given is not None else {})
            _check_length(f"The link of the button “{item['text']}”", item["url"], URL_MAX)
        elif kind == "phone_number":
            item["phone"] = str(button.get("phone_number", ""))
        elif kind == "copy_code":
            item["code"] = given or ""
        elif kind == "quick_reply":
            item["payload"] = given or item["text"]
            item["opt_out"] = given == OPT_OUT_PAYLOAD
        shown.append(item)
    return Rendered(heading, message, plan.footer, header, body, list(sent.values()), shown)


def render_params(
    snapshot: Mapping[str, Any], ctx: Mapping[str, Any], seed: int
) -> tuple[str, dict[str, Any]]:
    """(the text as the recipient reads it, the values to send) for one recipient.

    - The text is the heading, the message and the footer filled in, separated by blank
      lines: stored as the message's body, and what a WhatsApp Web sender of the same
      campaign sends.
    - The values (JSON-safe, kept in `Message.template_params` so a retry sends the same
      ones): {"header": [key, value] or None, "body": [[key, value], …], "buttons":
      [[index, sub_type, value], …]}.
    - Raises TemplateError naming the variable (see `render`).
    """
    filled = render(snapshot.get("components") or [], snapshot.get("mapping") or {}, ctx, seed)
    return filled.text, filled.params


def call_from(snapshot: Mapping[str, Any], params: Mapping[str, Any]) -> TemplateCall:
    """The channel's plain values for one recipient (named templates send the names)."""
    named = str(snapshot.get("parameter_format", "")).lower() == "named"

    def pair(item: Sequence[Any]) -> tuple[str | None, str]:
        return (str(item[0]) if named else None, str(item[1]))

    header = params.get("header")
    return TemplateCall(
        name=str(snapshot["name"]),
        language=str(snapshot["language"]),
        body=tuple(pair(item) for item in params.get("body") or ()),
        header_text=pair(header) if header else None,
        header_media_kind=snapshot.get("header_media_kind"),
        buttons=tuple(
            (int(index), str(sub_type), str(value))
            for index, sub_type, value in params.get("buttons") or ()
        ),
        marketing=str(snapshot.get("category", "")).upper() == "MARKETING",
    )


# --- which senders need a template (the launch's checks: cloud_launch.py) ------------------


def cloud_senders(senders: Iterable[Sender]) -> list[Sender]:
    return [s for s in senders if s.channel == Channel.CLOUD_API]


def needs_template(senders: Iterable[Sender]) -> bool:
    """Whether a campaign from these senders can only open conversations with a template."""
    return bool(cloud_senders(senders))
