"""`wabulk worker`: the dispatcher alone, and `--check` for a health probe.

- `--name` is what the Workers page shows and `--check` looks for (default
  WABULK_WORKER_NAME, else the host name); `--label` adds to WABULK_WORKER_LABELS; `--senders`
  limits the worker to the named senders (checked against the database before it starts).
- `--check` starts nothing: it exits 0 and prints "healthy" when the database answers, its
  schema is current and a worker of this name on this host beats and has not stopped;
  otherwise it prints what is wrong and exits 1 (for systemd, cron or a container probe).
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from .cli_common import Context, pass_ctx, require_migrated
from .config import LABEL


def _labels(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    labels = tuple(dict.fromkeys(v.strip() for v in values if v.strip()))
    for label in labels:
        if not LABEL.match(label):
            raise click.BadParameter(
                "a label is letters, digits, '.', '_' and '-' (up to 60, starting with a "
                f"letter or digit); got {label!r}"
            )
    return labels


@click.command()
@click.option(
    "--name",
    help="This worker's name on the Workers page (default WABULK_WORKER_NAME or the host name).",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    callback=_labels,
    help="A label of this worker (repeatable, added to WABULK_WORKER_LABELS): senders with a "
    "worker label are sent for only by workers carrying it.",
)
@click.option(
    "--senders",
    "sender_names",
    multiple=True,
    metavar="NAME",
    help="Send only for this sender (repeatable); default: every sender it may.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Start nothing: exit 0 if a worker of this name runs on this host, else say why, exit 1.",
)
@pass_ctx
def worker(
    ctx: Context,
    name: str | None,
    labels: tuple[str, ...],
    sender_names: tuple[str, ...],
    check: bool,
) -> None:
    """Run the dispatcher alone (for more workers beside the web app, e.g. on PostgreSQL)."""
    from .dispatch import registry

    settings = ctx.settings
    name = (name or "").strip()[:100] or settings.worker_name or registry.this_host()
    if check:
        ok, message = registry.check(ctx.db, name, registry.this_host())
        click.echo(message)
        sys.exit(0 if ok else 1)

    from . import logs
    from .dispatch.worker import Dispatcher

    logs.configure(settings.instance_path, settings.log_level)
    require_migrated(ctx)
    only = _known_senders(ctx, sender_names)
    dispatcher = Dispatcher(ctx.db, settings, name=name, labels=labels, only_senders=only)

    def _stop(_signum: int, _frame: Any) -> None:
        dispatcher.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f"wabulk worker {dispatcher.identity} running; Ctrl+C to stop.")
    dispatcher.run()


def _known_senders(ctx: Context, names: tuple[str, ...]) -> tuple[str, ...]:
    """The senders' own names for `--senders`; an unknown one stops the worker before it
    starts, naming the senders there are."""
    if not names:
        return ()
    from sqlalchemy import select

    from .models import Sender
    from .senders.service import find_sender

    found: list[str] = []
    with ctx.db.session() as session:
        unknown = []
        for raw in names:
            sender = find_sender(session, raw)
            if sender is None:
                unknown.append(raw)
            elif sender.name not in found:
                found.append(sender.name)
        if unknown:
            known = sorted(session.scalars(select(Sender.name)), key=str.casefold)
            there = ", ".join(known) if known else "none yet"
            raise click.ClickException(
                f"--senders: no sender is called {', '.join(map(repr, unknown))}. Senders: {there}."
            )
    return tuple(found)
