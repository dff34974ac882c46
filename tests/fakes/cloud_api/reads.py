"""The Graph API's read side and media upload: number fields, template pages, media.

- `GET /{pnid}?fields=` answers only the fields asked for (plus `id`), like Graph; an unknown
  field is error 100. `GET /{waba_id}/message_templates` pages with `limit` and base64
  `after` cursors, `paging.next` only when more remain; a token without that account gets 200.
- `POST /{pnid}/media` checks the MIME type against spec §3's table, its size cap, the part's
  own content type and, for JPEG/PNG/PDF, the leading bytes: any mismatch is 131053.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from aiohttp import web

from tests.fakes.cloud_api.state import MAGIC, MEDIA_TYPES, GraphError, Number, Template, error_body

NUMBER_FIELDS = {
    "id": lambda n: n.phone_number_id,
    "display_phone_number": lambda n: n.display_phone,
    "verified_name": lambda n: n.display_name,
    "quality_rating": lambda n: n.quality,
    "throughput": lambda n: {"level": n.throughput},
    "whatsapp_business_manager_messaging_limit": lambda n: n.tier,
    "messaging_limit_tier": lambda n: n.tier,
    "code_verification_status": lambda n: "VERIFIED",
    "name_status": lambda n: "APPROVED",
    "platform_type": lambda n: "CLOUD_API",
}
DEFAULT_NUMBER_FIELDS = (
    "verified_name",
    "display_phone_number",
    "quality_rating",
    "throughput",
    "id",
)
TEMPLATE_FIELDS = (
    "id",
    "name",
    "language",
    "status",
    "category",
    "quality_score",
    "parameter_format",
    "components",
)


def answer(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json"
    )


def fail(error: GraphError) -> web.Response:
    return answer(error_body(error), error.http_status)


def no_object(node: str) -> GraphError:
    return GraphError(
        100,
        f"Unsupported request. Object with ID '{node}' does not exist, cannot be loaded due to "
        "missing permissions, or does not support this operation.",
    )


class GraphReads:
    """A mixin of FakeCloudApi; the attributes below are the server's."""

    host: str
    port: int
    numbers: dict[str, Number]
    templates: dict[str, dict[tuple[str, str], Template]]
    media: dict[str, dict[str, Any]]
    _media_bytes: dict[str, bytes]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _token(self, request: web.Request) -> str:
        raise NotImplementedError  # provided by FakeCloudApi

    def _authorised_number(self, request: web.Request, pnid: str) -> Number:
        raise NotImplementedError  # provided by FakeCloudApi

    def _can_see_waba(self, token: str, waba_id: str) -> bool:
        return any(n.token == token and n.waba_id == waba_id for n in self.numbers.values())

    def _new_id(self) -> str:
        raise NotImplementedError  # provided by FakeCloudApi

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        try:
            number = self._authorised_number(request, request.match_info["pnid"])
            if not request.content_type.startswith("multipart/"):
                raise GraphError(100, "Media upload must be multipart/form-data.")
            form = await request.post()
            if form.get("messaging_product") != "whatsapp":
                raise GraphError(100, "The parameter messaging_product must be 'whatsapp'.")
            part = form.get("file")
            if not isinstance(part, web.FileField):
                raise GraphError(131008, "The parameter file is required.")
            mime = str(form.get("type") or "")
            if not mime:
                raise GraphError(131008, "The parameter type is required.")
            if mime not in MEDIA_TYPES:
                raise GraphError(131053, f"Unsupported file type {mime}.")
            if (
                part.content_type
                and part.content_type != "application/octet-stream"
                and part.content_type != mime
            ):
                raise GraphError(
                    131053, f"The file is sent as {part.content_type} but type says {mime}."
                )
            data = part.file.read()
            kind, cap = MEDIA_TYPES[mime]
            if len(data) > cap:
                raise GraphError(
                    131053,
                    f"The file is {len(data)} bytes; {kind} files may be {cap} bytes at most.",
                )
            if mime in MAGIC and not data.startswith(MAGIC[mime]):
                raise GraphError(131053, f"The file's content is not {mime}.")
        except GraphError as error:
            return fail(error)
        media_id = self._new_id()
        self._media_bytes[media_id] = data
        self.media[media_id] = {
            "mime": mime,
            "filename": part.filename,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "kind": kind,
            "pnid": number.phone_number_id,
        }
        return answer({"id": media_id})

    def _media_for(self, request: web.Request, node: str) -> dict[str, Any] | None:
        token = self._token(request)
        found = self.media.get(node)
        if found is None or self.numbers.get(found["pnid"], None) is None:
            return None
        return found if self.numbers[found["pnid"]].token == token else None

    async def _get_node(self, request: web.Request) -> web.StreamResponse:
        node = request.match_info["node"]
        try:
            token = self._token(request)
            number = self.numbers.get(node)
            if number is not None and number.token == token:
                return answer(self._fields(number, request.query.get("fields")))
            found = self._media_for(request, node)
            if found is not None:
                return answer(
                    {
                        "messaging_product": "whatsapp",
                        "url": f"{self.base_url}/_media/{node}",
                        "mime_type": found["mime"],
                        "sha256": found["sha256"],
                        "file_size": found["size"],
                        "id": node,
                    }
                )
            if self._can_see_waba(token, node):
                first = next(n for n in self.numbers.values() if n.waba_id == node)
                return answer({"id": node, "name": first.display_name})
            raise no_object(node)
        except GraphError as error:
            return fail(error)

    def _fields(self, number: Number, fields: str | None) -> dict[str, Any]:
        names = (
            [f.strip() for f in fields.split(",") if f.strip()]
            if fields
            else list(DEFAULT_NUMBER_FIELDS)
        )
        for name in names:
            if name not in NUMBER_FIELDS:
                raise GraphError(
                    100,
                    f"Tried accessing nonexisting field ({name}) on node type "
                    "(WhatsAppBusinessPhoneNumber)",
                )
        result = {name: NUMBER_FIELDS[name](number) for name in names}
        result["id"] = number.phone_number_id
        return result

    async def _delete_node(self, request: web.Request) -> web.StreamResponse:
        node = request.match_info["node"]
        try:
            if self._media_for(request, node) is None:
                raise no_object(node)
        except GraphError as error:
            return fail(error)
        self.media.pop(node, None)
        self._media_bytes.pop(node, None)
        return answer({"success": True})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        node = request.match_info["node"]
        try:
            found = self._media_for(request, node)
        except GraphError as error:
            return fail(error)
        if found is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=self._media_bytes[node], content_type=found["mime"])

    async def _list_templates(self, request: web.Request) -> web.StreamResponse:
        waba = request.match_info["waba"]
        try:
            token = self._token(request)
            if not self._can_see_waba(token, waba):
                raise GraphError(200, f"The access token has no permission on account {waba}.")
            query = request.query
            fields = [f.strip() for f in query.get("fields", "").split(",") if f.strip()] or list(
                TEMPLATE_FIELDS
            )
            for name in fields:
                if name not in TEMPLATE_FIELDS:
                    raise GraphError(
                        100,
                        f"Tried accessing nonexisting field ({name}) on node type "
                        "(WhatsAppMessageTemplate)",
                    )
            try:
                limit = int(query.get("limit", "25"))
                start = (
                    int(base64.urlsafe_b64decode(query["after"]).decode())
                    if "after" in query
                    else 0
                )
            except (ValueError, UnicodeDecodeError):
                raise GraphError(100, "Invalid limit or after cursor.") from None
            if not 1 <= limit <= 1000:
                raise GraphError(100, "Param limit must be between 1 and 1000.")
        except GraphError as error:
            return fail(error)
        rows = [
            t
            for t in self.templates.get(waba, {}).values()
            if query.get("status", t.status).upper() == t.status
            and query.get("name", t.name) == t.name
        ]
        page = rows[start : start + limit]
        data = [{k: v for k, v in t.as_graph().items() if k in fields or k == "id"} for t in page]
        result: dict[str, Any] = {"data": data}
        if page:
            cursor = lambda i: base64.urlsafe_b64encode(str(i).encode()).decode()  # noqa: E731
            paging: dict[str, Any] = {
                "cursors": {"before": cursor(start), "after": cursor(start + len(page))}
            }
            if start + len(page) < len(rows):
                url = request.url.with_query({**query, "after": cursor(start + len(page))})
                url = url.with_host(self.host).with_port(self.port).with_scheme("http")
                paging["next"] = str(url)
            result["paging"] = paging
        return answer(result)
