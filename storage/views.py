"""Serves local-storage objects behind signed, expiring links (S3 serves its own)."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator

from django.core.files import File
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe

from storage.services import ObjectMissing, object_open, object_size, signed_object_lookup

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024


@require_safe
def object_download(request: HttpRequest, token: str) -> HttpResponse | StreamingHttpResponse:
    try:
        key, download_name = signed_object_lookup(token)
        size = object_size(key)
        handle = object_open(key)
    except ObjectMissing:
        raise Http404("This link is invalid or has expired.") from None
    content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"

    byte_range = _requested_range(request.headers.get("Range", ""), size)
    if byte_range is None:
        response: HttpResponse | StreamingHttpResponse = FileResponse(
            handle,
            content_type=content_type,
            as_attachment=bool(download_name),
            filename=download_name,
        )
    else:
        start, end = byte_range
        response = StreamingHttpResponse(
            _read_range(handle, start, end), status=206, content_type=content_type
        )
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
        if download_name:
            response["Content-Disposition"] = f'attachment; filename="{download_name}"'
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=300"
    return response


def _requested_range(header: str, size: int) -> tuple[int, int] | None:
    """The single byte range asked for, clamped to the file, or None for the whole file."""
    match = _RANGE.match(header.strip())
    if not match or size == 0:
        return None
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    elif last:
        start, end = max(size - int(last), 0), size - 1
    else:
        return None
    if start > end or start >= size:
        return None
    return start, end


def _read_range(handle: File[bytes], start: int, end: int) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            chunk = handle.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
