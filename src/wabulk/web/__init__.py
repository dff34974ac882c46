"""HTTP: blueprints, templates and static files. Views are thin; rules live in services."""

from __future__ import annotations

from flask import Flask

from . import db_errors, helpers, security
from .activity_views import bp as activity_bp
from .api import bp as api_bp
from .api import docs_bp as api_docs_bp
from .auth_views import bp as auth_bp
from .campaign_sheet_views import bp as campaign_sheet_bp
from .campaigns import bp as campaigns_bp
from .contacts_views import bp as contacts_bp
from .demo_views import bp as demo_bp
from .followups import bp as followups_bp
from .health import bp as health_bp
from .imports_views import bp as imports_bp
from .inbox import bp as inbox_bp
from .inbox import quick_replies_bp
from .integrations import bp as integrations_bp
from .pages import bp as pages_bp
from .recurrences import bp as recurrences_bp
from .segments import bp as segments_bp
from .senders_views import bp as senders_bp
from .settings_views import bp as settings_bp
from .templates_views import bp as templates_bp
from .webhooks_views import bp as webhooks_bp
from .workers_views import bp as workers_bp


def init_app(app: Flask) -> None:
    security.init_app(app)
    db_errors.init_app(app)
    helpers.init_app(app)
    blueprints = (
        auth_bp,
        pages_bp,
        inbox_bp,
        quick_replies_bp,
        activity_bp,
        contacts_bp,
        segments_bp,
        imports_bp,
        templates_bp,
        campaigns_bp,
        followups_bp,
        recurrences_bp,
        campaign_sheet_bp,
        senders_bp,
        settings_bp,
        workers_bp,
        integrations_bp,
        demo_bp,
        api_bp,
        api_docs_bp,
        webhooks_bp,
        health_bp,
    )
    for bp in blueprints:
        app.register_blueprint(bp)
