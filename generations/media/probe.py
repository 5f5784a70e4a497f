"""Facts about media files: content type, size, checksum, duration, dimensions and
codecs, read by probing the container (PyAV) or the image (Pillow), never by decoding
more than the headers. The pipeline probes every item it stores and every source it
analyses.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import av
from av.container import InputContainer
from PIL import Image, UnidentifiedImageError

_CHUNK_SIZE = 1024 * 1024
# Pillow format name -> content type for the still images probe() accepts.
_IMAGE_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
# FFmpeg demuxer name -> (content type with video, content type for audio only).
_CONTAINER_TYPES = {
    "mov,mp4,m4a,3gp,3g2,mj2": ("video/mp4", "audio/mp4"),
    "matroska,webm": ("video/webm", "audio/webm"),
    "ogg": ("video/ogg", "audio/ogg"),
    "avi": ("video/x-msvideo", "video/x-msvideo"),
    "wav": ("audio/wav", "audio/wav"),
    "mp3": ("audio/mpeg", "audio/mpeg"),
    "flac": ("audio/flac", "audio/flac"),
    "aac": ("audio/aac", "audio/aac"),
}


class MediaError(Exception):
    """The file is missing, unreadable or not a supported media format."""


@dataclass(frozen=True)
class MediaInfo:
    """Facts about one media file; dimensions are the stored (coded) ones."""

    content_type: str
    file_size: int
    checksum: str
    duration_seconds: float | None
    width: int | None
    height: int | None
    frame_rate: float | None
    video_codec: str | None
    audio_codec: str | None


def file_checksum(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK_SIZE):
                digest.update(chunk)
    except OSError as error:
        raise MediaError(f"cannot read {path.name}: {error.strerror or error}") from error
    return digest.hexdigest()


def probe(path: Path) -> MediaInfo:
    """Describe a still image (via Pillow) or an audio/video file (via PyAV).

    Raises MediaError when the file is missing or neither library can read it.
    """
    require_file(path)
    checksum = file_checksum(path)
    file_size = path.stat().st_size
    image = _probe_image(path)
    if image is not None:
        content_type, width, height = image
        return MediaInfo(
            content_type=content_type,
            file_size=file_size,
            checksum=checksum,
            duration_seconds=None,
            width=width,
            height=height,
            frame_rate=None,
            video_codec=None,
            audio_codec=None,
        )
    with open_media(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is None and audio is None:
            raise MediaError(f"{path.name} has no audio or video stream")
        info = MediaInfo(
            content_type=_container_type(container, path, has_video=video is not None),
            file_size=file_size,
            checksum=checksum,
            duration_seconds=media_duration(container),
            width=None,
            height=None,
            frame_rate=None,
            video_codec=None,
            audio_codec=audio.codec_context.name if audio is not None else None,
        )
        if video is None:
            return info
        rate = video.average_rate or video.guessed_rate
        return replace(
            info,
            width=video.width or None,
            height=video.height or None,
            frame_rate=float(rate) if rate else None,
            video_codec=video.codec_context.name,
        )


def require_file(path: Path) -> None:
    if not path.is_file():
        raise MediaError(f"file not found: {path}")


def _container_type(container: InputContainer, path: Path, *, has_video: bool) -> str:
    """Content type from the demuxer (refined by brand or extension), else the extension."""
    name = container.format.name
    suffix = path.suffix.lower()
    if (
        name.startswith("mov,")
        and has_video
        and container.metadata.get("major_brand", "")[:2] == "qt"
    ):
        return "video/quicktime"
    if name == "matroska,webm" and suffix in (".mkv", ".mka"):
        return "video/x-matroska" if has_video else "audio/x-matroska"
    if name in _CONTAINER_TYPES:
        with_video, audio_only = _CONTAINER_TYPES[name]
        return with_video if has_video else audio_only
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _probe_image(path: Path) -> tuple[str, int, int] | None:
    """Content type and size of a still image, or None if Pillow does not know it."""
    try:
        with Image.open(path) as image:
            content_type = _IMAGE_TYPES.get(image.format or "")
            # Animated images carry timing, which PyAV reports; leave them to it.
            if content_type is None or getattr(image, "is_animated", False):
                return None
            return content_type, image.width, image.height
    except UnidentifiedImageError:
        return None
    except (Image.DecompressionBombError, OSError) as error:
        raise MediaError(f"cannot read image {path.name}: {error}") from error


@contextmanager
def open_media(path: Path) -> Iterator[InputContainer]:
    """Open ``path`` with PyAV; FFmpeg errors while it is open become MediaError."""
    require_file(path)
    try:
        with av.open(str(path), "r") as container:
            yield container
    except av.FFmpegError as error:
        raise MediaError(f"cannot read media {path.name}: {error.strerror or error}") from error


def media_duration(container: InputContainer) -> float | None:
    """Container duration in seconds, else the longest stream's, else None."""
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    durations = [
        float(stream.duration * stream.time_base)
        for stream in container.streams
        if stream.duration and stream.time_base
    ]
    return max(durations, default=None)
