"""A WhatsApp Web sender's own settings, checked once for the channel and the Senders form.

- `visible`: show the browser window (a desktop install) instead of running headless.
- `user_data_dir` + `profile_directory`: use an existing Chrome profile where WhatsApp Web
  is already logged in, instead of the sender's own folder under the instance folder.
- `read_replies`: open the chats of recipients who wrote back to store their replies (which
  marks them read on the phone too); off, only the chat list's ticks are read.
- `hear_days`: how many days after its last send the sender keeps reading ticks and replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...words import N_, said
from ..dry_run import SettingError

SETTINGS = {
    "visible": "Show the browser",
    "user_data_dir": "Chrome user-data folder",
    "profile_directory": "Chrome profile name",
    "read_replies": "Read customers' replies",
    "hear_days": "Days to keep reading after a campaign",
    # Set by the Senders page's "Skip warm-up" (senders/warmup.py), not by the form.
    "warmup_skipped": "Skip the warm-up",
}


HEAR_DAYS = 3
MAX_HEAR_DAYS = 30


@dataclass(frozen=True)
class WebSettings:
    visible: bool = False
    user_data_dir: str = ""
    profile_directory: str = ""
    read_replies: bool = True
    hear_days: int = HEAR_DAYS


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def clean_settings(raw: dict[str, object]) -> dict[str, object]:
    """The settings as stored; a bad one raises SettingError naming it."""
    clean: dict[str, object] = {}
    for key, _value in raw.items():
        if key not in SETTINGS:
            raise SettingError(key, said("Unknown WhatsApp Web setting %(key)s.", key=repr(key)))
    clean["visible"] = _flag(raw.get("visible", False))
    clean["read_replies"] = _flag(raw.get("read_replies", True))
    clean["hear_days"] = _days(raw.get("hear_days"))
    folder = str(raw.get("user_data_dir") or "").strip()
    profile = str(raw.get("profile_directory") or "").strip()
    if folder:
        path = Path(folder).expanduser()
        if not path.is_absolute():
            raise SettingError(
                "user_data_dir",
                N_(
                    "Give the Chrome user-data folder as a full path, "
                    "e.g. /home/asha/.config/google-chrome."
                ),
            )
        if not path.is_dir():
            raise SettingError(
                "user_data_dir",
                said("There is no folder %(folder)s on this machine.", folder=folder),
            )
        clean["user_data_dir"] = str(path)
    if profile:
        if not folder:
            raise SettingError(
                "profile_directory", N_("A profile name needs the Chrome user-data folder too.")
            )
        if "/" in profile or "\\" in profile or profile in {".", ".."}:
            raise SettingError(
                "profile_directory",
                N_('A profile name is a folder name such as "Default" or "Profile 1", not a path.'),
            )
        clean["profile_directory"] = profile
    if _flag(raw.get("warmup_skipped", False)):
        clean["warmup_skipped"] = True
    return clean


def _days(value: object) -> int:
    if value is None or str(value).strip() == "":
        return HEAR_DAYS
    try:
        days = float(str(value).strip())
    except ValueError:
        raise SettingError("hear_days", N_("Give the days to keep reading as a number.")) from None
    if days != int(days) or not 0 <= days <= MAX_HEAR_DAYS:
        raise SettingError(
            "hear_days",
            said(
                "Give the days to keep reading as a whole number from 0 to %(most)s.",
                most=MAX_HEAR_DAYS,
            ),
        )
    return int(days)


def _stored_days(value: object) -> int:
    try:
        return _days(value)
    except SettingError:  # stored before this setting was checked: the default
        return HEAR_DAYS


def web_settings(raw: dict[str, object]) -> WebSettings:
    return WebSettings(
        visible=_flag(raw.get("visible", False)),
        user_data_dir=str(raw.get("user_data_dir") or ""),
        profile_directory=str(raw.get("profile_directory") or ""),
        read_replies=_flag(raw.get("read_replies", True)),
        hear_days=_stored_days(raw.get("hear_days")),
    )
