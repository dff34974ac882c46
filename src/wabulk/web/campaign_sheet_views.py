"""The campaign page's "Download your sheet with results" (campaigns/sheet_results.py).

- Viewers may download it, as they may the report.
- The card on the campaign page (templates/campaigns/_sheet.html) asks `campaign_sheet`
  which sheets there are, or why there is none; the campaigns view passes nothing for it.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    after_this_request,
    flash,
    redirect,
    request,
    send_file,
    url_for,
)
from flask_login import current_user
from werkzeug.wrappers import Response as WResponse

from ..campaigns import lifecycle, sheet_results
from ..errors import Conflict, ValidationError
from ..models import Campaign, Role
from .helpers import db_session, get_settings, id_value
from .security import requires

bp = Blueprint("campaign_sheet", __name__, url_prefix="/campaigns")


@bp.app_context_processor
def _sheet_choice() -> dict[str, Any]:
    def campaign_sheet(campaign: Campaign) -> sheet_results.Choice:
        return sheet_results.sheets_for(db_session(), campaign, get_settings().instance_path)

    return {"campaign_sheet": campaign_sheet}


@bp.get("/<int:campaign_id>/sheet")
@requires(Role.VIEWER)
def download(campaign_id: int) -> WResponse:
    """The imported sheet with each row's results, in the sheet's own format."""
    session = db_session()
    lifecycle.get_campaign(session, campaign_id)  # NotFound: the 404 page
    import_id = request.args.get("import_id", type=id_value)
    settings = get_settings()
    try:
        written = sheet_results.write(
            session,
            campaign_id,
            import_id,
            current_user.timezone,
            settings.instance_path,
            settings.instance_path / "tmp",
        )
    except (Conflict, ValidationError) as exc:
        flash(str(exc), "warning")
        return redirect(url_for("campaigns.detail", campaign_id=campaign_id) + "#your-sheet")

    return send_written(written)


def send_written(written: sheet_results.Written) -> Any:
    """The filled-in sheet as a download; its file is removed once the answer is under way."""

    @after_this_request
    def _remove(response: Any) -> Any:
        written.path.unlink(missing_ok=True)  # send_file holds the open file; the name can go
        return response

    return send_file(
        written.path,
        as_attachment=True,
        download_name=written.download_name,
        mimetype=written.mimetype,
    )
