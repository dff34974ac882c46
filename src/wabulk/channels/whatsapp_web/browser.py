"""Starting Chrome for one sender: which driver, which flags, which profile folder.

- ChromeDriver is found in this order: the configured path (WABULK_CHROMEDRIVER), the one
  on PATH, then Selenium Manager. When none works the error names what to install.
- The sandbox stays on, except as root, where Chrome refuses to start with it.
- Each sender has its own profile folder under the instance folder, so its WhatsApp login
  survives restarts. A sender may instead use an existing Chrome profile (user-data
  directory plus profile name), as many teams already have WhatsApp Web open there.
- A worker killed with its browser still running leaves that Chrome holding our profile.
  The caller holds the sender's lease, so such a Chrome is an orphan: it is stopped before
  starting a new one. A user's own profile is never touched that way: we ask them to close
  their Chrome instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service

from ...words import N_, said

log = logging.getLogger(__name__)
PROBE_TRIES = 3

INSTALL_HINT = (
    "Install Google Chrome or Chromium and its ChromeDriver (Debian/Ubuntu: "
    "sudo apt-get install chromium chromium-driver), or set WABULK_CHROMEDRIVER to the "
    "chromedriver program and WABULK_CHROME_BINARY to the browser."
)
BROWSER_NAMES = ("google-chrome", "google-chrome-stable", "chromium", "chromium-browser", "chrome")
_UNSAFE = re.compile(r"[^\w.\- ]+")


class BrowserFailed(Exception):
    """Chrome could not be started; the message says what to do."""


@dataclass(frozen=True)
class BrowserOptions:
    user_data_dir: Path
    profile_directory: str | None = None
    # True for the folder we created under the instance folder (orphans may be stopped).
    own_profile: bool = True
    visible: bool = False
    chrome_binary: str | None = None
    chromedriver: str | None = None
    page_timeout: float = 60.0


def profile_folder(instance_path: Path, sender_name: str) -> Path:
    """The sender's own profile folder; the name is cleaned, never used as a path."""
    safe = _UNSAFE.sub("_", sender_name).strip(" .") or "sender"
    return instance_path / "browsers" / safe


def find_chromedriver(configured: str | None) -> str | None:
    """The configured driver, else the one on PATH, else None (Selenium Manager's turn)."""
    if configured:
        path = Path(configured).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BrowserFailed(
                said(
                    "WABULK_CHROMEDRIVER is %(path)s, which is not an executable file. "
                    "Install Google Chrome or Chromium and its ChromeDriver (Debian/Ubuntu: "
                    "sudo apt-get install chromium chromium-driver), or set WABULK_CHROMEDRIVER to "
                    "the chromedriver program and WABULK_CHROME_BINARY to the browser.",
                    path=repr(configured),
                )
            )
        return str(path)
    return shutil.which("chromedriver")


def find_chrome(configured: str | None) -> str | None:
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise BrowserFailed(
                said(
                    "WABULK_CHROME_BINARY is %(path)s, which does not exist. "
                    "Install Google Chrome or Chromium and its ChromeDriver (Debian/Ubuntu: "
                    "sudo apt-get install chromium chromium-driver), or set WABULK_CHROMEDRIVER to "
                    "the chromedriver program and WABULK_CHROME_BINARY to the browser.",
                    path=repr(configured),
                )
            )
        return str(path)
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def chrome_options(opts: BrowserOptions, binary: str | None) -> webdriver.ChromeOptions:
    o = webdriver.ChromeOptions()
    if binary:
        o.binary_location = binary
    o.add_argument(f"--user-data-dir={opts.user_data_dir}")
    if opts.profile_directory:
        o.add_argument(f"--profile-directory={opts.profile_directory}")
    if not opts.visible:
        o.add_argument("--headless=new")
        o.add_argument("--disable-gpu")
    if os.geteuid() == 0:
        o.add_argument("--no-sandbox")  # Chrome will not start as root with its sandbox
    for flag in (
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--window-size=1280,900",
        "--lang=en-US",
    ):
        o.add_argument(flag)
    # No "Chrome is being controlled by automated software" bar or automation extension.
    o.add_experimental_option("excludeSwitches", ["enable-automation"])
    o.add_experimental_option("useAutomationExtension", False)
    o.page_load_strategy = "normal"
    return o


def _lock_owner(profile: Path) -> int | None:
    """The pid of a live Chrome on this machine holding `profile`, if any."""
    try:
        target = os.readlink(profile / "SingletonLock")
    except OSError:
        return None
    host, _, pid_text = target.rpartition("-")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return None
    return pid if str(profile) in cmdline else None


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[1])


def free_profile(opts: BrowserOptions) -> None:
    """Stop an orphaned Chrome on our own profile; refuse to touch a user's open Chrome."""
    pid = _lock_owner(opts.user_data_dir)
    if pid is None:
        return
    if not opts.own_profile:
        raise BrowserFailed(
            said(
                "The Chrome profile %(path)s is open in another Chrome window. Close that Chrome "
                "(one browser at a time can drive a WhatsApp account), then link again.",
                path=opts.user_data_dir,
            )
        )
    driver_pid = _parent(pid)
    log.warning("stopping an orphaned Chrome (pid %s) left on %s", pid, opts.user_data_dir)
    for victim in (pid, driver_pid if driver_pid and _parent(driver_pid) == 1 else None):
        if victim:
            with contextlib.suppress(OSError):
                os.kill(victim, signal.SIGKILL)
    for name in ("SingletonLock", "SingletonSocket", "SingletonCookie"):
        with contextlib.suppress(OSError):
            (opts.user_data_dir / name).unlink()


def _did_not_start(error: str) -> str:
    return said(
        "Chrome did not start: %(error)s. "
        "Install Google Chrome or Chromium and its ChromeDriver (Debian/Ubuntu: "
        "sudo apt-get install chromium chromium-driver), or set WABULK_CHROMEDRIVER to "
        "the chromedriver program and WABULK_CHROME_BINARY to the browser.",
        error=error,
    )


def start(opts: BrowserOptions) -> webdriver.Chrome:
    """A Chrome for one sender, ready to load WhatsApp Web."""
    no_desktop = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if opts.visible and sys.platform.startswith("linux") and no_desktop:
        raise BrowserFailed(
            N_(
                "This sender is set to show its browser, but this machine has no desktop "
                "(no DISPLAY). Untick “show the browser” or run wabulk on a desktop."
            )
        )
    if opts.own_profile:
        opts.user_data_dir.mkdir(parents=True, exist_ok=True)
    elif not opts.user_data_dir.is_dir():
        raise BrowserFailed(
            said("The Chrome profile folder %(path)s does not exist.", path=opts.user_data_dir)
        )
    free_profile(opts)
    driver_path = find_chromedriver(opts.chromedriver)
    binary = find_chrome(opts.chrome_binary)
    service = Service(executable_path=driver_path) if driver_path else Service()
    try:
        driver = webdriver.Chrome(options=chrome_options(opts, binary), service=service)
    except WebDriverException as exc:
        first = (exc.msg or str(exc)).strip().splitlines()[0] if (exc.msg or str(exc)) else ""
        if driver_path is None:
            raise BrowserFailed(
                N_(
                    "No ChromeDriver was found. "
                    "Install Google Chrome or Chromium and its ChromeDriver (Debian/Ubuntu: "
                    "sudo apt-get install chromium chromium-driver), or set WABULK_CHROMEDRIVER to "
                    "the chromedriver program and WABULK_CHROME_BINARY to the browser."
                )
            ) from None
        raise BrowserFailed(_did_not_start(first)) from None
    except OSError as exc:
        raise BrowserFailed(_did_not_start(str(exc))) from None
    driver.set_page_load_timeout(opts.page_timeout)
    driver.set_script_timeout(min(30.0, opts.page_timeout))
    # A browser started right after another crashed, on a busy machine, may take longer
    # than the script timeout to answer its first script: ask again before giving up on it.
    for attempt in range(PROBE_TRIES):
        try:
            _normal_user_agent(driver)
            break
        except TimeoutException:
            if attempt == PROBE_TRIES - 1:
                stop(driver)
                raise BrowserFailed(
                    "Chrome started but its page did not answer. Close other programs or "
                    "restart the computer, then try again."
                ) from None
            log.warning("Chrome's first page did not answer yet; asking again")
    return driver


def _normal_user_agent(driver: webdriver.Chrome) -> None:
    """Headless Chrome says "HeadlessChrome", which WhatsApp Web may refuse."""
    agent = driver.execute_script("return navigator.userAgent")
    if "Headless" in agent:
        driver.execute_cdp_cmd(
            "Emulation.setUserAgentOverride",
            {"userAgent": agent.replace("HeadlessChrome", "Chrome")},
        )


def stop(driver: webdriver.Chrome | None) -> None:
    if driver is None:
        return
    try:
        driver.quit()
    except Exception:  # already dead: nothing to give back
        log.debug("driver.quit failed", exc_info=True)
