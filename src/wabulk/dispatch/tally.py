"""This process's send counters, kept in memory and written with each worker heartbeat.

- Outcomes per sender (sent, failed, retry, unknown, skipped, requeue) and how long a send
  took, as a histogram with fixed bounds, both since the process started: /metrics serves
  them per worker (Prometheus handles a counter that restarts at zero with the process).
- Sends in the last minute, for the Workers page.
- Lanes run in threads of their own, so every change takes the lock; a lane records a
  batch at a time, never one call per message in a hot loop.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

# Upper bounds in seconds of the send-latency histogram (plus +Inf).
LATENCY_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MINUTE = 60.0

_lock = threading.Lock()
_outcomes: dict[int, Counter[str]] = {}
_latency: dict[int, list[float]] = {}  # per bucket counts (+Inf last), then sum, then count
_recent: deque[tuple[float, int]] = deque()  # (monotonic time, messages handed over)


def outcomes(sender_id: int, kinds: Counter[str]) -> None:
    """Count a batch's outcomes for one sender."""
    if not kinds:
        return
    with _lock:
        _outcomes.setdefault(sender_id, Counter()).update(kinds)


def latency(sender_id: int, seconds: float, n: int = 1) -> None:
    """`n` sends that took `seconds` together (a batch channel's sends overlap, so each is
    counted at the batch's time per message)."""
    if n <= 0:
        return
    per = max(0.0, seconds) / n
    slot = next((i for i, bound in enumerate(LATENCY_BOUNDS) if per <= bound), len(LATENCY_BOUNDS))
    now = time.monotonic()
    with _lock:
        row = _latency.setdefault(sender_id, [0.0] * (len(LATENCY_BOUNDS) + 3))
        row[slot] += n
        row[-2] += max(0.0, seconds)
        row[-1] += n
        _recent.append((now, n))
        _trim(now)


def _trim(now: float) -> None:
    while _recent and now - _recent[0][0] > MINUTE:
        _recent.popleft()


def per_minute() -> int:
    """Messages handed to a channel in the last minute."""
    with _lock:
        _trim(time.monotonic())
        return sum(n for _, n in _recent)


def snapshot() -> dict[str, Any]:
    """The counters as JSON for the worker row:
    {"outcomes": {"<sender id>": {"sent": n, ...}},
     "latency": {"<sender id>": {"buckets": [n per bound..., n over the last], "sum": s,
                                 "count": n}},
     "bounds": [...]}; bucket counts are per bucket, not cumulative."""
    with _lock:
        return {
            "outcomes": {str(k): dict(v) for k, v in _outcomes.items()},
            "latency": {
                str(k): {"buckets": [int(x) for x in v[:-2]], "sum": v[-2], "count": int(v[-1])}
                for k, v in _latency.items()
            },
            "bounds": list(LATENCY_BOUNDS),
        }


def reset() -> None:
    """Forget everything (tests)."""
    with _lock:
        _outcomes.clear()
        _latency.clear()
        _recent.clear()
