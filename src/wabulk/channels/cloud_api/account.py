"""A Cloud API sender's account: check the connection, list templates, upload media.

- Plain functions on the sender's plain `settings` (phone_number_id, waba_id, access_token,
  api_version) and the installation's `options` (cloud_api_url, cloud_api_version,
  cloud_api_timeout), for the Senders page and the template sync. Each opens a short-lived
  `httpx.Client`: these calls are rare and must not hold connections between them.
- Anything wrong is an `AccountError` whose sentence says in one line what to fix (the
  token, the phone-number id, a permission, the account id, the network). The token never
  appears in one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ...words import N_, said
from .client import Failure, api_base, auth_headers, explain, read_failure, text, timeout_seconds
from .errors import describe

log = logging.getLogger(__name__)

NUMBER_FIELDS = (
    "verified_name,display_phone_number,quality_rating,throughput,"
    "whatsapp_business_manager_messaging_limit"
)
TEMPLATE_FIELDS = "id,name,language,category,status,quality_score,parameter_format,components"
PAGE_SIZE = 100
# 5,000 templates: far above what an account holds (Meta caps a WABA at a few hundred),
# low enough that a paging answer pointing at itself cannot loop for ever.
PAGE_CAP = 50

MB = 1024 * 1024
# Spec §3: what WhatsApp accepts, by MIME type → (kind, largest size in bytes).
MEDIA_TYPES: dict[str, tuple[str, int]] = {
    "image/jpeg": ("image", 5 * MB),
    "image/png": ("image", 5 * MB),
    "video/mp4": ("video", 16 * MB),
    "video/3gpp": ("video", 16 * MB),
    "audio/aac": ("audio", 16 * MB),
    "audio/amr": ("audio", 16 * MB),
    "audio/mpeg": ("audio", 16 * MB),
    "audio/mp4": ("audio", 16 * MB),
    "audio/ogg": ("audio", 16 * MB),
    "text/plain": ("document", 100 * MB),
    "application/pdf": ("document", 100 * MB),
    "application/msword": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (
        "document",
        100 * MB,
    ),
    "application/vnd.ms-excel": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("document", 100 * MB),
    "application/vnd.ms-powerpoint": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
        "document",
        100 * MB,
    ),
}
KIND_WORDS = {"image": "photo", "video": "video", "audio": "audio file", "document": "document"}
# A file over WhatsApp's size for its kind, one whole sentence each.
TOO_BIG = {
    "image": N_("This photo is %(size)s MB; WhatsApp takes photos up to %(cap)s MB."),
    "video": N_("This video is %(size)s MB; WhatsApp takes videos up to %(cap)s MB."),
    "audio": N_("This audio file is %(size)s MB; WhatsApp takes audio files up to %(cap)s MB."),
    "document": N_("This document is %(size)s MB; WhatsApp takes documents up to %(cap)s MB."),
}
ACCEPTED = (
    "JPEG or PNG photos, MP4 or 3GP videos, AAC, AMR, MP3, M4A or OGG audio, "
    "and PDF, text, Word, Excel or PowerPoint documents"
)

TOKEN_CODES = frozenset({0, 102, 190})
PERMISSION_CODES = frozenset({3, 10, 131005})


class AccountError(Exception):
    """What is wrong with the account, in one sentence for the shop owner.

    `kind`: `token`, `number`, `account`, `permission`, `unreachable`, `refused` (the file
    or a value), or an `errors.describe` kind (`retry`, `sender`, …) for the rest.
    """

    def __init__(self, sentence: str, code: str | None = None, kind: str = "refused") -> None:
        super().__init__(sentence)
        self.sentence = sentence
        self.code = code
        self.kind = kind


@dataclass(frozen=True)
class AccountInfo:
    display_name: str
    display_phone: str
    quality_rating: str
    throughput_level: str
    messaging_tier: str
    raw: dict[str, Any] = field(default_factory=dict)
    account_name: str = ""  # the WhatsApp Business Account's name


@dataclass(frozen=True)
class TemplateInfo:
    provider_id: str
    name: str
    language: str
    category: str
    status: str
    quality: str
    parameter_format: str  # positional | named
    components: list[dict[str, Any]]


@dataclass(frozen=True)
class _Account:
    base: str
    phone_number_id: str
    waba_id: str
    token: str
    timeout: float


def _account(settings: Mapping[str, object], options: Mapping[str, object], *need: str) -> _Account:
    sentences = {
        "access_token": N_("The sender has no access token: fill it in."),
        "phone_number_id": N_("The sender has no phone-number id: fill it in."),
        "waba_id": N_("The sender has no WhatsApp Business Account id: fill it in."),
    }
    for key in need:
        if not text(settings.get(key)):
            raise AccountError(sentences[key], kind="missing")
    return _Account(
        api_base(settings, options),
        text(settings.get("phone_number_id")),
        text(settings.get("waba_id")),
        text(settings.get("access_token")),
        timeout_seconds(options),
    )


def _unreachable(exc: httpx.TransportError, account: _Account) -> AccountError:
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return AccountError(
            said(
                "Meta did not answer within %(seconds)s seconds: try again in a minute.",
                seconds=f"{account.timeout:g}",
            ),
            code="timeout",
            kind="unreachable",
        )
    host = httpx.URL(account.base).host
    return AccountError(
        said(
            "Meta could not be reached at %(host)s: check this server's internet connection.",
            host=host,
        ),
        code="connect_failed",
        kind="unreachable",
    )


def _missing_object(failure: Failure) -> bool:
    said = f"{failure.message} {failure.details}".lower()
    return failure.code in (100, 803) and (
        failure.subcode == 33 or "does not exist" in said or "unknown path" in said
    )


def _failure_error(failure: Failure, account: _Account, subject: str) -> AccountError:
    """`subject`: `number` or `account`, what the failed request asked about."""
    code = str(failure.code) if failure.code is not None else f"http_{failure.http_status}"
    if failure.code in TOKEN_CODES or (failure.code is None and failure.http_status == 401):
        return AccountError(
            N_(
                "The access token is not valid or has expired: create a new one in Meta's "
                "Business settings and paste it here."
            ),
            code,
            "token",
        )
    if (
        failure.code in PERMISSION_CODES
        or (failure.code is not None and 200 <= failure.code <= 299)
        or (failure.code is None and failure.http_status == 403)
    ):
        return AccountError(
            N_(
                "The access token lacks a permission: give its system user "
                "whatsapp_business_messaging and whatsapp_business_management on this account."
            ),
            code,
            "permission",
        )
    if _missing_object(failure):
        if subject == "number":
            return AccountError(
                said(
                    "Meta knows no phone number with id %(id)s that this token may use: check "
                    "the phone-number id (WhatsApp Manager, Phone numbers).",
                    id=account.phone_number_id,
                ),
                code,
                "number",
            )
        return AccountError(
            said(
                "Meta knows no WhatsApp Business Account with id %(id)s that this token may "
                "use: check the WhatsApp Business Account id.",
                id=account.waba_id,
            ),
            code,
            "account",
        )
    return AccountError(
        explain(failure, account.token), code, describe(failure.code, failure.http_status).kind
    )


def _get(
    client: httpx.Client, account: _Account, url: str, params: dict[str, Any], subject: str
) -> dict[str, Any]:
    try:
        response = client.get(url, params=params)
    except httpx.TransportError as exc:
        raise _unreachable(exc, account) from None
    if not response.is_success:
        raise _failure_error(
            read_failure(response.status_code, response.content, response.headers),
            account,
            subject,
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise AccountError(N_("Meta's answer could not be read: try again."), kind="retry")
    return body


def _client(account: _Account, json_body: bool = False, read: float | None = None) -> httpx.Client:
    timeout = httpx.Timeout(account.timeout, read=read or account.timeout)
    return httpx.Client(headers=auth_headers(account.token, json_body), timeout=timeout)


def check_connection(settings: Mapping[str, object], options: Mapping[str, object]) -> AccountInfo:
    """The number's name, quality, throughput and tier, after checking the account id too."""
    account = _account(settings, options, "access_token", "phone_number_id", "waba_id")
    with _client(account) as client:
        number = _get(
            client,
            account,
            f"{account.base}/{account.phone_number_id}",
            {"fields": NUMBER_FIELDS},
            "number",
        )
        waba = _get(
            client, account, f"{account.base}/{account.waba_id}", {"fields": "id,name"}, "account"
        )
    throughput = number.get("throughput")
    return AccountInfo(
        display_name=text(number.get("verified_name")),
        display_phone=text(number.get("display_phone_number")),
        quality_rating=text(number.get("quality_rating")) or "UNKNOWN",
        throughput_level=text(throughput.get("level")) if isinstance(throughput, dict) else "",
        messaging_tier=text(number.get("whatsapp_business_manager_messaging_limit")),
        raw=number,
        account_name=text(waba.get("name")),
    )


def _template(item: dict[str, Any]) -> TemplateInfo | None:
    name, language = text(item.get("name")), text(item.get("language"))
    if not name or not language:
        return None
    quality = item.get("quality_score")
    components = item.get("components")
    return TemplateInfo(
        provider_id=text(item.get("id")),
        name=name,
        language=language,
        category=text(item.get("category")).upper(),
        status=text(item.get("status")).upper(),
        quality=(text(quality.get("score")) if isinstance(quality, dict) else "").upper()
        or "UNKNOWN",
        parameter_format="named"
        if text(item.get("parameter_format")).lower() == "named"
        else "positional",
        components=components if isinstance(components, list) else [],
    )


def list_templates(
    settings: Mapping[str, object], options: Mapping[str, object]
) -> list[TemplateInfo]:
    """Every template of the account, all statuses, following Meta's paging cursors."""
    account = _account(settings, options, "access_token", "waba_id")
    url = f"{account.base}/{account.waba_id}/message_templates"
    params: dict[str, Any] = {"fields": TEMPLATE_FIELDS, "limit": PAGE_SIZE}
    found: list[TemplateInfo] = []
    with _client(account) as client:
        for _page in range(PAGE_CAP):
            body = _get(client, account, url, params, "account")
            for item in body.get("data") or []:
                if isinstance(item, dict) and (template := _template(item)) is not None:
                    found.append(template)
            paging = body.get("paging")
            cursors = paging.get("cursors") if isinstance(paging, dict) else None
            after = text(cursors.get("after")) if isinstance(cursors, dict) else ""
            # The `next` address is only a sign that there is more: the request is rebuilt
            # on our own base address, so the token never follows a link Meta handed back.
            if not (isinstance(paging, dict) and paging.get("next")) or not after:
                break
            if after == params.get("after"):
                break
            params = {**params, "after": after}
        else:
            log.warning("Template list stopped after %d pages of %d", PAGE_CAP, PAGE_SIZE)
    return found


def check_media(mime: str, size: int) -> str:
    """The message kind of a file WhatsApp accepts; AccountError saying why not."""
    mime = mime.split(";", 1)[0].strip().lower()
    if mime == "image/webp":
        raise AccountError(
            N_("WhatsApp takes WebP pictures only as stickers: use a JPEG or PNG photo."),
            code="media_type",
        )
    entry = MEDIA_TYPES.get(mime)
    if entry is None:
        raise AccountError(
            said(
                "WhatsApp does not accept %(mime)s files: it takes JPEG or PNG photos, MP4 or "
                "3GP videos, AAC, AMR, MP3, M4A or OGG audio, and PDF, text, Word, Excel or "
                "PowerPoint documents.",
                mime=mime,
            )
            if mime
            else N_(
                "WhatsApp does not accept this kind of files: it takes JPEG or PNG photos, MP4 "
                "or 3GP videos, AAC, AMR, MP3, M4A or OGG audio, and PDF, text, Word, Excel or "
                "PowerPoint documents."
            ),
            code="media_type",
        )
    kind, cap = entry
    if size <= 0:
        raise AccountError(N_("The file is empty."), code="media_size")
    if size > cap:
        raise AccountError(
            said(TOO_BIG[kind], size=f"{size / MB:.1f}", cap=cap // MB),
            code="media_size",
        )
    return kind


def upload_media(
    settings: Mapping[str, object],
    options: Mapping[str, object],
    path: Path,
    mime: str,
    filename: str,
) -> str:
    """Upload a file to the sender's number (spec §3); its media id, valid 30 days."""
    account = _account(settings, options, "access_token", "phone_number_id")
    try:
        size = Path(path).stat().st_size
    except OSError:
        raise AccountError(
            said("The file %(file)s is missing.", file=filename), code="media_missing"
        ) from None
    check_media(mime, size)
    mime = mime.split(";", 1)[0].strip().lower()
    # A large file may take a while for Meta to take in once the last byte is written.
    with _client(account, read=max(account.timeout, 120.0)) as client, Path(path).open("rb") as fh:
        try:
            response = client.post(
                f"{account.base}/{account.phone_number_id}/media",
                data={"messaging_product": "whatsapp", "type": mime},
                files={"file": (filename or Path(path).name, fh, mime)},
            )
        except httpx.TransportError as exc:
            raise _unreachable(exc, account) from None
    if not response.is_success:
        raise _failure_error(
            read_failure(response.status_code, response.content, response.headers),
            account,
            "number",
        )
    try:
        media_id = text(json.loads(response.content).get("id"))
    except (ValueError, AttributeError):
        media_id = ""
    if not media_id:
        raise AccountError(
            N_("Meta took the file but its answer had no media id: try again."), kind="retry"
        )
    return media_id
