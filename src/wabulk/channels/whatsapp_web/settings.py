"""A WhatsApp Web sender's own settings, checked once for the channel and the Senders form.

- `visible`: show the browser window (a desktop install) instead of running headless.
- `user_data_dir` + `profile_directory`: use an existing Chrome profile where WhatsApp Web
  is already logged in, instead of the sender's own folder under the instance folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..dry_run import SettingError

SETTINGS = {
    "visible": "Show the browser",
    "user_data_dir": "Chrome user-data folder",
    "profile_directory": "Chrome profile name",
    # Set by the Senders page's "Skip warm-up" (senders/warmup.py), not by the form.
    "warmup_skipped": "Skip the warm-up",
}


@dataclass(frozen=True)
class WebSettings:
    visible: bool = False
    user_data_dir: str = ""
    profile_directory: str = ""


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def clean_settings(raw: dict[str, object]) -> dict[str, object]:
    """The settings as stored; a bad one raises SettingError naming it."""
    clean: dict[str, object] = {}
    for key, _value in raw.items():
        if key not in SETTINGS:
            raise SettingError(key, f"Unknown WhatsApp Web setting {key!r}.")
    clean["visible"] = _flag(raw.get("visible", False))
    folder = str(raw.get("user_data_dir") or "").strip()
    profile = str(raw.get("profile_directory") or "").strip()
    if folder:
        path = Path(folder).expanduser()
        if not path.is_absolute():
            raise SettingError(
                "user_data_dir",
                "Give the Chrome user-data folder as a full path, "
                "e.g. /home/asha/.config/google-chrome.",
            )
        if not path.is_dir():
            raise SettingError("user_data_dir", f"There is no folder {folder} on this machine.")
        clean["user_data_dir"] = str(path)
    if profile:
        if not folder:
            raise SettingError(
                "profile_directory", "A profile name needs the Chrome user-data folder too."
            )
        if "/" in profile or "\\" in profile or profile in {".", ".."}:
            raise SettingError(
                "profile_directory",
                'A profile name is a folder name such as "Default" or "Profile 1", not a path.',
            )
        clean["profile_directory"] = profile
    if _flag(raw.get("warmup_skipped", False)):
        clean["warmup_skipped"] = True
    return clean


def web_settings(raw: dict[str, object]) -> WebSettings:
    return WebSettings(
        visible=_flag(raw.get("visible", False)),
        user_data_dir=str(raw.get("user_data_dir") or ""),
        profile_directory=str(raw.get("profile_directory") or ""),
    )
