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
