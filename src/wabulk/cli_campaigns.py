"""`wabulk campaign …` and `wabulk send`: the same services as the campaign pages."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from sqlalchemy import select

from .cli_common import Context, pass_ctx, require_migrated
from .errors import DomainError


def _fail(exc: DomainError) -> click.ClickException:
    return click.ClickException(str(exc))


def parse_delay(text: str | None) -> dict[str, float]:
    """`8` or `8-20` (seconds) → pacing overrides; None → the sender's own pacing."""
    if text is None:
        return {}
    lo, _, hi = text.partition("-")
    try:
        low = float(lo)
        high = float(hi) if hi else low
    except ValueError:
        raise click.BadParameter(
            f"use seconds like 8 or 8-20, not {text!r}", param_hint="--delay"
        ) from None
    if low < 0 or high < low:
        raise click.BadParameter("use MIN-MAX with 0 <= MIN <= MAX", param_hint="--delay")
    return {"min_delay_seconds": low, "max_delay_seconds": high}


def _parse_at(text: str | None, tz: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"use a date and time like 2026-12-01T09:00, not {text!r}", param_hint="--at"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=ZoneInfo(tz))


def _ids(session, names: tuple[str, ...], noun: str) -> list[int]:  # type: ignore[no-untyped-def]
    """Ids of lists or senders named on the command line, failing on the first unknown."""
    from .contacts.lists import find_list
    from .senders.service import find_sender

    finder = find_list if noun == "list" else find_sender
    ids = []
    for name in names:
        found = finder(session, name)
        if found is None:
            raise click.ClickException(f"There is no {noun} called {name!r}.")
        ids.append(found.id)
    return ids


def _media_id(ctx: Context, session, attach: Path | None) -> int | None:  # type: ignore[no-untyped-def]
    if attach is None:
        return None
    from .campaigns.media import save_media

    with attach.open("rb") as fh:
        media = save_media(
            session,
            fh,
            attach.name,
            ctx.settings.instance_path,
            ctx.settings.max_upload_mb * 1024 * 1024,
        )
    return media.id


def _dry_run_sender(session) -> int:  # type: ignore[no-untyped-def]
    """The CLI's own rehearsal sender: created once, no pacing."""
    from .senders.service import SenderInput, create_sender, find_sender

    found = find_sender(session, "Dry run")
    if found is not None:
        return found.id
    return create_sender(session, None, SenderInput(name="Dry run")).id


@click.group()
def campaign() -> None:
    """Create, launch, pause, resume, cancel and follow campaigns."""


@campaign.command("create")
@click.option("--name", required=True)
@click.option("--list", "lists", multiple=True, help="A list to send to (repeatable).")
@click.option("--segment", "segment_name", help="Send to this saved segment instead of lists.")
@click.option("--message", help="The message, with {{ placeholders }} and {spin|tax}.")
@click.option("--template", "template_name", help="Use a saved template instead of --message.")
@click.option("--attach", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--sender", "senders", multiple=True, required=True, help="Sender name (repeatable).")
@click.option("--at", "start_at", help="Start time, e.g. 2026-12-01T09:00 (default: at launch).")
@click.option("--timezone", "tz", default="UTC", show_default=True, help="Timezone of --at.")
@click.option("--delay", help="Seconds between messages, N or MIN-MAX (default: the sender's).")
@click.option("--daily-cap", type=int, help="At most this many messages per sender per day.")
@click.option("--attempts", default=3, show_default=True, help="Tries per message.")
@pass_ctx
def create_cmd(
    ctx: Context,
    name: str,
    lists: tuple[str, ...],
    segment_name: str | None,
    message: str | None,
    template_name: str | None,
    attach: Path | None,
    senders: tuple[str, ...],
    start_at: str | None,
    tz: str,
    delay: str | None,
    daily_cap: int | None,
    attempts: int,
) -> None:
    """Save a draft campaign and print its id (launch it with `wabulk campaign launch`)."""
    from .campaigns.service import DraftInput, save_draft
    from .cli_segments import find_segment
    from .models import Template

    require_migrated(ctx)
    if bool(message) == bool(template_name):
        raise click.UsageError("Give either --message or --template.")
    if bool(lists) == bool(segment_name):
        raise click.UsageError("Give either --list (one or more) or --segment.")
    pacing: dict[str, object] = dict(parse_delay(delay))
    if daily_cap is not None:
        pacing["daily_cap"] = daily_cap
    try:
        with ctx.db.session() as session:
            template_id = None
            if template_name:
                template = session.scalar(select(Template).where(Template.name == template_name))
                if template is None:
                    raise click.ClickException(f"There is no template called {template_name!r}.")
                template_id = template.id
            segment_id = find_segment(session, segment_name).id if segment_name else None
            draft = save_draft(
                session,
                None,
                DraftInput(
                    name=name,
                    list_ids=_ids(session, lists, "list"),
                    segment_id=segment_id,
                    sender_ids=_ids(session, senders, "sender"),
                    template_id=template_id,
                    body=message or "",
                    media_id=_media_id(ctx, session, attach),
                    scheduled_at=_parse_at(start_at, tz),
                    pacing=pacing,
                    max_attempts=attempts,
                ),
            )
            campaign_id = draft.id
    except DomainError as exc:
        raise _fail(exc) from None
    click.echo(campaign_id)


def _act(ctx: Context, action: str, campaign_id: int) -> None:
    from .campaigns import lifecycle

    require_migrated(ctx)
    functions = {
        "launch": lifecycle.launch,
        "pause": lifecycle.pause,
        "resume": lifecycle.resume,
        "cancel": lifecycle.cancel,
        "retry": lifecycle.retry_failed,
    }
    try:
        with ctx.db.session() as session:
            functions[action](session, None, campaign_id)
            found = lifecycle.get_campaign(session, campaign_id)
            click.echo(f"Campaign {campaign_id} ({found.name}) is {found.status.value}.")
    except DomainError as exc:
        raise _fail(exc) from None


for _action, _help in [
    ("launch", "Launch a draft: every recipient is queued; it starts now or at its time."),
    ("pause", "Pause a running campaign (messages in flight finish)."),
    ("resume", "Resume a paused campaign."),
    ("cancel", "Cancel for good: unsent messages are skipped."),
    ("retry", "Queue the failed and unknown messages of a finished campaign again."),
]:

    def _command(ctx: Context, campaign_id: int, _a: str = _action) -> None:
        _act(ctx, _a, campaign_id)

    campaign.command(_action, help=_help)(
        click.argument("campaign_id", type=int)(pass_ctx(_command))
    )


def _status(ctx: Context, campaign_id: int) -> dict[str, object]:
    from .campaigns import lifecycle
    from .campaigns.service import campaign_counts_by_status

    with ctx.db.session() as session:
        found = lifecycle.get_campaign(session, campaign_id)
        return {
            "id": found.id,
            "name": found.name,
            "status": found.status.value,
            "reason": found.status_reason,
            "total": found.total,
            "counts": campaign_counts_by_status(session, campaign_id),
        }


@campaign.command("status")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON object (counts from the rows).")
@pass_ctx
def status_cmd(ctx: Context, campaign_id: int, as_json: bool) -> None:
    """Status and the number of messages in each message status."""
    require_migrated(ctx)
    try:
        data = _status(ctx, campaign_id)
    except DomainError as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(f"Campaign {data['id']} ({data['name']}): {data['status']}")
    if data["reason"]:
        click.echo(f"  {data['reason']}")
    counts = data["counts"]
    assert isinstance(counts, dict)
    click.echo("  " + ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "  no messages")


@campaign.command("list")
@pass_ctx
def list_cmd(ctx: Context) -> None:
    """Every campaign, newest first."""
    from .campaigns.queries import campaigns_newest_first

    require_migrated(ctx)
    with ctx.db.session() as session:
        rows = session.scalars(campaigns_newest_first()).all()
        if not rows:
            click.echo("No campaigns yet.")
        for c in rows:
            done = c.total - c.n_queued - c.n_sending
            click.echo(f"{c.id:>6}  {c.status.value:<10} {done:>8,}/{c.total:<8,} {c.name}")


@click.command("send")
@click.option("--list", "lists", multiple=True, required=True, help="List to send to (repeatable).")
@click.option("--message", required=True, help="The message, with {{ placeholders }}.")
@click.option("--attach", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--sender", "sender_name", help="Send through this sender.")
@click.option("--dry-run", is_flag=True, help="Rehearse: write to instance/dry_run/ instead.")
@click.option("--delay", help="Seconds between messages, N or MIN-MAX.")
@click.option("--name", help="Campaign name (default: the first words of the message).")
@click.option("--wait", is_flag=True, help="Send from this process and show progress until done.")
@pass_ctx
def send(
    ctx: Context,
    lists: tuple[str, ...],
    message: str,
    attach: Path | None,
    sender_name: str | None,
    dry_run: bool,
    delay: str | None,
    name: str | None,
    wait: bool,
) -> None:
    """Send one message to a list now: creates and launches a campaign, prints its id."""
    from .campaigns import lifecycle
    from .campaigns.service import DraftInput, save_draft

    require_migrated(ctx)
    if bool(sender_name) == dry_run:
        raise click.UsageError("Give either --sender NAME or --dry-run.")
    pacing: dict[str, object] = dict(parse_delay(delay))
    if dry_run and not pacing:
        pacing = {"min_delay_seconds": 0, "max_delay_seconds": 0}
    try:
        with ctx.db.session() as session:
            sender_ids = (
                [_dry_run_sender(session)] if dry_run else _ids(session, (sender_name,), "sender")  # type: ignore[arg-type]
            )
            draft = save_draft(
                session,
                None,
                DraftInput(
                    name=name or f"Sent from the command line {datetime.now():%Y-%m-%d %H:%M}",
                    list_ids=_ids(session, lists, "list"),
                    sender_ids=sender_ids,
                    body=message,
                    media_id=_media_id(ctx, session, attach),
                    pacing=pacing,
                ),
            )
            session.flush()
            launched = lifecycle.launch(session, None, draft.id)
            campaign_id, total = launched.id, launched.total
    except DomainError as exc:
        raise _fail(exc) from None
    click.echo(campaign_id)
    if not wait:
        click.echo(
            f"Queued {total:,} message(s). A running `wabulk serve` or `wabulk worker` sends "
            f"them; follow with `wabulk campaign status {campaign_id}`.",
            err=True,
        )
        return
    _wait(ctx, campaign_id, total)


def _wait(ctx: Context, campaign_id: int, total: int) -> None:
    """Run a dispatcher here and draw progress until the campaign is no longer running."""
    from .dispatch.worker import Dispatcher

    dispatcher = Dispatcher(ctx.db, ctx.settings)
    dispatcher.start_thread()
    shown = 0
    try:
        with click.progressbar(
            length=total, label="Sending", file=click.get_text_stream("stderr")
        ) as bar:
            while True:
                data = _status_counters(ctx, campaign_id)
                done = total - data["queued"] - data["sending"]
                bar.update(done - shown)
                shown = done
                if data["status"] not in ("running", "scheduled"):
                    break
                time.sleep(0.5)
    finally:
        dispatcher.stop()
    final = _status(ctx, campaign_id)
    counts = final["counts"]
    assert isinstance(counts, dict)
    summary = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    click.echo(f"Campaign {campaign_id} {final['status']}: {summary}.", err=True)
    if final["status"] == "paused":
        raise click.ClickException(str(final["reason"] or "The campaign was paused."))


def _status_counters(ctx: Context, campaign_id: int) -> dict[str, object]:
    """Maintained counters (cheap enough to read twice a second)."""
    from .models import Campaign

    with ctx.db.session() as session:
        found = session.get(Campaign, campaign_id)
        assert found is not None
        return {"status": found.status.value, "queued": found.n_queued, "sending": found.n_sending}
