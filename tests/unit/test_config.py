"""Settings from WABULK_* variables: defaults, loud failures, the generated secret key."""

from __future__ import annotations

import stat

import pytest

from wabulk.config import ConfigError, Settings, redact_url


def test_defaults(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert (s.host, s.port, s.max_upload_mb, s.worker, s.log_level) == (
        "127.0.0.1",
        5000,
        50,
        True,
        "INFO",
    )
    assert s.instance_path == tmp_path / "instance"
    resolved = s.resolved()
    assert resolved.database_url == f"sqlite:///{tmp_path / 'instance' / 'wabulk.db'}"


def test_values_are_read(tmp_path) -> None:
    s = Settings.from_env(
        {
            "WABULK_INSTANCE_PATH": str(tmp_path / "inst"),
            "WABULK_PORT": "8080",
            "WABULK_HOST": "192.0.2.10",
            "WABULK_WORKER": "off",
            "WABULK_MAX_UPLOAD_MB": "5",
            "WABULK_LOG_LEVEL": "debug",
            "WABULK_DATABASE_URL": "postgresql+psycopg://u:p@h/db",
            "WABULK_SECRET_KEY": "s3cret",
            "WABULK_HTTPS": "yes",
        }
    )
    assert (s.port, s.host, s.worker, s.max_upload_mb, s.log_level, s.https) == (
        8080,
        "192.0.2.10",
        False,
        5,
        "DEBUG",
        True,
    )
    assert s.instance_path == tmp_path / "inst"
    assert s.secret_key == "s3cret"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WABULK_PORT", "http", "WABULK_PORT must be a whole number; got 'http'"),
        ("WABULK_PORT", "70000", "WABULK_PORT must be between 1 and 65535; got 70000"),
        ("WABULK_WORKER", "maybe", "WABULK_WORKER must be one of"),
        ("WABULK_LOG_LEVEL", "LOUD", "WABULK_LOG_LEVEL must be one of"),
        ("WABULK_MAX_UPLOAD_MB", "0", "WABULK_MAX_UPLOAD_MB must be between"),
    ],
)
def test_malformed_values_fail_loudly_naming_the_variable(name, value, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Settings.from_env({name: value})


def test_secret_key_is_generated_once_and_private(tmp_path) -> None:
    s = Settings(instance_path=tmp_path)
    first = s.resolved().secret_key
    assert len(first) == 64
    assert s.resolved().secret_key == first
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600


def test_public_items_hide_secrets(tmp_path) -> None:
    s = Settings(
        instance_path=tmp_path,
        secret_key="top-secret",
        database_url="postgresql+psycopg://wabulk:hunter2@db/wabulk",
    )
    shown = repr(s) + repr(s.public_items())
    assert "top-secret" not in shown and "hunter2" not in shown
    assert redact_url("postgresql+psycopg://u:pw@h/d") == "postgresql+psycopg://u:***@h/d"


def test_whatsapp_web_settings_reach_channels_and_bad_ones_are_named() -> None:
    settings = Settings.from_env(
        {
            "WABULK_WHATSAPP_WEB_URL": "http://127.0.0.1:8765/",
            "WABULK_CHROMEDRIVER": "/opt/chromedriver",
            "WABULK_BROWSER_TIMEOUT": "15",
        }
    )
    assert settings.channel_options() == {
        "whatsapp_web_url": "http://127.0.0.1:8765",
        "chromedriver": "/opt/chromedriver",
        "chrome_binary": "",
        "browser_timeout": 15,
        "cloud_api_url": "https://graph.facebook.com",
        "cloud_api_version": "v26.0",
        "cloud_api_timeout": 20,
    }
    with pytest.raises(ConfigError, match="WABULK_WHATSAPP_WEB_URL must start with http"):
        Settings.from_env({"WABULK_WHATSAPP_WEB_URL": "web.whatsapp.com"})
    with pytest.raises(ConfigError, match="WABULK_BROWSER_TIMEOUT must be between 2 and 600"):
        Settings.from_env({"WABULK_BROWSER_TIMEOUT": "0"})


def test_cloud_api_settings_reach_channels_and_bad_ones_are_named() -> None:
    settings = Settings.from_env(
        {
            "WABULK_CLOUD_API_URL": "http://127.0.0.1:9000/",
            "WABULK_CLOUD_API_VERSION": "v25.0",
            "WABULK_CLOUD_API_TIMEOUT": "7",
            "WABULK_PUBLIC_URL": "https://shop.example.com/",
        }
    )
    options = settings.channel_options()
    assert (options["cloud_api_url"], options["cloud_api_version"]) == (
        "http://127.0.0.1:9000",
        "v25.0",
    )
    assert options["cloud_api_timeout"] == 7
    assert settings.public_url == "https://shop.example.com"
    assert Settings.from_env({}).public_url == ""
    with pytest.raises(ConfigError, match=r"WABULK_CLOUD_API_VERSION must look like v26\.0"):
        Settings.from_env({"WABULK_CLOUD_API_VERSION": "26"})
    with pytest.raises(ConfigError, match="WABULK_CLOUD_API_URL must start with http"):
        Settings.from_env({"WABULK_CLOUD_API_URL": "graph.facebook.com"})
    with pytest.raises(ConfigError, match="WABULK_PUBLIC_URL must start with http"):
        Settings.from_env({"WABULK_PUBLIC_URL": "shop.example.com"})


def test_cors_origins_are_exact_origins_and_bad_ones_are_named() -> None:
    assert Settings.from_env({}).cors_origins == ()
    settings = Settings.from_env(
        {"WABULK_CORS_ORIGINS": " https://Shop.example.com, http://localhost:8080 ,"}
    )
    assert settings.cors_origins == ("https://shop.example.com", "http://localhost:8080")
    for bad in ("*", "https://shop.example.com/", "shop.example.com", "https://a.com/path"):
        with pytest.raises(ConfigError, match="WABULK_CORS_ORIGINS must list origins"):
            Settings.from_env({"WABULK_CORS_ORIGINS": bad})


def test_a_postgresql_url_without_its_driver_says_how_to_install_it(monkeypatch) -> None:
    import sys

    from wabulk.config import ConfigError
    from wabulk.db import make_engine

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"make install.*wabulk\[postgres\]"):
        make_engine("postgresql+psycopg://wabulk:secret@db.internal/wabulk")
