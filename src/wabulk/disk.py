"""Files the server stores for users (uploads): a full disk is a sentence, not a crash.

A write that fails for lack of space leaves nothing behind: callers copy into a temporary
name, remove it on any error, and give it its final name only once it is whole.
"""

from __future__ import annotations

import errno

# No space left, a disk quota reached, or a file-size limit set for the process: for the
# person uploading, all three mean the same thing, and only whoever runs the server can act.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in NO_SPACE


def disk_full_sentence(what: str) -> str:
    return (
        f"The server's disk is full, so {what} could not be stored. Nothing was saved; "
        "ask whoever runs wabulk to free some space, then try again."
    )
