"""What every PostgreSQL connection is opened with: a connect timeout and TCP keepalives
(a server that vanished without a word is found dead in about a minute), unless the URL
says otherwise."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from wabulk.db import PG_CONNECT_TIMEOUT_SECONDS, PG_KEEPALIVES, make_engine

pytestmark = pytest.mark.postgres


def _parameters(url: str) -> dict[str, str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.connection.dbapi_connection.info.get_parameters())
    finally:
        engine.dispose()


def test_connections_carry_a_timeout_and_keepalives(postgres_server: str) -> None:
    got = _parameters(postgres_server)
    assert got["connect_timeout"] == str(PG_CONNECT_TIMEOUT_SECONDS)
    for key, value in PG_KEEPALIVES.items():
        assert got[key] == str(value), key


def test_the_urls_own_values_win(postgres_server: str) -> None:
    url = make_url(postgres_server).update_query_dict(
        {"keepalives_idle": "7", "connect_timeout": "3"}
    )
    got = _parameters(url.render_as_string(hide_password=False))
    assert (got["keepalives_idle"], got["connect_timeout"]) == ("7", "3")
    assert got["keepalives_count"] == str(PG_KEEPALIVES["keepalives_count"])
