"""The `wabulk` command. It reads the same WABULK_* variables as the web app."""

from __future__ import annotations

import dataclasses
import signal
import sys
from typing import Any

import click

from . import __version__, migrate
from .cli_campaigns import campaign, send
from .cli_common import Context, pass_ctx, require_migrated
from .cli_contacts import contacts
from .cli_segments import segment
from .cli_worker import worker
from .config import redact_url
from .lan import how_to_reach


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wabulk")
def main() -> None:
    """wabulk: WhatsApp campaigns for your customers.

    Settings come from WABULK_* environment variables (see the README). With none set,
    everything lives in ./instance on SQLite.
    """


def _print_setup_code_if_needed(ctx: Context, base_url: str) -> None:
    from .auth import service as users
    from .auth import setup_code

    with ctx.db.session() as session:
        if users.has_users(session):
            return
        code = setup_code.issue(session)
    # Printed straight to the terminal, never through logging: the log file must not hold it.
    bar = "=" * 64
    click.echo(
        f"\n{bar}\n  First run: create the administrator at {base_url}/setup\n"
        f"  Setup code: {code}\n{bar}\n",
        err=False,
    )
    sys.stdout.flush()


def _shown_url(host: str, port: int) -> str:
    # Port 0 asks the OS for a free one; show the port actually bound. Bound to every
    # interface, this computer still opens it on its own loopback address.
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)  # noqa: S104
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


@main.command()
@click.option("--host", help="Address to listen on (default WABULK_HOST or 127.0.0.1).")
@click.option("--port", type=int, help="Port (default WABULK_PORT or 5000).")
@click.option("--no-worker", is_flag=True, help="Do not run the dispatcher inside the web process.")
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    help="Web request threads (default 8; with several processes, per process: default 1).",
)
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    help="Web processes (default WABULK_WEB_PROCESSES or 1). More than one runs gunicorn "
    "(Linux, macOS) without the dispatcher: run `wabulk worker` beside it.",
)
@pass_ctx
def serve(
    ctx: Context,
    host: str | None,
    port: int | None,
    no_worker: bool,
    threads: int | None,
    processes: int | None,
) -> None:
    """Run the web app (production WSGI server) and, unless told not to, the dispatcher."""
    settings = ctx.settings
    processes = settings.web_processes if processes is None else processes
    host = host or settings.host
    port = settings.port if port is None else port  # 0 asks the OS for a free port
    if processes > 1:
        _serve_processes(ctx, host, port, processes, threads)
        return

    from waitress import create_server

    from .app import create_app
    from .dispatch.worker import Dispatcher

    if no_worker:  # pages that need a worker (QR linking, imports) then say one must run
        settings = dataclasses.replace(settings, worker=False)
    require_migrated(ctx)
    app = create_app(settings)
    server: Any = create_server(app, host=host, port=port, threads=threads or 8)
    base_url = _shown_url(host, server.effective_port)
    _print_setup_code_if_needed(ctx, base_url)

    dispatcher = None
    if settings.worker:
        dispatcher = Dispatcher(app.extensions["wabulk.db"], settings, embedded=True)
        dispatcher.start_thread()
    click.echo(
        f"wabulk {__version__} serving on {base_url}  "
        f"(dispatcher {'on' if dispatcher else 'off'}; Ctrl+C to stop)"
    )
    click.echo("\n".join(how_to_reach(host, server.effective_port)))
    sys.stdout.flush()

    def _terminate(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        if dispatcher:
            dispatcher.stop()
        click.echo("wabulk stopped.")


def _serve_processes(
    ctx: Context, host: str, port: int, processes: int, threads: int | None
) -> None:
    """gunicorn with `processes` web processes; campaigns are sent by `wabulk worker`."""
    try:
        from . import web_server
    except ImportError:  # gunicorn forks: there is none on Windows
        raise click.ClickException(
            f"Several web processes (--processes {processes} or WABULK_WEB_PROCESSES) need "
            "gunicorn, which runs on Linux and macOS only. On this computer run one process: "
            "`wabulk serve --processes 1`."
        ) from None
    settings = ctx.settings
    require_migrated(ctx)
    # The master only forks: each process opens its own connections after the fork.
    ctx.db.dispose()

    def ready(bound: int) -> None:
        base_url = _shown_url(host, bound)
        _print_setup_code_if_needed(ctx, base_url)
        ctx.db.dispose()
        click.echo(
            f"wabulk {__version__} serving on {base_url} with {processes} web processes "
            "(Ctrl+C to stop)"
        )
        click.echo(
            "Campaigns, imports and linking phones are done by `wabulk worker`: "
            "run at least one beside this server (the web processes do not send)."
        )
        if ctx.db.engine.dialect.name == "sqlite":
            click.echo(
                "On SQLite, every process must run on this one computer; to spread over "
                "several machines use PostgreSQL (WABULK_DATABASE_URL)."
            )
        click.echo("\n".join(how_to_reach(host, bound)))
        sys.stdout.flush()

    status = web_server.WebServer(
        settings,
        host=host,
        port=port,
        processes=processes,
        threads=threads or web_server.THREADS,
        ready=ready,
    ).serve()
    click.echo("wabulk stopped.")
    if status:
        raise SystemExit(status)


@main.group()
def db() -> None:
    """Database schema: upgrade, show the current revision."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_ctx
def db_upgrade(ctx: Context, revision: str) -> None:
    """Create or migrate the database schema (safe to run again)."""
    migrate.upgrade(ctx.db.engine, revision)
    click.echo(
        f"Database {redact_url(ctx.settings.database_url)} is at revision "
        f"{migrate.current_revision(ctx.db.engine)}."
    )


@db.command("current")
@pass_ctx
def db_current(ctx: Context) -> None:
    """Show the schema revision of the database and whether it is up to date."""
    current = migrate.current_revision(ctx.db.engine)
    head = migrate.head_revision(ctx.db.engine)
    state = "up to date" if current == head else f"behind (latest is {head})"
    click.echo(f"{current or 'empty'}: {state}")


@main.group()
def user() -> None:
    """User accounts."""


@user.command("create")
@click.option("--email", required=True)
@click.option(
    "--role",
    type=click.Choice(["admin", "operator", "viewer"]),
    default="operator",
    show_default=True,
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (for scripts) instead of asking.",
)
@pass_ctx
def user_create(ctx: Context, email: str, role: str, password_stdin: bool) -> None:
    """Create a user. The password is asked for (never passed as an argument)."""
    from .auth import service as users
    from .errors import DomainError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    require_migrated(ctx)
    try:
        with ctx.db.session() as session:
            created = users.create_user(session, None, email, password, role)
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {created.email} ({created.role.value}).")


@main.command("setup-code")
@pass_ctx
def setup_code_cmd(ctx: Context) -> None:
    """Print a new first-run setup code (only while no user exists)."""
    from .auth import service as users
    from .auth import setup_code

    require_migrated(ctx)
    with ctx.db.session() as session:
        if users.has_users(session):
            raise click.ClickException("Setup is done already: users exist. Sign in instead.")
        code = setup_code.issue(session)
    click.echo(code)


main.add_command(worker)
main.add_command(contacts)
main.add_command(campaign)
main.add_command(send)
main.add_command(segment)


@main.group("analytics")
def analytics_group() -> None:
    """The maintained figures behind the Dashboard and Analytics pages."""


@analytics_group.command("rebuild")
@click.option("--campaign", "campaign_ids", type=int, multiple=True, help="Only this campaign id.")
@pass_ctx
def analytics_rebuild(ctx: Context, campaign_ids: tuple[int, ...]) -> None:
    """Recompute message outcomes per 15-minute slot from the messages table."""
    from .analytics import stats

    require_migrated(ctx)
    with ctx.db.session() as session:
        rows = stats.rebuild(session, list(campaign_ids) or None)
    scope = f"campaign(s) {', '.join(map(str, campaign_ids))}" if campaign_ids else "all campaigns"
    click.echo(f"Rebuilt message statistics for {scope}: {rows:,} row(s).")


@main.command("demo")
@click.option("--remove", is_flag=True, help="Take the demo data out again (your own data stays).")
@pass_ctx
def demo_cmd(ctx: Context, remove: bool) -> None:
    """Load a labelled sample data set to explore every page (nothing goes to WhatsApp)."""
    from . import demo

    require_migrated(ctx)
    with ctx.db.session() as session:
        if remove:
            lines = demo.remove_demo(session, None, ctx.settings.instance_path).lines()
        else:
            lines = demo.load_demo(session, None, ctx.settings.instance_path).lines()
    click.echo("\n".join(lines))
    if not remove and len(lines) > 1:
        click.echo("Run `wabulk serve` to watch the live campaign send.")


@main.group("settings")
def settings_group() -> None:
    """Instance-wide settings."""


@settings_group.command("default-country")
@click.argument("code")
@pass_ctx
def default_country_cmd(ctx: Context, code: str) -> None:
    """Set the country (e.g. IN) for numbers written without a country code."""
    from . import app_settings
    from .errors import DomainError

    require_migrated(ctx)
    try:
        with ctx.db.session() as session:
            code = app_settings.set_default_country(session, None, code)
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Default country set to {code}.")


if __name__ == "__main__":  # pragma: no cover
    main()
