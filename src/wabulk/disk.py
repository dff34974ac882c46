"""Files the server keeps for users: owner-only, and a full disk is a sentence, not a crash.

- The database, logs, uploads and key hold customers' numbers: created 0600 (folders 0700),
  and looser modes an older install left are tightened.
- A write that fails for lack of space leaves nothing behind: callers copy into a temporary
  name, remove it on any error, and give it its final name only once it is whole.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

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


def private_file(path: Path) -> None:
    """Readable and writable by wabulk's own user only, like the secret key.

    Created that way when missing (never briefly open to others); an existing file with
    looser modes, from an older version or a copy, is tightened. A file owned by someone
    else is left as it is: tightening is best effort, never a reason not to start.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        tighten(path)
    except OSError:
        pass  # a folder we may not write in: SQLite says so in its own words when it opens


def tighten(path: Path) -> None:
    """Take away what group and others may do with it (0644 -> 0600, 0755 -> 0700), adding
    nothing for the owner (a read-only file stays read-only); best effort."""
    with contextlib.suppress(OSError):
        now = stat.S_IMODE(path.stat().st_mode)
        if now & 0o077:
            path.chmod(now & 0o700)
