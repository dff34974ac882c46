"""Reading an import's sheet: rows read and normalised into chunks ready to write.

- `Plan` is the mapping resolved to column positions; `Plan.read` turns one row into the
  values an INSERT takes (or an issue), so the writer does no per-row work beyond a
  dictionary of the chunk's phones.
- `read_chunks` reads in this process; for big sheets `read_chunks_in_child` reads in a
  second one, a few chunks ahead, while this one writes (import_run.Writer). This module
  imports no database code: the second process starts the faster.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..words import N_, said
from . import mapping as mappings
from .phone_rules import is_landline
from .phones import clean_cell, normalise
from .sheets import SheetError, open_sheet

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ..models import Import

# Without the cache: a sheet's phones are mostly distinct, and a miss costs more than the call.
_normalise = normalise.__wrapped__
# What json.dumps uses for a str (ASCII-only output, the same escapes).
_json_text = encode_basestring_ascii
CHUNK_ROWS = 5_000
# Chunks of a sheet read in the second process. Each commit writes every index page the
# chunk touched to the WAL, and a chunk's phones land all over the unique phone index: bigger
# chunks touch each page for more rows (50,000 instead of 5,000: the writer ~1.5x faster).
BIG_CHUNK_ROWS = 50_000
# Below this many rows the reader runs in the same process: starting a second one costs more.
PARALLEL_MIN_ROWS = 50_000

# One valid row, as the INSERT takes it: (phone E.164, name, attributes as JSON text,
# country, timezone). Encoded where the row is read (the second process for big sheets).
Row = tuple[str, str | None, str, str | None, str | None]
# (row number, rejected?, reason, the row's cells as JSON text): a rejected row or a note on
# an imported one (extra numbers in its phone cell).
Issue = tuple[int, bool, str, str]


@dataclass(slots=True)
class Chunk:
    """Consecutive data rows of the sheet, read and normalised."""

    rows: list[Row]  # the valid ones, in sheet order
    issues: list[Issue]
    read: int = 0  # data rows read (valid or not)
    last: int = 0  # the last row number read: the resume cursor once committed
    # The row number of each valid row: a repeated phone's report names the row it repeats.
    numbers: list[int] = field(default_factory=list)

    @property
    def invalid(self) -> int:
        return sum(1 for issue in self.issues if issue[1])


def read_chunks(
    path: Path,
    plan: Plan,
    start_after: int,
    chunk_rows: int,
    first_rows: int | None = None,
    until: int | None = None,
) -> Iterator[Chunk]:
    """The sheet's rows after `start_after` (up to row `until`), read and normalised, in
    chunks (the last may be empty). The first has `first_rows` rows when given; near a
    workbook's end they shrink."""
    # The stored upload; parsed whole at once unless only its first rows are to be read.
    sheet = open_sheet(path, checked=True, head_limit=until or 0)
    plan.bind(sheet.header)
    read = plan.read
    rows: list[Row] = []
    numbers: list[int] = []
    issues: list[Issue] = []
    count = number = 0
    size = first_rows or chunk_rows
    for number, cells in sheet.rows(start_after=start_after, until=until):
        row, issue = read(number, cells)
        if row is not None:
            rows.append(row)
            numbers.append(number)
        if issue is not None:
            issues.append(issue)
        count += 1
        if count >= size:
            yield Chunk(rows, issues, count, number, numbers)
            rows, numbers, issues, count, size = [], [], [], 0, chunk_rows
            if sheet.last_row and (left := sheet.last_row - number) < chunk_rows * 2:
                # Halves near the end: what the writer has left once this reader is done
                # (the time one core is idle) is one small chunk, not a big one.
                size = min(chunk_rows, max(TAIL_ROWS, left // 2))
    yield Chunk(rows, issues, count, number, numbers)


# The smallest of the shrinking chunks at a workbook's end (a commit costs ~40 ms anyway).
TAIL_ROWS = 10_000


# The second process's first chunk is small: the writer has nothing else to do until it comes.
FIRST_ROWS = 5_000


def _exit_with_parent() -> None:
    """End this process as soon as the one it reads for is gone.

    A writer killed with SIGKILL runs no cleanup: its reader would otherwise wait on the full
    queue forever, holding its chunks in memory (the queue's pipe never breaks, since this
    process holds both its ends), or hang at exit flushing a chunk into that pipe.
    """
    import multiprocessing
    import multiprocessing.connection
    import os
    import threading

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])  # readable once the parent is gone
        os._exit(0)  # nothing to save: the reader writes nothing but the queue

    threading.Thread(target=watch, name="wabulk-reader-watchdog", daemon=True).start()


# The reader's address space: several times what the largest sheet wabulk accepts needs, so a
# parser that asks for far more than a file declared (sheet_checks refuses what it knows of)
# fails in this process alone, which the writer then reports, instead of exhausting the host.
READER_MEMORY_LIMIT = 6 * 1024**3


def _limit_memory() -> None:
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > READER_MEMORY_LIMIT:
        resource.setrlimit(resource.RLIMIT_AS, (READER_MEMORY_LIMIT, hard))


def _produce(path: str, plan: Plan, start_after: int, chunk_rows: int, out: Any) -> None:
    """Child process: read and normalise while the parent writes (the second core's share)."""
    import gc
    import sys

    _exit_with_parent()
    _limit_memory()
    # The queue's feeder thread pickles each chunk and writes it to the pipe 64 KiB at a
    # time, taking the GIL back from this busy main thread after every write. At the default
    # 5 ms switch interval a 9 MB chunk took ~1 s to reach the writer, which sat idle
    # meanwhile (the million-row bench: 12.1 s -> 10.7 s). Only waiting threads cause switches.
    sys.setswitchinterval(0.0002)
    # This process makes no reference cycles: collecting would only walk the rows in flight
    # and the startup's objects, again and again (about a tenth of its time).
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    first = min(FIRST_ROWS, chunk_rows)
    try:
        for chunk in read_chunks(Path(path), plan, start_after, chunk_rows, first):
            # Columns of str/None, not rows: half the pickling (done here, the busier side) of
            # the same values as tuples; the writer's zip back to rows costs less than it saves.
            columns = list(zip(*chunk.rows, strict=True))
            out.put(("chunk", (columns, chunk.issues, chunk.read, chunk.last, chunk.numbers)))
        out.put(("done", None))
    except SheetError as exc:
        out.put(("error", str(exc)))
    except Exception as exc:  # the parent must never wait forever on a dead reader
        out.put(("crash", f"{type(exc).__name__}: {exc}"))


def _received_chunk(kind: str, payload: Any) -> Chunk | None:
    """The chunk a message of _produce carries; None at the end; raises what failed."""
    if kind == "chunk":
        columns, issues, read, last, numbers = payload
        return Chunk(list(zip(*columns, strict=True)), issues, read, last, numbers)
    if kind == "done":
        return None
    if kind == "error":
        raise SheetError(payload)
    # A fault of ours, not of the file: the details go to the log, the user gets a sentence
    # (raising anything else would leave the import to be retried, and fail, forever).
    log.error("the import reader failed: %s", payload)
    raise SheetError(
        N_(
            "Reading this sheet failed unexpectedly. Save it again as .xlsx or .csv and upload "
            "it; if that fails too, the server's log has the details."
        )
    )


def own_share(kind: str, rows: int) -> int:
    """Rows this process reads itself while the second one starts (see read_chunks_in_child).

    Measured on 2 cores: the second process starts in ~0.15 s, a workbook's then parses
    (~6 µs a row of the whole sheet) before its first chunk, then reads ~12 µs a row; here
    a row of the head costs ~27 µs (parsed, read, written) and one the second process read
    ~7.5 µs (written). Both finish together when this one takes ~5,000 + a third of a workbook's
    rows. A CSV's reader has its first chunk ready in ~0.15 s: reading some here too was
    measured, and changed nothing (the writer is the busier side by then).
    """
    if kind == "csv":
        return 0
    return min(OWN_WORKBOOK_ROWS + rows // 3, OWN_WORKBOOK_MAX, rows // 2)


OWN_WORKBOOK_ROWS = 5_000
# The head of a workbook is parsed in memory here while the second process holds the whole
# sheet: this bounds what the two hold at once.
OWN_WORKBOOK_MAX = 100_000


def read_chunks_in_child(
    path: Path, plan: Plan, start_after: int, chunk_rows: int, own_rows: int = 0
) -> Iterator[Chunk]:
    """Like read_chunks, from a second process, a few chunks ahead at most (bounded memory).

    The `own_rows` rows after `start_after` are read here, while the second process starts
    and reaches its first row (own_share): this process would only wait meanwhile.
    """
    import multiprocessing
    import queue as queue_errors

    # spawn, not fork: the web process has threads, and a forked copy of their locks deadlocks.
    ctx = multiprocessing.get_context("spawn")
    channel = ctx.Queue(maxsize=3)
    child = ctx.Process(
        target=_produce,
        args=(str(path), plan, start_after + own_rows, chunk_rows, channel),
        name="wabulk-import-reader",
        daemon=True,
    )
    child.start()

    def received() -> tuple[str, Any]:
        while True:
            try:
                return channel.get(timeout=5)  # type: ignore[no-any-return]
            except queue_errors.Empty:
                if not child.is_alive():
                    raise SheetError(
                        N_(
                            "Reading this sheet stopped: it needed far more memory than a sheet "
                            "of its size should. Open it in your spreadsheet program, save a "
                            "fresh copy (or save it as .csv), and upload that."
                        )
                    ) from None

    try:
        if own_rows:
            until = start_after + own_rows
            first = min(FIRST_ROWS, chunk_rows)
            yield from read_chunks(path, plan, start_after, chunk_rows, first, until)
        while True:
            chunk = _received_chunk(*received())
            if chunk is None:
                return
            yield chunk
    finally:
        if child.is_alive():
            child.terminate()
        child.join(5)
        channel.close()
        channel.join_thread()


class Plan:
    """The mapping resolved to column positions, plus what applies to every row."""

    def __init__(
        self,
        kind: str,  # an ImportKind value
        mapping: dict[str, Any],
        region: str,
        list_id: int | None,
        reason: str | None,
    ) -> None:
        self.kind, self.mapping, self.region = kind, mapping, region
        self.list_id, self.reason = list_id, reason
        # A phone's later rows in the sheet: merged over its first (the last row wins), or
        # left out (the first row wins, the default: a repeat never renames a customer).
        self.keep_last = mapping.get("duplicates") == mappings.KEEP_LAST
        self.phone = 0
        self.names: list[int] = []
        self.attributes: list[tuple[int, str]] = []

    @classmethod
    def of(cls, imp: Import) -> Plan:
        # The kind as plain text: the reader process then needs no database models to unpickle.
        return cls(
            str(imp.kind), imp.mapping, imp.default_country or "US", imp.list_id, imp.opt_out_reason
        )

    def bind(self, header: list[str]) -> None:
        checked = mappings.validate(self.mapping, header)
        index = {h: i for i, h in enumerate(header)}
        self.phone = index[checked["phone"]]
        self.names = [index[c] for c in checked["name"]]
        self.attributes = [(index[c], k) for c, k in checked["attributes"].items()]
        # Each attribute's key as JSON text, '"key": ', ready for `read` to join.
        self._json_keys = [(i, _json_text(k) + ": ") for i, k in self.attributes]
        self.phone_column = checked["phone"]

    def read(self, number: int, cells: list[str]) -> tuple[Row | None, Issue | None]:
        result = _normalise(clean_cell(cells[self.phone]), self.region)
        e164 = result.e164
        if e164 is None:
            if result.error == "has no phone number":
                reason = said(
                    'row %(row)s: the "%(column)s" cell is empty',
                    row=number,
                    column=self.phone_column,
                )
            else:
                reason = said("row %(row)s: %(problem)s", row=number, problem=result.error)
            return None, (number, True, reason[:500], json.dumps(cells))
        name = " ".join([cells[i] for i in self.names if cells[i]]) or None
        # json.dumps of {key: cell} for the non-empty cells, byte for byte (the same string
        # encoder and separators), at a fifth of the cost: this runs for every row.
        pairs = [k + _json_text(cells[i]) for i, k in self._json_keys if cells[i]]
        attrs = "{" + ", ".join(pairs) + "}"
        row = (e164, name, attrs, result.country, result.timezone)
        landline = is_landline(e164)  # accepted (WhatsApp Business runs on one), but noted
        if not result.extras and not landline:
            return row, None
        # One whole sentence for each case, so pages can show it in the reader's language;
        # service.import_landlines finds the landline ones by LANDLINE_NOTE's words.
        if not result.extras:
            reason = said(
                "row %(row)s: imported %(phone)s; landline: may not reach a phone",
                row=number,
                phone=e164,
            )
        elif not landline:
            reason = said(
                "row %(row)s: imported %(phone)s; also holds %(others)s, not imported "
                "(one number per contact)",
                row=number,
                phone=e164,
                others=", ".join(result.extras),
            )
        else:
            reason = said(
                "row %(row)s: imported %(phone)s; also holds %(others)s, not imported "
                "(one number per contact); landline: may not reach a phone",
                row=number,
                phone=e164,
                others=", ".join(result.extras),
            )
        return row, (number, False, reason[:500], json.dumps(cells))
