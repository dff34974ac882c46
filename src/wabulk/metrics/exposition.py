"""Prometheus text exposition (format 0.0.4), written by hand: a few lines of escaping and
number formatting cost less than a client library's registry, which keeps state per
process, where ours is read afresh from the database on every scrape.

- A family is HELP, TYPE, then its samples; names and label names are ours (fixed), label
  values come from users (campaign and sender names) and are escaped.
- A histogram is given per-bucket counts and written cumulative, as the format wants.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Family:
    """One metric: `kind` is counter, gauge or histogram; a counter's name ends in _total."""

    name: str
    kind: str
    help: str
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: object) -> None:
        self.samples.append(("", {k: str(v) for k, v in labels.items()}, value))

    def histogram(
        self,
        bounds: Sequence[float],
        buckets: Sequence[float],
        total: float,
        count: float,
        **labels: object,
    ) -> None:
        """One labelled histogram from per-bucket counts (the last one over every bound)."""
        base = {k: str(v) for k, v in labels.items()}
        running = 0.0
        for bound, n in zip(bounds, buckets, strict=False):
            running += n
            # As client libraries write it ("1.0", not "1"): a query naming le="1.0" matches.
            self.samples.append(("_bucket", {**base, "le": repr(float(bound))}, running))
        self.samples.append(("_bucket", {**base, "le": "+Inf"}, count))
        self.samples.append(("_sum", base, total))
        self.samples.append(("_count", base, count))


def number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for suffix, labels, value in family.samples:
            if labels:
                inner = ",".join(f'{k}="{_label_value(v)}"' for k, v in labels.items())
                lines.append(f"{family.name}{suffix}{{{inner}}} {number(value)}")
            else:
                lines.append(f"{family.name}{suffix} {number(value)}")
    return "\n".join(lines) + "\n"
