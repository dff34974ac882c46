"""Attachments: stored once by content hash, accepted by what they are, not what they're called.

- An upload is copied to a temp file under `media/` while it is hashed and counted, so a
  file over the limit is refused after reading at most one chunk past it.
- The type is sniffed from the content; the name the user gave is only a display name and
  never part of a path (`media/<sha[:2]>/<sha>`).
- Accepted: JPEG, PNG, WEBP and GIF images (decoded with Pillow, so a truncated, corrupt or
  decompression-bomb image is refused here rather than by the channel mid-campaign),
  MP4 and 3GPP videos, PDF, office documents (OOXML, ODF, legacy OLE2) and UTF-8 text/CSV.
- The same content uploaded twice is one row and one file.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import tempfile
import unicodedata
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from wabulk.disk import disk_full_sentence, is_disk_full
from wabulk.errors import NotFound, ValidationError
from wabulk.models import Media
from wabulk.words import said

CHUNK = 1 << 16
MB = 1024 * 1024
MAX_NAME = 255

_IMAGES = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
}
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE_BY_EXTENSION = {
    ".doc": "application/msword",
    ".dot": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".xlt": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pps": "application/vnd.ms-powerpoint",
}
_OOXML = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_ODF = frozenset(
    {
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
    }
)
_MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"dash"}
    | {b"M4V ", b"M4VH", b"M4VP", b"mmp4", b"MSNV"}
)
_FTYP_LOOKS_LIKE = {
    b"qt  ": "a QuickTime video (.mov)",
    b"M4A ": "an MP4 audio file",
    b"M4B ": "an MP4 audiobook",
    b"heic": "a HEIC image",
    b"heix": "a HEIC image",
    b"mif1": "a HEIF image",
    b"avif": "an AVIF image",
    b"3g2a": "a 3GPP2 video",
}
# Leading bytes of common files we refuse, to say what the upload looks like.
_LOOKS_LIKE = (
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a Linux program"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg audio or video file"),
    (b"fLaC", "a FLAC audio file"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
)
_TEXT_EXTENSIONS = {".txt": "text/plain", ".csv": "text/csv", "": "text/plain"}


def save_media(
    session: Session, stream: BinaryIO, original_name: str, instance_path: Path, max_bytes: int
) -> Media:
    """Store an upload once and return its Media row (existing or new, flushed).

    - Raises ValidationError(field="media") when it is over `max_bytes`, empty, or not an
      accepted kind; no temp file is left behind.
    - Two simultaneous uploads of the same new file race on the unique sha256: the loser's
      flush fails and a retry finds the winner's row. Accepted: it needs identical bytes at
      the same instant, and nothing is lost.
    """
    name = display_name(original_name)
    media_dir = instance_path / "media"
    media_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=media_dir, prefix=".upload-", delete=False) as tmp:
        temp = Path(tmp.name)
    try:
        try:
            digest, size, head, is_text = _copy(stream, temp, name, max_bytes)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            raise ValidationError(disk_full_sentence(name), field="media") from None
        mime = _sniff(temp, head, is_text, name)
        existing = session.scalars(select(Media).where(Media.sha256 == digest)).one_or_none()
        if existing is not None:
            stored = media_path(instance_path, existing)
            if not stored.exists():  # the file went missing: these bytes restore it
                stored.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, stored)
            return existing
        relative = PurePosixPath("media", digest[:2], digest)
        media = Media(
            sha256=digest, original_name=name, mime_type=mime, size=size, stored_path=str(relative)
        )
        session.add(media)
        session.flush()  # the row before the file: a failed insert leaves no stored file
        final = instance_path / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, final)
        return media
    finally:
        temp.unlink(missing_ok=True)


def media_kind(mime_type: str) -> str:
    """Return "image", "video" or "document": channels send the first two with a caption."""
    if mime_type.startswith("image/"):
        return "image"
    if mime_type.startswith("video/"):
        return "video"
    return "document"


def media_path(instance_path: Path, media: Media) -> Path:
    """The file of a Media row; a stored path leaving `media/` is refused (tampered row)."""
    root = (instance_path / "media").resolve()
    path = (instance_path / media.stored_path).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"media {media.id} has a stored path outside the media folder")
    return path


def display_name(original_name: str) -> str:
    """The name to show: its last path part, without control characters, at most 255 chars."""
    text = unicodedata.normalize("NFC", original_name)
    text = PureWindowsPath(PurePosixPath(text).name).name
    # Categories C* include bidi overrides, which can make "gpj.exe" display as "exe.jpg".
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C").strip(" .")
    if not text:
        return "file"
    if len(text) <= MAX_NAME:
        return text
    suffix = PurePosixPath(text).suffix
    suffix = suffix if len(suffix) <= 16 else ""
    return text[: MAX_NAME - len(suffix)] + suffix


def _copy(stream: BinaryIO, temp: Path, name: str, max_bytes: int) -> tuple[str, int, bytes, bool]:
    """Copy to `temp`: (sha256, size, first bytes, whether it is UTF-8 text without NULs)."""
    sha = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    is_text = True
    size = 0
    head = b""
    with temp.open("wb") as out:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise ValidationError(
                    said(
                        "%(name)s is larger than the %(mb)s MB limit",
                        name=name,
                        mb=f"{max_bytes / MB:.3g}",
                    ),
                    field="media",
                )
            if len(head) < 4096:
                head += chunk[: 4096 - len(head)]
            sha.update(chunk)
            out.write(chunk)
            if is_text:
                is_text = b"\x00" not in chunk and _decodes(decoder, chunk)
    if size == 0:
        raise ValidationError(said("%(name)s is empty", name=name), field="media")
    return sha.hexdigest(), size, head, is_text and _decodes(decoder, b"", final=True)


def _decodes(decoder: codecs.IncrementalDecoder, chunk: bytes, final: bool = False) -> bool:
    try:
        decoder.decode(chunk, final)
    except UnicodeDecodeError:
        return False
    return True


def _sniff(path: Path, head: bytes, is_text: bool, name: str) -> str:
    """The MIME type of an accepted file; ValidationError saying what it looks like if not."""
    extension = PurePosixPath(name).suffix.lower()
    mime = _image_type(head)
    if mime is not None:
        _check_image(path, mime, name)
        return mime
    if head[4:8] == b"ftyp":
        return _video_type(head[8:12], name)
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(_OLE2):
        return _OLE_BY_EXTENSION.get(extension, "application/vnd.ms-office")
    if head.startswith(b"PK\x03\x04"):
        return _zip_type(path, name)
    if is_text:
        if extension in _TEXT_EXTENSIONS:
            return _TEXT_EXTENSIONS[extension]
        # A "photo.jpg" that is text is a mistake worth catching, not a document to send.
        raise _refused(name, "plain text; text is accepted as .txt or .csv")
    what = next((what for magic, what in _LOOKS_LIKE if head.startswith(magic)), None)
    if head.startswith(b"RIFF") and head[8:12] in (b"WAVE", b"AVI "):
        what = "a WAV audio file" if head[8:12] == b"WAVE" else "an AVI video"
    raise _refused(name, what or "binary data of an unknown kind")


def _refused(name: str, looks_like: str) -> ValidationError:
    return ValidationError(
        said(
            "%(name)s is not an image, video, PDF or office document (it looks like %(looks)s); "
            "upload an image (JPEG, PNG, WEBP, GIF), video (MP4, 3GPP), PDF, office document "
            "or text file",
            name=name,
            looks=looks_like,
        ),
        field="media",
    )


def _image_type(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _check_image(path: Path, mime: str, name: str) -> None:
    """Decode the whole image: verify() checks structure, load() the pixel data.

    - Only the plugin of the sniffed format is tried, so no other parser sees the bytes.
    - Pillow raises for images over twice MAX_IMAGE_PIXELS but only warns between one and
      two times it; the explicit size check refuses those too.
    """
    kind = _IMAGES[mime]
    try:
        with Image.open(path, formats=[kind]) as image:
            image.verify()
        with Image.open(path, formats=[kind]) as image:
            limit = Image.MAX_IMAGE_PIXELS
            if limit is not None and image.width * image.height > limit:
                raise Image.DecompressionBombError(f"{image.width}x{image.height}")
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError(
            said(
                "%(name)s is too large in pixels to be a safe %(kind)s image "
                "(more than %(most)s megapixels)",
                name=name,
                kind=kind,
                most=(Image.MAX_IMAGE_PIXELS or 0) // 1_000_000,
            ),
            field="media",
        ) from None
    except Exception:
        # Pillow reports damage as OSError, SyntaxError, ValueError, struct.error, …
        raise ValidationError(
            said(
                "%(name)s looks like a %(kind)s image but is damaged or incomplete",
                name=name,
                kind=kind,
            ),
            field="media",
        ) from None


def _video_type(brand: bytes, name: str) -> str:
    if brand.startswith(b"3gp"):
        return "video/3gpp"
    if brand in _MP4_BRANDS:
        return "video/mp4"
    kind = brand.decode("latin-1").strip()
    looks_like = _FTYP_LOOKS_LIKE.get(brand, f'an MP4-family file of kind "{kind}"')
    raise _refused(name, looks_like)


def _zip_type(path: Path, name: str) -> str:
    """OOXML by its part folders, ODF by its `mimetype` entry; any other ZIP is refused."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "mimetype" in names:
                with archive.open("mimetype") as entry:
                    declared = entry.read(100).decode("ascii", "replace").strip()
                if declared in _ODF:
                    return declared
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        raise _refused(name, "a damaged ZIP archive") from None
    if any(part.lower().endswith("vbaproject.bin") for part in names):
        # Recipients' phones warn about (or block) macros; a campaign should not send them.
        raise _refused(name, "a macro-enabled office document")
    for folder, mime in _OOXML.items():
        if any(part.startswith(folder) for part in names):
            return mime
    raise _refused(name, "a ZIP archive")


def get_media(session: Session, media_id: int) -> Media:
    found = session.get(Media, media_id)
    if found is None:
        raise NotFound(said("There is no attachment #%(id)s.", id=media_id))
    return found


def find_media(session: Session, media_id: int | None) -> Media | None:
    """The attachment of a form or page; None when not set or gone."""
    return session.get(Media, media_id) if media_id else None
