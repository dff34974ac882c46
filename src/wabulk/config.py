"""Settings from WABULK_* environment variables.

- Every setting has a safe default; a malformed value fails loudly at start with the
  variable's name instead of being guessed.
- The secret key, when not given, is generated once into the instance folder and
  never printed or logged.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .disk import tighten

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A WABULK_* variable holds a value we cannot use."""


def _env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}")


def _env_int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number; got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}; got {value}")
    return value


def _env_str(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name)
    return default if raw is None or raw.strip() == "" else raw.strip()


@dataclass(frozen=True, repr=False)
class Settings:
    """The product's knobs. Build with `Settings.from_env()`; tests use `replace()`."""

    instance_path: Path = field(default_factory=lambda: Path("instance").resolve())
    database_url: str = ""
    secret_key: str = field(default="", repr=False)
    host: str = "127.0.0.1"
    port: int = 5000
    max_upload_mb: int = 50
    worker: bool = True
    log_level: str = "INFO"
    https: bool = False
    login_attempts_per_minute: int = 5
    # Dispatcher knobs live here so the worker, the CLI and the tests read one object.
    worker_poll_seconds: float = 2.0
    # How long a claimed message or a sender stays held by a worker that stops answering;
    # after it, recovery reconciles the message and another worker may take the sender.
    lease_seconds: int = 120
    # WhatsApp Web: the address (tests point it at a local stand-in), where ChromeDriver and
    # Chrome are when not on PATH, and how long a page may take before it counts as hung.
    whatsapp_web_url: str = "https://web.whatsapp.com"
    chromedriver: str = ""
    chrome_binary: str = ""
    browser_timeout: int = 60
    # Cloud API: Meta's Graph address (tests point it at a local stand-in), the API version
    # for new senders, and how long one call may take.
    cloud_api_url: str = "https://graph.facebook.com"
    cloud_api_version: str = "v26.0"
    cloud_api_timeout: int = 20
    # The address customers' browsers and Meta reach this installation by, for the webhook
    # URL shown on a Cloud API sender's page; empty: taken from the page's own address.
    public_url: str = ""
    # Web origins (scheme://host[:port]) whose pages may call the REST API with a token;
    # empty: no cross-origin calls.
    cors_origins: tuple[str, ...] = ()
    # Scale-out (docs/deployment.md). Web processes of `wabulk serve` (more than one: a
    # gunicorn pre-fork server, the dispatcher then runs only in `wabulk worker`); how many
    # reverse proxies stand in front (their X-Forwarded-* headers are then believed).
    web_processes: int = 1
    proxy_hops: int = 0
    # This worker's name (default: the host name) and labels; a sender with a worker label
    # is sent for only by workers carrying it.
    worker_name: str = ""
    worker_labels: tuple[str, ...] = ()
    # /metrics (Prometheus): answered to a request bearing this token, or to one from these
    # addresses (CIDR blocks); with neither set it is off.
    metrics_token: str = field(default="", repr=False)
    metrics_from: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        instance = Path(_env_str(env, "WABULK_INSTANCE_PATH", "instance")).expanduser().resolve()
        level = _env_str(env, "WABULK_LOG_LEVEL", "INFO").upper()
        if level not in LOG_LEVELS:
            raise ConfigError(
                f"WABULK_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}; got {level!r}"
            )
        return cls(
            instance_path=instance,
            database_url=_env_str(env, "WABULK_DATABASE_URL", ""),
            secret_key=_env_str(env, "WABULK_SECRET_KEY", ""),
            host=_env_str(env, "WABULK_HOST", "127.0.0.1"),
            port=_env_int(env, "WABULK_PORT", 5000, 1, 65535),
            max_upload_mb=_env_int(env, "WABULK_MAX_UPLOAD_MB", 50, 1, 4096),
            worker=_env_bool(env, "WABULK_WORKER", True),
            log_level=level,
            https=_env_bool(env, "WABULK_HTTPS", False),
            login_attempts_per_minute=_env_int(env, "WABULK_LOGIN_ATTEMPTS_PER_MINUTE", 5, 1, 1000),
            lease_seconds=_env_int(env, "WABULK_LEASE_SECONDS", 120, 2, 3600),
            whatsapp_web_url=_url(
                _env_str(env, "WABULK_WHATSAPP_WEB_URL", "https://web.whatsapp.com")
            ),
            chromedriver=_env_str(env, "WABULK_CHROMEDRIVER", ""),
            chrome_binary=_env_str(env, "WABULK_CHROME_BINARY", ""),
            browser_timeout=_env_int(env, "WABULK_BROWSER_TIMEOUT", 60, 2, 600),
            cors_origins=_origins(env.get("WABULK_CORS_ORIGINS", "")),
            cloud_api_url=_url(
                _env_str(env, "WABULK_CLOUD_API_URL", "https://graph.facebook.com"),
                "WABULK_CLOUD_API_URL",
            ),
            cloud_api_version=_version(_env_str(env, "WABULK_CLOUD_API_VERSION", "v26.0")),
            cloud_api_timeout=_env_int(env, "WABULK_CLOUD_API_TIMEOUT", 20, 1, 300),
            web_processes=_env_int(env, "WABULK_WEB_PROCESSES", 1, 1, 64),
            proxy_hops=_env_int(env, "WABULK_PROXY_HOPS", 0, 0, 5),
            worker_name=_env_str(env, "WABULK_WORKER_NAME", "")[:100],
            worker_labels=_labels(env.get("WABULK_WORKER_LABELS", "")),
            metrics_token=_env_str(env, "WABULK_METRICS_TOKEN", ""),
            metrics_from=_networks(env.get("WABULK_METRICS_FROM", "")),
            public_url=(
                _url(env["WABULK_PUBLIC_URL"], "WABULK_PUBLIC_URL")
                if env.get("WABULK_PUBLIC_URL")
                else ""
            ),
        )

    def channel_options(self) -> dict[str, object]:
        """What channels get of the installation's settings (see ChannelConfig.options)."""
        return {
            "whatsapp_web_url": self.whatsapp_web_url,
            "chromedriver": self.chromedriver,
            "chrome_binary": self.chrome_binary,
            "browser_timeout": self.browser_timeout,
            "cloud_api_url": self.cloud_api_url,
            "cloud_api_version": self.cloud_api_version,
            "cloud_api_timeout": self.cloud_api_timeout,
        }

    def resolved(self) -> Settings:
        """Fill what derives from the instance folder: database URL and secret key."""
        # Owner-only when we create it: it holds the database, uploads, logs and the key.
        self.instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        _tighten_data_folders(self.instance_path)
        url = self.database_url or f"sqlite:///{self.instance_path / 'wabulk.db'}"
        key = self.secret_key or _load_or_create_secret(self.instance_path / "secret_key")
        return replace(self, database_url=url, secret_key=key)

    def __repr__(self) -> str:
        # Settings end up in tracebacks and debug logs: never show the key or a DB password.
        items = ", ".join(f"{k}={v!r}" for k, v in self.public_items().items())
        return f"Settings({items})"

    def public_items(self) -> dict[str, object]:
        """Settings safe to show or log: secrets and credentials removed."""
        out: dict[str, object] = {}
        for f in fields(self):
            if f.name in ("secret_key", "metrics_token"):
                continue
            value = getattr(self, f.name)
            out[f.name] = redact_url(value) if f.name == "database_url" else value
        return out


def _url(value: str, name: str = "WABULK_WHATSAPP_WEB_URL") -> str:
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must start with http:// or https://; got {value!r}")
    return value.rstrip("/")


def _version(value: str) -> str:
    """A Graph API version such as v26.0."""
    if not re.fullmatch(r"v\d{1,3}\.\d{1,2}", value):
        raise ConfigError(f"WABULK_CLOUD_API_VERSION must look like v26.0; got {value!r}")
    return value


LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$")


def _labels(raw: str) -> tuple[str, ...]:
    labels = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    for label in labels:
        if not LABEL.match(label):
            raise ConfigError(
                "WABULK_WORKER_LABELS must be a comma-separated list of labels made of "
                f"letters, digits, '.', '_' and '-' (up to 60 each); got {label!r}"
            )
    return labels


def _networks(raw: str) -> tuple[str, ...]:
    out = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            out.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ConfigError(
                "WABULK_METRICS_FROM must list addresses or CIDR blocks such as "
                f"127.0.0.1,10.0.0.0/8; got {part!r}"
            ) from None
    return tuple(out)


def _origins(raw: str) -> tuple[str, ...]:
    """Exact origins only: a wildcard or a path would open the API wider than meant."""
    out: list[str] = []
    for item in raw.split(","):
        origin = item.strip()
        if not origin:
            continue
        if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", origin):
            raise ConfigError(
                "WABULK_CORS_ORIGINS must list origins such as https://shop.example.com "
                f"(scheme and host, optional port, no path), separated by commas; got {origin!r}"
            )
        out.append(origin.lower())
    return tuple(dict.fromkeys(out))


def redact_url(url: str) -> str:
    """Hide the password in a database URL so it can be shown or logged."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True) if url else url
    except Exception:
        return "<unparseable database URL>"


# Folders of customer data an older install may have made readable by others: uploaded
# sheets, attachments, screenshots of chats, the browsers' WhatsApp sessions and the dry
# runs' delivery logs. The
# instance folder itself is left as the admin set it (backups may need to read it).
DATA_FOLDERS = ("imports", "media", "screenshots", "browsers", "tmp", "dry_run")


def _tighten_data_folders(instance_path: Path) -> None:
    for name in DATA_FOLDERS:
        tighten(instance_path / name)


def _load_or_create_secret(path: Path) -> str:
    if path.exists():
        tighten(path)  # a key copied in with looser modes
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
    key = secrets.token_hex(32)
    # Created with 0600 from the start so the key is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key)
    logging.getLogger(__name__).info("generated a new secret key in the instance folder")
    return key
