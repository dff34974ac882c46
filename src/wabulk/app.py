"""create_app(): settings, database, logging, security, blueprints, CLI."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Flask

from . import logs
from .config import Settings
from .db import Database


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """Build the web app. Nothing is connected or read before this is called.

    - `settings` defaults to the WABULK_* environment; `overrides` replace single fields.
    """
    settings = settings or Settings.from_env()
    if overrides:
        settings = replace(settings, **overrides)
    settings = settings.resolved()
    logs.configure(settings.instance_path, settings.log_level)

    app = Flask(
        __name__,
        instance_path=str(settings.instance_path),
        static_folder="web/static",
        template_folder="web/templates",
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_upload_mb * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.https,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.https,
        PREFERRED_URL_SCHEME="https" if settings.https else "http",
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session instead; long forms must not expire
        WTF_CSRF_SSL_STRICT=settings.https,
    )
    app.extensions["wabulk.settings"] = settings
    app.extensions["wabulk.db"] = Database(settings.database_url)

    from .web import init_app as init_web

    init_web(app)
    if settings.proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Only as many X-Forwarded-* values as there are proxies of ours are believed: a
        # client's own header to the first proxy must not choose its address or scheme.
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops
        )
    return app
