"""Log lines: one per event, with the campaign and message ids when there are any."""

from __future__ import annotations

import logging

from wabulk import logs


def test_lines_carry_campaign_and_message_ids(tmp_path) -> None:
    logs.configure(tmp_path, "INFO")
    log = logging.getLogger("wabulk.test")
    log.info("sent", extra={"campaign_id": 12, "message_id": 345})
    log.info("no ids here")
    log.warning("two\nlines")
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = (tmp_path / logs.LOG_FILE).read_text().splitlines()
    assert lines[-3].endswith("INFO wabulk.test [campaign=12 message=345] sent")
    assert lines[-2].endswith("INFO wabulk.test no ids here")
    assert lines[-1].endswith("WARNING wabulk.test two\\nlines")


def test_configure_twice_does_not_duplicate_lines(tmp_path) -> None:
    logs.configure(tmp_path, "INFO")
    logs.configure(tmp_path, "INFO")
    logging.getLogger("wabulk.test").info("once")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert (tmp_path / logs.LOG_FILE).read_text().count("once") == 1


_WRITER = """
import logging, sys
from pathlib import Path
from wabulk import logs
logs.configure(Path(sys.argv[1]), "INFO")
for handler in list(logging.getLogger().handlers):
    if isinstance(handler, logs.PrivateRotatingFileHandler):
        handler.maxBytes = 20_000
        handler.backupCount = 1000
    elif isinstance(handler, logging.StreamHandler):
        logging.getLogger().removeHandler(handler)
for i in range(3000):
    logging.getLogger("writer").info("line %s-%05d", sys.argv[2], i)
"""


def test_processes_sharing_the_file_lose_no_line_at_rollovers(tmp_path) -> None:
    """Web processes and workers on one machine write one log: every line of each is kept
    once, across the rollovers any of them makes."""
    import subprocess
    import sys

    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), name])
        for name in ("a", "b", "c")
    ]
    for writer in writers:
        assert writer.wait(timeout=300) == 0
    lines: list[str] = []
    for path in tmp_path.glob(logs.LOG_FILE + "*"):
        if not path.name.endswith(".lock"):
            lines += [ln for ln in path.read_text().splitlines() if " line " in ln]
    said = [ln.rsplit(" line ", 1)[1] for ln in lines]
    assert len(said) == len(set(said)) == 9000
    assert len(list(tmp_path.glob(logs.LOG_FILE + ".*"))) > 10  # it did roll over, many times
