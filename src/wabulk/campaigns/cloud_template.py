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
  values (`call_from`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from ..channels.base import TemplateCall
from ..errors import ValidationError
from ..models import Channel, CloudTemplate, Inbound, Media, Sender, Template
from . import audience
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
WINDOW = timedelta(hours=24)

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_MEDIA_FORMATS = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "document"}
# WhatsApp writes this on a copy-code button, whose template gives it no text.
_DEFAULT_LABELS = {"copy_code": "Copy offer code"}
_MEDIA_WORDS = {"image": "a photo", "video": "a video", "document": "a document"}


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
        return f"Its heading is a {fmt.lower()}, which wabulk cannot fill in yet."
    for button in buttons(components):
        kind = str(button.get("type", "")).upper()
        if kind not in ("QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE"):
            label = button.get("text", "")
            return f"Its button “{label}” is a {kind.lower()} button, which wabulk cannot send yet."
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
        raise ValidationError(f"This WhatsApp template cannot be used. {problem}", field="cloud")
    if not isinstance(mapping, Mapping):
        raise ValidationError("The template's values must be given by variable.", field="cloud")
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
            f"This WhatsApp template starts with {_MEDIA_WORDS[kind]}: attach one.", field="media"
        )
    if media_kind(media.mime_type) != kind:
        raise ValidationError(
            f"This WhatsApp template starts with {_MEDIA_WORDS[kind]}, and "
            f"{media.original_name} is not one.",
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
            f"The WhatsApp template {row.name} starts with {_MEDIA_WORDS[kind]}: attach one.",
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


def _value(variable: Variable, source: str, ctx: Mapping[str, Any], seed: int) -> str:
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
    for variable in variables(components):
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
    head = part(components, "HEADER")
    heading = ""
    if head is not None and str(head.get("format", "TEXT")).upper() == "TEXT":
        heading = _fill(head.get("text"), values["header"])
        _check_length("The heading", heading, HEADER_TEXT_MAX)
    message = _fill((part(components, "BODY") or {}).get("text"), values["body"])
    _check_length("The message", message, BODY_MAX)
    shown = []
    for index, button in enumerate(buttons(components)):
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
    footer = str((part(components, "FOOTER") or {}).get("text") or "")
    return Rendered(heading, message, footer, header, body, list(sent.values()), shown)


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


# --- the campaign's side: which senders need a template, and what the wizard says --------


def cloud_senders(senders: Iterable[Sender]) -> list[Sender]:
    return [s for s in senders if s.channel == Channel.CLOUD_API]


def needs_template(senders: Iterable[Sender]) -> bool:
    """Whether a campaign from these senders can only open conversations with a template."""
    return bool(cloud_senders(senders))


def synced(session: Session, sender_id: int, name: str, language: str) -> CloudTemplate | None:
    return session.scalar(
        select(CloudTemplate).where(
            CloudTemplate.sender_id == sender_id,
            CloudTemplate.name == name,
            CloudTemplate.language == language,
        )
    )


def launch_snapshot(
    session: Session, template: Template | None, senders: Sequence[Sender], media_id: int | None
) -> dict[str, Any] | None:
    """The Cloud API snapshot of a campaign about to launch, or None when it needs none.

    - None when no sender is a Cloud API sender, or when the campaign is a one-off message
      (free-form: only contacts whose 24-hour window is open get it).
    - Raises ValidationError saying what to do when the template is not linked to a
      WhatsApp template, or that template is not approved (any more) for one of the senders.
    """
    cloud = cloud_senders(senders)
    if not cloud or template is None:
        return None
    if not template.cloud_template_name or not template.cloud_language:
        raise ValidationError(
            f"{cloud[0].name} sends through the WhatsApp Cloud API, which starts conversations "
            f"only with a template approved by Meta; the template {template.name!r} is not "
            "linked to one. Choose one in the template editor.",
            field="template_id",
        )
    rows = []
    for sender in cloud:
        row = synced(session, sender.id, template.cloud_template_name, template.cloud_language)
        if row is None:
            raise ValidationError(
                f"The WhatsApp template {template.cloud_template_name} "
                f"({template.cloud_language}) is not among {sender.name}'s templates; sync "
                "the sender's templates, or choose another.",
                field="template_id",
            )
        if row.status.upper() != APPROVED:
            raise ValidationError(
                f"The WhatsApp template {row.name} ({row.language}) is "
                f"{row.status.lower().replace('_', ' ')} for {sender.name}, not approved; "
                "Meta sends only approved templates.",
                field="template_id",
            )
        rows.append(row)
    mapping = template.cloud_parameters if isinstance(template.cloud_parameters, dict) else {}
    for row in rows:  # senders of different accounts may hold different versions
        validate_mapping(row.components, mapping)
    check_media(rows[0].components, session.get(Media, media_id) if media_id else None)
    return snapshot(rows[0], mapping, media_id)


def window_open_count(
    session: Session, list_ids: Sequence[int], sender_ids: Sequence[int], now: datetime
) -> int:
    """Recipients of the lists who wrote to one of the senders within the last 24 hours."""
    if not list_ids or not sender_ids:
        return 0
    people = audience.audience(list_ids).subquery()
    recent = exists().where(
        Inbound.contact_id == people.c.id,
        Inbound.sender_id.in_(list(sender_ids)),
        Inbound.received_at >= now - WINDOW,
    )
    return session.scalar(select(func.count()).select_from(people).where(recent)) or 0


@dataclass(frozen=True)
class Note:
    """A sentence for the wizard; `blocking` when the campaign cannot launch as it is."""

    text: str
    blocking: bool = False


def wizard_notes(
    session: Session,
    template: Template | None,
    senders: Sequence[Sender],
    list_ids: Sequence[int],
    now: datetime,
    media_id: int | None = None,
) -> list[Note]:
    """What the wizard says about Cloud API senders for this template and audience.

    `media_id`: the campaign's own attachment, which replaces the template's.
    """
    cloud = cloud_senders(senders)
    if not cloud:
        return []
    if template is None:
        total = audience.count(session, list_ids)
        n = window_open_count(session, list_ids, [s.id for s in cloud], now)
        return [
            Note(
                "Only customers who wrote to you in the last 24 hours can get a free-form "
                f"message; {n:,} of {total:,} in this audience. The others are skipped; "
                "choose a template linked to an approved WhatsApp template to reach everyone."
            )
        ]
    try:
        launch_snapshot(session, template, senders, media_id or template.media_id)
    except ValidationError as exc:
        return [Note(str(exc), blocking=True)]
    return [
        Note(
            f"{', '.join(s.name for s in cloud)} will send the approved WhatsApp template "
            f"{template.cloud_template_name} ({template.cloud_language})."
        )
    ]
