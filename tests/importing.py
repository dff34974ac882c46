"""Driving an import the way the web page and worker do: upload, confirm, claim, run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from wabulk.contacts import importer, lists, tallies
from wabulk.db import Database
from wabulk.models import Contact, ContactList, Import, ImportKind, list_members


def upload(db: Database, instance: Path, path: Path, **kwargs: Any) -> int:
    """save_upload + configure with the offered mapping (or `mapping`), taking the first or
    the `duplicates` row of a repeated phone; the import id."""
    region = kwargs.pop("region", "IN")
    kind = kwargs.pop("kind", ImportKind.CONTACTS)
    mapping = kwargs.pop("mapping", None)
    duplicates = kwargs.pop("duplicates", None)
    with db.session() as session, path.open("rb") as stream:
        imp = importer.save_upload(session, None, instance, stream, path.name, kind=kind)
        chosen = dict(mapping or importer.preview(imp, instance, region).mapping)
        if duplicates:
            chosen["duplicates"] = duplicates
        importer.configure(session, None, imp, instance, chosen, region, **kwargs)
        return imp.id


def import_file(
    db: Database,
    instance: Path,
    path: Path,
    *,
    owner: str = "worker-1",
    chunk_rows: int = 5000,
    progress: Callable[[Import], None] | None = None,
    parallel_min_rows: int = importer.PARALLEL_MIN_ROWS,
    own_rows: int | None = None,
    **kwargs: Any,
) -> Import:
    """Upload, confirm and run a sheet to the end; the finished Import."""
    import_id = upload(db, instance, path, **kwargs)
    with db.session() as session:
        assert importer.claim_next(session, owner) == import_id
    return importer.run(
        db,
        import_id,
        instance,
        owner,
        progress=progress,
        chunk_rows=chunk_rows,
        parallel_min_rows=parallel_min_rows,
        own_rows=own_rows,
    )


def contacts(db: Database) -> dict[str, dict[str, Any]]:
    """Every contact by phone, with what an import may change."""
    with db.session() as session:
        return {
            c.phone: {
                "name": c.name,
                "attributes": c.attributes,
                "country": c.country,
                "timezone": c.timezone,
                "opted_out": c.opted_out_at is not None,
                "opt_out_reason": c.opt_out_reason,
            }
            for c in session.scalars(select(Contact))
        }


def members(db: Database, list_name: str) -> list[str]:
    """Phones in a list, sorted (each membership once per row in the table)."""
    with db.session() as session:
        return sorted(
            session.scalars(
                select(Contact.phone)
                .join(list_members, list_members.c.contact_id == Contact.id)
                .join(ContactList, ContactList.id == list_members.c.list_id)
                .where(ContactList.name == list_name)
            )
        )


def counts(imp: Import) -> dict[str, int]:
    return {
        "rows_read": imp.rows_read,
        "created": imp.created_count,
        "updated": imp.updated_count,
        "unchanged": imp.unchanged_count,
        "duplicate": imp.duplicate_count,
        "invalid": imp.invalid_count,
        "opted_out": imp.opted_out_count,
    }


def issues(db: Database, import_id: int) -> list[tuple[int, bool, str]]:
    with db.session() as session:
        return [
            (i.row_number, i.rejected, i.reason)
            for i in session.scalars(importer.issues_of(import_id))
        ]


def _real(db: Database) -> tuple[tuple[int, int], dict[str, int]]:
    """What a full count of the tables says (what the kept counts must equal)."""
    with db.session() as session:
        everyone, opted_out = session.execute(
            select(func.count(), func.count(Contact.opted_out_at)).select_from(Contact)
        ).one()
        members = session.execute(
            select(ContactList.name, func.count(list_members.c.contact_id))
            .outerjoin(list_members, list_members.c.list_id == ContactList.id)
            .group_by(ContactList.name)
        ).all()
    return (everyone, opted_out), {name: n for name, n in members}


def _kept(db: Database) -> tuple[tuple[int, int], dict[str, int]]:
    with db.session() as session:
        rows = session.execute(lists.lists_with_counts()).all()
        return tallies.totals(session), {found.name: n for found, n in rows}


def exact(db: Database) -> tuple[tuple[int, int], dict[str, int]]:
    """The kept counts, after checking them against a real count."""
    kept = _kept(db)
    assert kept == _real(db)
    return kept
