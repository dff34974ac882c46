"""What the import report says about a phone written twice in one sheet.

Every repeat gets a line naming the row it repeats and the values that were not taken: with
the first row winning (the default), the repeat's own values that differ from what the
contact keeps; with the last row winning, the earlier values it replaced. Built only for
the repeats, after the chunk's lookup, so a sheet without any costs nothing here.
"""

from __future__ import annotations

import json
from typing import Any

from ..words import N_, said
from .import_read import Issue, Row

# (row number, the row as read, for a repeat within the chunk: the row as it stood before
# (the phone's first row, merged with any repeats taken since); None when the first row
# was in an earlier chunk, whose values the contact now holds).
Repeat = tuple[int, Row, Row | None]

_VALUE_CHARS = 60  # of each value quoted in a reason (which holds 500 in all)


class Labels:
    """The sheet's own column names for a row's values, to quote them as the owner sees them."""

    def __init__(self, mapping: dict[str, Any]) -> None:
        self.columns: list[str] = list(mapping.get("columns") or [])
        names: list[str] = list(mapping.get("name") or [])
        self.name = names[0] if len(names) == 1 else "Name"
        self.by_key = {key: column for column, key in (mapping.get("attributes") or {}).items()}
        index = {column: i for i, column in enumerate(self.columns)}
        self._phone = index.get(mapping.get("phone") or "")
        self._name = index.get(names[0]) if names else None
        self._keys = {key: index[c] for key, c in self.by_key.items() if c in index}

    def in_sheet_order(self, values: dict[str, Any]) -> list[tuple[str, Any]]:
        """A row's attributes in the order of their columns (a mapping kept in PostgreSQL's
        JSONB comes back with its keys in another order)."""
        end = len(self.columns)
        return sorted(values.items(), key=lambda kv: self._keys.get(kv[0], end))

    def cells(self, row: Row) -> str:
        """The row's values under their columns (JSON), as the report lists a row's cells."""
        cells = [""] * len(self.columns)
        if self._phone is not None:
            cells[self._phone] = row[0]
        if self._name is not None:
            cells[self._name] = row[1] or ""
        for key, value in json.loads(row[2]).items():
            if (i := self._keys.get(key)) is not None:
                cells[i] = value
        return json.dumps(cells)


def _quoted(label: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) > _VALUE_CHARS:
        text = text[: _VALUE_CHARS - 1] + "…"
    return f"{label} '{text}'"


def _repeat_sentence(
    number: int, first: int | str, phone: str, taken: bool, lost: list[str]
) -> str:
    """One whole sentence per case (the pages show it in the reader's language)."""
    values = {"row": number, "first": first, "phone": phone, "values": ", ".join(lost)}
    if taken and lost:
        msgid = N_(
            "row %(row)s repeats row %(first)s (%(phone)s); taken, as the last row wins; "
            "replaced: %(values)s"
        )
    elif taken:
        msgid = N_("row %(row)s repeats row %(first)s (%(phone)s); taken, as the last row wins")
    elif lost:
        msgid = N_("row %(row)s repeats row %(first)s (%(phone)s); not taken: %(values)s")
    else:
        msgid = N_(
            "row %(row)s repeats row %(first)s (%(phone)s); not taken (nothing in it differs)"
        )
    return said(msgid, **values)


def issues(
    repeats: list[Repeat],
    first_rows: dict[str, int],
    existing: dict[str, Any],
    keep_last: bool,
    labels: Labels,
) -> list[Issue]:
    """One report line per repeat; `existing` holds the contacts as they were before the
    chunk (name, attributes), `first_rows` each phone's first row in the sheet."""
    out: list[Issue] = []
    for number, row, earlier in repeats:
        phone = row[0]
        old = existing.get(phone)
        old_name = old.name if old is not None else None
        old_attrs = (old.attributes or {}) if old is not None else {}
        values = labels.in_sheet_order(json.loads(row[2]))
        if keep_last:
            # What this row replaced: the values before it that it holds differently.
            if earlier is None:
                base_name, base = old_name, old_attrs
            else:
                base_name, base = earlier[1], json.loads(earlier[2])
            lost = []
            if row[1] and base_name and row[1] != base_name:
                lost.append(_quoted(labels.name, base_name))
            lost += [
                _quoted(labels.by_key.get(k, k), base[k])
                for k, v in values
                if k in base and base[k] != v
            ]
            taken = True
        else:
            # What the contact keeps: its first row over what it held before the import.
            if earlier is None:
                kept_name, kept = old_name, old_attrs
            else:
                kept_name, kept = earlier[1] or old_name, {**old_attrs, **json.loads(earlier[2])}
            lost = [_quoted(labels.name, row[1])] if row[1] and row[1] != kept_name else []
            lost += [_quoted(labels.by_key.get(k, k), v) for k, v in values if kept.get(k) != v]
            taken = False
        reason = _repeat_sentence(number, first_rows.get(phone, "?"), phone, taken, lost)
        out.append((number, not keep_last, reason[:500], labels.cells(row)))
    return out
