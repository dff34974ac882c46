"""Read queries for the Senders page."""

from __future__ import annotations

from sqlalchemy import Select, select

from ..models import Sender


def senders_by_name() -> Select[tuple[Sender]]:
    return select(Sender).order_by(Sender.name)
