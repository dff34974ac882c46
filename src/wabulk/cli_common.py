"""What every `wabulk` sub-command shares: lazily resolved settings and database."""

from __future__ import annotations

import click

from . import migrate
from .config import ConfigError, Settings, redact_url
from .db import Database


class Context:
    """Settings and database, resolved lazily so `wabulk --help` touches nothing."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._db: Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = Settings.from_env().resolved()
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
        return self._settings

    @property
    def db(self) -> Database:
        if self._db is None:
            try:
                self._db = Database(self.settings.database_url)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
        return self._db


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def require_migrated(ctx: Context) -> None:
    if not migrate.is_up_to_date(ctx.db.engine):
        raise click.ClickException(
            f"The database at {redact_url(ctx.settings.database_url)} is not up to date. "
            "Run `wabulk db upgrade` first."
        )
