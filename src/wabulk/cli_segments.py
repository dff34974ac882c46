"""`wabulk segment …`: saved segments from the command line (the same services as the page).

Segments are built on the Segments page or through the API; here they are listed and
counted, and `wabulk campaign create --segment NAME` sends to one.
"""

from __future__ import annotations

import json

import click

from .cli_common import Context, pass_ctx, require_migrated
from .errors import DomainError

CAP = 100_000


def find_segment(session, name: str):  # type: ignore[no-untyped-def]
    """The segment called `name` (any case, spaces squeezed), or a ClickException."""
    from sqlalchemy import func, select

    from .models import Segment

    wanted = " ".join(name.split()).lower()
    found = session.scalar(select(Segment).where(func.lower(Segment.name) == wanted))
    if found is None:
        raise click.ClickException(
            f"There is no segment called {name!r}; `wabulk segment list` shows them."
        )
    return found


@click.group()
def segment() -> None:
    """List saved segments and count who is in them now."""


@segment.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_ctx
def list_cmd(ctx: Context, as_json: bool) -> None:
    """Every segment by name, with its conditions in words."""
    from .segments import service as segments
    from .segments import terms

    require_migrated(ctx)
    with ctx.db.session() as session:
        rows = sorted(segments.list_all(session), key=lambda s: s.name.lower())
        if not rows and not as_json:
            click.echo("No segments yet. Build one on the Segments page.")
        for s in rows:
            summary = terms.describe(s.terms or {}, session)
            if as_json:
                click.echo(json.dumps({"id": s.id, "name": s.name, "summary": summary}))
            else:
                click.echo(f"{s.id:>5}  {s.name}: {summary}")


@segment.command("count")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.option("--cap", default=CAP, show_default=True, help="Stop counting past this many.")
@pass_ctx
def count_cmd(ctx: Context, name: str, as_json: bool, cap: int) -> None:
    """How many contacts are in segment NAME now (opted-out contacts never are)."""
    from .segments import service as segments
    from .segments import terms

    require_migrated(ctx)
    if not 1 <= cap <= 10_000_000:
        raise click.BadParameter("use a number from 1 to 10,000,000", param_hint="--cap")
    try:
        with ctx.db.session() as session:
            found = find_segment(session, name)
            n, capped = segments.count(session, found.terms or {}, cap=cap)
            summary = terms.describe(found.terms or {}, session)
            seg_id, seg_name = found.id, found.name
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        out = {"id": seg_id, "name": seg_name, "count": n, "capped": capped, "summary": summary}
        click.echo(json.dumps(out))
        return
    shown = f"more than {cap:,}" if capped else f"{n:,}"
    click.echo(f"{seg_name}: {shown} contact(s). {summary}.")
