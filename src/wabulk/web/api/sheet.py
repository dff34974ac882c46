"""GET /campaigns/{id}/sheet: the imported sheet with each row's results, as a file."""

from __future__ import annotations

from flask import Response
from pydantic import Field

from ...campaigns import lifecycle, sheet_results
from ...campaigns.report import XLSX_MIME
from ..campaign_sheet_views import send_written
from .registry import Call, Id, Query, operation


class SheetQuery(Query):
    import_id: Id | None = Field(
        None,
        description="Which sheet, when several imports filled the campaign's lists "
        "(the 422 answer without it names them).",
    )


@operation(
    "GET",
    "/campaigns/{campaign_id}/sheet",
    summary="Download the campaign's sheet with results",
    tag="Campaigns",
    query=SheetQuery,
    produces=("text/csv", XLSX_MIME),
    errors=(404, 409, 422),
)
def campaign_sheet(call: Call, campaign_id: int, query: SheetQuery) -> Response:
    """The sheet imported into the campaign's list, every original row and column in
    place, plus Status, Sent at, Delivered at, Read at, Replied at (in your timezone),
    Reply and Failure reason. A CSV comes back as CSV, a workbook as .xlsx. 409 when the
    campaign has no such sheet or its file is no longer stored (the message says which)."""
    lifecycle.get_campaign(call.session, campaign_id)
    instance = call.settings.instance_path
    written = sheet_results.write(
        call.session, campaign_id, query.import_id, call.user.timezone, instance, instance / "tmp"
    )

    return send_written(written)
