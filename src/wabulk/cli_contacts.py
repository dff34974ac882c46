"""`wabulk contacts …`: import a sheet, export contacts, recount. Same services as the pages."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli_common import Context, pass_ctx, require_migrated


@click.group()
def contacts() -> None:
    """Import customer sheets, export contacts, repair their counts."""


@contacts.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--list", "list_name", help="Add the contacts to this list (created if new).")
@click.option(
    "--country",
    help="Country for numbers without a country code, e.g. IN "
    "(default: the one set under Settings).",
)
@click.option(
    "--mapping",
    "mapping_pairs",
    multiple=True,
    metavar="ROLE=COLUMN",
    help="Override the guessed columns: phone=Mobile, name=Customer, skip=Notes. Repeatable.",
)
@click.option(
    "--duplicates",
    type=click.Choice(["first", "last"]),
    default=None,
    help="A number written twice in the sheet: keep its first row (the default, or as chosen "
    "last time for a sheet with the same columns) or its last. The report lists every repeat.",
)
@click.option(
    "--opt-outs",
    is_flag=True,
    help="The sheet lists people who asked not to be "
    "messaged: mark them opted out instead of importing them as contacts.",
)
@click.option(
    "--reason",
    default="Opt-out list import",
    show_default=True,
    help="With --opt-outs: the reason recorded.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the rejected-rows report (default: next to FILE).",
)
@pass_ctx
def import_cmd(
    ctx: Context,
    file: Path,
    list_name: str | None,
    country: str | None,
    mapping_pairs: tuple[str, ...],
    duplicates: str | None,
    opt_outs: bool,
    reason: str,
    report_path: Path | None,
) -> None:
    """Import FILE (.xlsx, .xls, .ods or .csv) and print what became of every row.

    The columns are mapped as last time for a sheet with the same column names in the same
    order (else guessed), then as --mapping says; the choices are remembered for next time.
    Exits 0 when the import ran, even with rejected rows; non-zero when the file cannot
    be read at all.
    """
    from . import app_settings
    from .contacts import export, importer, lists
    from .contacts import mapping as mappings
    from .errors import DomainError
    from .models import ImportKind

    require_migrated(ctx)
    db, instance = ctx.db, ctx.settings.instance_path
    stored: Path | None = None
    import_id: int | None = None
    try:
        with db.session() as session:
            region = (country or app_settings.default_country(session) or "").upper()
            if not region:
                raise click.ClickException(
                    "Pass --country (for example --country IN) for numbers written without a "
                    "country code, or set the default country under Settings."
                )
            with file.open("rb") as fh:
                imp = importer.save_upload(
                    session,
                    None,
                    instance,
                    fh,
                    file.name,
                    ImportKind.OPT_OUTS if opt_outs else ImportKind.CONTACTS,
                )
            stored = instance / imp.stored_path
            pv = importer.preview(imp, instance, region)
            chosen = mappings.apply_overrides(mapping_pairs, pv.sheet.header, pv.mapping)
            if duplicates:
                chosen["duplicates"] = duplicates
            list_id, new_list = None, None
            if list_name and not opt_outs:
                existing = lists.find_list(session, list_name)
                list_id, new_list = (existing.id, None) if existing else (None, list_name)
            importer.configure(
                session,
                None,
                imp,
                instance,
                chosen,
                region,
                list_id=list_id,
                new_list_name=new_list,
                opt_out_reason=reason if opt_outs else None,
            )
            import_id, estimate = imp.id, imp.rows_total or 0
            phone_col = chosen["phone"]
        click.echo(
            f'Reading {file.name}: phone column "{phone_col}", about {estimate:,} rows.', err=True
        )
        with click.progressbar(
            length=max(estimate, 1), label="Importing", file=sys.stderr, show_pos=True
        ) as bar:
            done = [0]

            def advance(imp_now: object) -> None:
                read = getattr(imp_now, "rows_read", 0)
                bar.update(max(0, min(read, estimate) - done[0]))
                done[0] = min(read, estimate)

            result = importer.run(db, import_id, instance, "cli", progress=advance)
    except DomainError as exc:
        # The import row was rolled back; its stored copy of the file goes with it.
        if stored is not None and import_id is None:
            stored.unlink(missing_ok=True)
        raise click.ClickException(str(exc)) from None
    with db.session() as session:
        click.echo(importer.summary_sentence(session, result))
        if result.error:
            raise click.ClickException(result.error)
        issues = (
            result.invalid_count
            + result.duplicate_count
            + sum(
                1
                for _ in session.scalars(
                    importer.issues_of(result.id).where(importer.ImportIssue.rejected.is_(False))
                )
            )
        )
        if issues:
            target = report_path or file.with_name(f"{file.stem}-import-{result.id}-report.csv")
            with target.open("w", encoding="utf-8-sig", newline="") as out:
                written = export.write_import_report(session, result, out)
            for issue in session.scalars(importer.issues_of(result.id).limit(10)):
                click.echo(f"  {issue.reason}")
            if written > 10:
                click.echo(f"  … and {written - 10:,} more.")
            click.echo(f"Report of every rejected or noted row: {target}")


@contacts.command("export")
@click.option("--list", "list_name", help="Only contacts in this list.")
@click.option(
    "--status",
    type=click.Choice(["all", "subscribed", "opted_out"]),
    default="all",
    show_default=True,
)
@click.option(
    "--search", default="", help="Only contacts whose name, phone or attributes contain this text."
)
@click.option(
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="FILE.csv or FILE.xlsx",
)
@pass_ctx
def export_cmd(ctx: Context, list_name: str | None, status: str, search: str, output: Path) -> None:
    """Write contacts (phone in E.164, name, opted_out, then attributes) to CSV or XLSX."""
    from .contacts import export, lists
    from .contacts.service import ContactFilter

    if output.suffix.lower() not in {".csv", ".xlsx"}:
        raise click.ClickException("--output must end in .csv or .xlsx.")
    require_migrated(ctx)
    with ctx.db.session() as session:
        list_id = None
        if list_name:
            found = lists.find_list(session, list_name)
            if found is None:
                raise click.ClickException(f"There is no list called {list_name!r}.")
            list_id = found.id
        f = ContactFilter(q=search, list_id=list_id, status=status)
        if output.suffix.lower() == ".csv":
            with output.open("w", encoding="utf-8-sig", newline="") as out:
                n = export.write_csv(session, f, out)
        else:
            n = export.write_xlsx(session, f, output)
    click.echo(f"Wrote {n:,} contacts to {output}.")


@contacts.command("recount")
@pass_ctx
def recount_cmd(ctx: Context) -> None:
    """Count contacts, opt-outs and list members again from the tables (a repair).

    The pages show counts kept up to date by every change; run this after loading rows by
    other means (SQL, a restored backup). It reads every contact once.
    """
    from .contacts import tallies

    require_migrated(ctx)
    with ctx.db.session() as session:
        before = tallies.totals(session)
        contacts_n, opted_out = tallies.recount(session)
    click.echo(f"{contacts_n:,} contacts, {opted_out:,} opted out; list member counts updated.")
    if before != (contacts_n, opted_out):
        click.echo(f"The kept counts were {before[0]:,} contacts, {before[1]:,} opted out.")
