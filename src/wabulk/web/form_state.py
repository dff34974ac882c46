"""What a hand-written form needs between requests: the user's input and errors by field.

- The pages with dynamic parts (template editor, campaign wizard, sender form) post plain
  HTML forms; on an error they are rendered again from `values`, so nothing typed is lost.
- A service's ValidationError names its field; `fail` puts the sentence next to that box,
  or flashes it when the field is not on the form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import flash, request
from sqlalchemy.orm import Session

from ..campaigns.media import MB, save_media
from ..errors import Conflict, DomainError, ValidationError
from ..words import said
from .helpers import get_settings, id_value, id_values


@dataclass
class FormState:
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: Any = "") -> Any:
        value = self.values.get(name)
        return default if value is None else value

    def fail(
        self,
        exc: DomainError,
        known: set[str] | frozenset[str],
        rename: Mapping[str, str] | None = None,
        conflict: str | None = None,
    ) -> None:
        """Show `exc` next to its box when the form has one (`known`), else flash it.

        - `rename` maps a service's field name to the form's (the service says "lists",
          the form's box is "list_ids").
        - `conflict` names the box a Conflict belongs to (a duplicate name), since a
          Conflict carries no field.
        """
        name = getattr(exc, "field", None)
        if isinstance(exc, Conflict) and conflict:
            name = conflict
        if name is not None and rename:
            name = rename.get(name, name)
        if name is not None and name in known:
            self.errors.setdefault(name, str(exc))
        else:
            flash(str(exc), "danger")


def optional_int(name: str, label: str, *, form: Mapping[str, str] | None = None) -> int | None:
    """A whole number from the form, None when blank; a ValidationError naming `name` if not."""
    raw = (form if form is not None else request.form).get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationError(
            said("%(what)s must be a whole number.", what=label), field=name
        ) from None


def ids(name: str) -> list[int]:
    """Checked ids of a multi-choice field; anything that is not a number is ignored."""
    return id_values(request.form.getlist(name))


def attachment(session: Session, state: FormState) -> tuple[bool, int | None]:
    """The attachment a form ends with: (ok, media id).

    - A new upload is stored and committed at once, so if the rest of the form is refused
      the page shows it as attached and the user does not upload it again.
    - Otherwise the one already attached is kept (hidden `media_id`) unless "remove" is ticked.
    """
    media_id = request.form.get("media_id", type=id_value)
    if request.form.get("remove_media"):
        media_id = None
    upload = request.files.get("media")
    if upload is not None and upload.filename:
        settings = get_settings()
        try:
            media = save_media(
                session,
                upload.stream,
                upload.filename,
                settings.instance_path,
                settings.max_upload_mb * MB,
            )
        except ValidationError as exc:
            session.rollback()
            state.errors["media"] = str(exc)
            state.values["media_id"] = media_id
            return False, media_id
        session.commit()
        media_id = media.id
    state.values["media_id"] = media_id
    return True, media_id
