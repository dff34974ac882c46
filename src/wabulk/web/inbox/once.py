"""One answer per answer form: a form sent twice (a second click before the page's script
disables the button, a browser sending it again after a lost connection or on Back) makes
one answer, not two messages to the customer.

- Each answer form carries a random token; the request that writes the answer claims it in
  the same transaction (`form_claims`, keyed by the token). The claim lives in the
  database because the two copies of a form may reach different web processes or
  machines (`wabulk serve --processes`); a copy arriving while the first is still being
  written waits for it on the key and then finds it claimed.
- A refused or failed answer rolls its claim back with it: the same form may be sent again.
- Claims older than a day are dropped as new ones come: long enough for any page left open
  and sent again.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ...models import FormClaim

TOKEN_MAX = 64
KEEP = timedelta(hours=24)

claims = FormClaim.__table__


class AlreadyUsed(Exception):
    """This form's token was claimed before: its action was done once already."""


def new_token() -> str:
    return secrets.token_urlsafe(16)


def claim(session: Session, token: str, now: datetime) -> None:
    """Claim `token` in the caller's transaction; AlreadyUsed when it was claimed before. A
    form without a token (a page from before tokens) is not guarded, so it is let through."""
    if not token or len(token) > TOKEN_MAX:
        return
    session.execute(delete(claims).where(claims.c.claimed_at < now - KEEP))
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # RETURNING, not rowcount: the driver's count for an INSERT is not to be trusted here.
    taken = session.execute(
        insert(claims)
        .values(token=token, claimed_at=now)
        .on_conflict_do_nothing()
        .returning(claims.c.token)
    ).first()
    if taken is None:
        raise AlreadyUsed
