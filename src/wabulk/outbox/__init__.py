"""Events out (DESIGN §8): webhook endpoints an admin enters, durable delivery rows written
in the transaction that caused each event, and the worker's signed deliveries.

- `emit` / `causes`: write the rows (no Flask, no HTTP).
- `endpoints`: the admin's endpoints, their secrets and delivery log.
- `delivery`: claim, post and record (the worker's "webhooks" loop).
"""

from .emit import EVENTS, emit, emit_many

__all__ = ["EVENTS", "emit", "emit_many"]
