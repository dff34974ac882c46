"""Which column is the phone, which is the name, and what each other column is called.

A mapping is plain JSON kept on the Import:
`{"phone": "Mobile", "name": ["First name", "Last name"], "attributes": {"City": "city"},
"duplicates": "first"}`. Columns left out of the first three are skipped; `duplicates` says
which row of a phone written twice in the sheet is taken ("first", the default, or "last").
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from ..errors import ValidationError
from ..words import said
from .phones import clean_cell, normalise

_PHONE_EXACT = {
    "phone",
    "phones",
    "mobile",
    "mobiles",
    "whatsapp",
    "whatsapp no",
    "whatsapp number",
    "contact",
    "contact no",
    "contact number",
    "contact num",
    "number",
    "numero",
    "no",
    "cell",
    "cellphone",
    "cell phone",
    "cell no",
    "tel",
    "telephone",
    "telefono",
    "telefone",
    "celular",
    "movil",
    "handy",
    "mob",
    "mob no",
    "ph",
    "ph no",
    "phone no",
    "phone number",
    "mobile no",
    "mobile number",
    "msisdn",
    "wa",
    "wa number",
    "whats app",
    "numero de telefono",
    "numero de celular",
    "telefon",
    "mobilnummer",
    "portable",
    "rakam",
    "nomor",
    "nomor hp",
    "hp",
}
_PHONE_WORDS = ("whatsapp", "mobile", "phone", "cell", "celular", "telefon", "movil", "msisdn")
_NAME_EXACT = {
    "name",
    "full name",
    "fullname",
    "customer",
    "customer name",
    "client",
    "client name",
    "contact name",
    "nombre",
    "nome",
    "naam",
    "nom",
    "name of customer",
    "party name",
    "nama",
    "isim",
    "ad soyad",
}
_FIRST = {"first name", "firstname", "given name", "first", "nombre de pila", "prenom"}
_LAST = {"last name", "lastname", "surname", "family name", "last", "apellido", "nom de famille"}
_RESERVED = {"name", "phone", "contact", "first_name", "country", "timezone"}
KEEP_FIRST, KEEP_LAST = "first", "last"
DUPLICATES = (KEEP_FIRST, KEEP_LAST)


def plain(header: str) -> str:
    """Lower case, no accents or punctuation: 'Número de Teléfono' → 'numero de telefono'."""
    text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def attribute_key(header: str, taken: set[str]) -> str:
    """A placeholder-safe name: 'Due Amount' → 'due_amount' (usable as {{ due_amount }})."""
    key = plain(header).replace(" ", "_") or "column"
    if key[0].isdigit():
        key = f"col_{key}"
    base, n = key, 2
    while key in taken or key in _RESERVED:
        key = f"{base}_{n}"
        n += 1
    taken.add(key)
    return key


def _phone_share(values: list[str], region: str) -> float:
    filled = [v for v in values if v]
    if not filled:
        return 0.0
    return sum(normalise(clean_cell(v), region).ok for v in filled) / len(filled)


def guess(header: list[str], sample: list[list[str]], region: str) -> dict[str, Any]:
    """The likeliest mapping for a header and its first rows."""
    names = [plain(h) for h in header]
    phone = None
    for i, n in enumerate(names):
        if n in _PHONE_EXACT:
            phone = i
            break
    if phone is None:
        for word in _PHONE_WORDS:
            phone = next((i for i, n in enumerate(names) if word in n), None)
            if phone is not None:
                break
    if phone is None:
        # No telling header: pick the column whose values mostly are phone numbers.
        shares = [
            (_phone_share([r[i] for r in sample if i < len(r)], region), i)
            for i in range(len(header))
        ]
        best = max(shares, default=(0.0, -1))
        phone = best[1] if best[0] >= 0.5 else None

    name_cols: list[str] = []
    exact = next((i for i, n in enumerate(names) if n in _NAME_EXACT and i != phone), None)
    if exact is not None:
        name_cols = [header[exact]]
    else:
        first = next((i for i, n in enumerate(names) if n in _FIRST), None)
        last = next((i for i, n in enumerate(names) if n in _LAST), None)
        name_cols = [header[i] for i in (first, last) if i is not None]

    taken: set[str] = set()
    attributes = {
        h: attribute_key(h, taken)
        for i, h in enumerate(header)
        if i != phone and h not in name_cols
    }
    return {
        "phone": header[phone] if phone is not None else None,
        "name": name_cols,
        "attributes": attributes,
    }


def _no_column(column: str) -> str:
    return said('There is no column "%(column)s" in this sheet.', column=column)


def validate(mapping: dict[str, Any], header: list[str]) -> dict[str, Any]:
    """Check a mapping against the sheet's header; a ValidationError says what is wrong."""
    phone = mapping.get("phone")
    if not phone:
        raise ValidationError(
            said(
                "No column looks like phone numbers. Columns found: %(columns)s. Choose the "
                "phone column.",
                columns=", ".join(f'"{h}"' for h in header),
            ),
            field="phone",
        )
    if phone not in header:
        raise ValidationError(_no_column(phone), field="phone")
    name = mapping.get("name") or []
    if isinstance(name, str):
        name = [name]
    for col in name:
        if col not in header:
            raise ValidationError(_no_column(col), field="name")
    attributes = {}
    taken: set[str] = set()
    for col, key in (mapping.get("attributes") or {}).items():
        if col not in header:
            raise ValidationError(_no_column(col), field="attributes")
        if col == phone or col in name:
            continue
        attributes[col] = attribute_key(key or col, taken)
    duplicates = mapping.get("duplicates") or KEEP_FIRST
    if duplicates not in DUPLICATES:
        raise ValidationError(
            said(
                "%(choice)s is not a choice for a number written twice in the sheet: keep the "
                "first row or the last row.",
                choice=repr(str(duplicates)[:20]),
            ),
            field="duplicates",
        )
    return {
        "phone": phone,
        "name": list(name),
        "attributes": attributes,
        "duplicates": duplicates,
    }


def apply_overrides(
    pairs: tuple[str, ...], header: list[str], mapping: dict[str, Any]
) -> dict[str, Any]:
    """`--mapping phone=Mobile --mapping name=Customer` on top of a guessed mapping."""
    mapping = {**mapping, "attributes": dict(mapping["attributes"])}
    for pair in pairs:
        role, sep, column = pair.partition("=")
        role, column = role.strip().lower(), column.strip()
        if not sep or role not in {"phone", "name", "skip"}:
            raise ValidationError(
                f"--mapping {pair!r}: use phone=COLUMN, name=COLUMN or skip=COLUMN."
            )
        if column not in header:
            raise ValidationError(
                f'--mapping {pair!r}: there is no column "{column}"; '
                "columns are " + ", ".join(f'"{h}"' for h in header) + "."
            )
        if role == "phone":
            mapping["phone"] = column
        elif role == "name":
            mapping["name"] = [column]
        mapping["attributes"].pop(column, None)
    return mapping
