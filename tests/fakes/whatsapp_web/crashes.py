"""Crashing Chromium on cue for the stand-in's faults (reads /proc; psutil is not a dependency)."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line joined by spaces) for every process we can read.

    Joined, because Chromium's zygote children rewrite their command line into a single
    space-separated string: "--type=renderer" is never an argument of its own there.
    """
    table: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # exited meanwhile, or not ours to read
            continue
        # The command name in stat may contain spaces and parentheses: split after it.
        parent = int(stat[stat.rfind(")") + 2 :].split()[1])
        table[int(entry)] = (parent, " ".join(a.decode(errors="replace") for a in argv if a))
    return table


def _lineage(pid: int, table: dict[int, tuple[int, str]]) -> list[int]:
    chain = []
    while pid in table and pid not in chain:
        chain.append(pid)
        pid = table[pid][0]
    return chain


def _belongs(pid: int, table: dict[int, tuple[int, str]], profile: str | None) -> bool:
    """Renderers do not carry --user-data-dir, so look at their ancestors too.

    Without a profile only browsers started by this process (through ChromeDriver) count:
    other suites may be running Chromium on the same machine.
    """
    chain = _lineage(pid, table)
    if profile is None:
        return os.getpid() in chain[1:]
    return any(profile in table[p][1] for p in chain)


def kill_renderers(profile: str | None) -> list[int]:
    table = _processes()
    victims = [
        pid
        for pid, (_, command) in table.items()
        if "--type=renderer" in command.split() and _belongs(pid, table, profile)
    ]
    return _kill(victims)


def kill_browser(profile: str | None) -> list[int]:
    table = _processes()
    # The browser is the one Chromium process without --type= (ChromeDriver has no
    # --user-data-dir, which tells the two apart when no profile is given).
    roots = [
        pid
        for pid, (_, command) in table.items()
        if " --type=" not in command
        and " --user-data-dir" in command
        and _belongs(pid, table, profile)
    ]
    # Children first in the list is irrelevant: SIGKILL cannot be caught, and collecting
    # the whole tree before killing keeps re-parented children in it.
    victims = [pid for pid in table if any(root in _lineage(pid, table) for root in roots)]
    return _kill(victims)


def _kill(pids: list[int]) -> list[int]:
    killed = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except OSError:
            pass
    return killed
