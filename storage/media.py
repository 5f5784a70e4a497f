"""Facts about stored media files and the small images derived from them.

Everything here is memory-bounded: files are hashed in chunks, containers are
only probed or seeked, and audio is reduced to peaks while it is decoded.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

_CHUNK_SIZE = 1024 * 1024
_JPEG_QUALITY = 85
_WAVEFORM_COLOUR = (79, 70, 229, 255)
_WAVEFORM_BUCKETS_PER_COLUMN = 8

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
    _require_file(path)
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
    with _open_media(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is None and audio is None:
            raise MediaError(f"{path.name} has no audio or video stream")
        info = MediaInfo(
            content_type=_container_type(container, path, has_video=video is not None),
            file_size=file_size,
            checksum=checksum,
            duration_seconds=_duration(container),
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


def video_thumbnail(
    source: Path, target: Path, *, width: int = 320, at_seconds: float | None = None
) -> None:
    """Save one frame of a video as a JPEG about ``width`` px wide (never upscaled).

    The frame is the one at ``at_seconds``, by default a third into the video, or the
    first decodable frame when the duration is unknown.
    """
    with _open_media(source) as container:
        stream = _video_stream(container, source)
        duration = _duration(container)
        if at_seconds is None:
            at_seconds = duration / 3 if duration else 0.0
        frame = _frame_at(container, stream, at_seconds)
        _save_jpeg(_frame_image(frame, stream, width), target)


def keyframe_thumbnails(
    source: Path, target_dir: Path, *, count: int = 3, width: int = 320
) -> list[Path]:
    """Save ``count`` evenly spaced frames as ``keyframe_1.jpg`` ... in ``target_dir``.

    Frames sit at 1/(count+1), 2/(count+1), ... of the duration; with an unknown
    duration only the first frame is saved. Returns the written paths in order.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    target_dir.mkdir(parents=True, exist_ok=True)
    with _open_media(source) as container:
        stream = _video_stream(container, source)
        duration = _duration(container)
        times = [duration * i / (count + 1) for i in range(1, count + 1)] if duration else [0.0]
        paths = []
        for number, seconds in enumerate(times, start=1):
            path = target_dir / f"keyframe_{number}.jpg"
            frame = _frame_at(container, stream, seconds)
            _save_jpeg(_frame_image(frame, stream, width), path)
            paths.append(path)
        return paths


def waveform_png(source: Path, target: Path, *, width: int = 400, height: int = 60) -> None:
    """Draw the first audio stream of ``source`` as a peak waveform PNG.

    Bars are mirrored around the middle line on a transparent background and scaled
    to the loudest peak. Audio is decoded once, keeping only per-column peaks.
    """
    if width < 1 or height < 1:
        raise ValueError("waveform size must be positive")
    with _open_media(source) as container:
        if not container.streams.audio:
            raise MediaError(f"{source.name} has no audio stream")
        peaks = _column_peaks(container, container.streams.audio[0], width)
    loudest = max(peaks, default=0.0)
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    middle = (height - 1) / 2
    for column, peak in enumerate(peaks):
        reach = middle * peak / loudest if loudest > 0 else 0.0
        draw.line(
            [(column, round(middle - reach)), (column, round(middle + reach))],
            fill=_WAVEFORM_COLOUR,
        )
    image.save(target, format="PNG")


def image_thumbnail(source: Path, target: Path, *, width: int = 320) -> None:
    """Save a JPEG about ``width`` px wide (never upscaled) of a still image.

    EXIF orientation is applied and transparency is flattened onto white.
    """
    _require_file(source)
    try:
        with Image.open(source) as image:
            # For JPEGs, draft() lets the decoder downscale while decoding; a square
            # request keeps enough pixels whichever way EXIF rotates the picture.
            image.draft("RGB", (width, width))
            picture = ImageOps.exif_transpose(image)
            picture.thumbnail((width, picture.height), Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as error:
        raise MediaError(f"cannot read image {source.name}: {error}") from error
    _save_jpeg(picture, target)


def _require_file(path: Path) -> None:
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
def _open_media(path: Path) -> Iterator[InputContainer]:
    """Open ``path`` with PyAV; FFmpeg errors while it is open become MediaError."""
    _require_file(path)
    try:
        with av.open(str(path), "r") as container:
            yield container
    except av.FFmpegError as error:
        raise MediaError(f"cannot read media {path.name}: {error.strerror or error}") from error


def _duration(container: InputContainer) -> float | None:
    """Container duration in seconds, else the longest stream's, else None."""
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    durations = [
        float(stream.duration * stream.time_base)
        for stream in container.streams
        if stream.duration and stream.time_base
    ]
    return max(durations, default=None)


def _video_stream(container: InputContainer, path: Path) -> VideoStream:
    if not container.streams.video:
        raise MediaError(f"{path.name} has no video stream")
    return container.streams.video[0]


def _frame_at(container: InputContainer, stream: VideoStream, seconds: float) -> VideoFrame:
    """The first frame at or after ``seconds`` (or the last frame before the end).

    Seeks to the keyframe before the position and decodes forward from there, so
    only one group of pictures is decoded.
    """
    time_base = stream.time_base
    start = float(stream.start_time * time_base) if stream.start_time and time_base else 0.0
    target = start + seconds
    if time_base:
        try:
            container.seek(int(target / time_base), stream=stream, backward=True)
        except av.FFmpegError:
            container.seek(0)
    last: VideoFrame | None = None
    for frame in container.decode(stream):
        last = frame
        if frame.time is None or frame.time >= target - _half_frame(stream):
            return frame
    if last is None:
        raise MediaError("no decodable video frame")
    return last


def _half_frame(stream: VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate
    return 0.5 / float(rate) if rate else 0.0


def _frame_image(frame: VideoFrame, stream: VideoStream, width: int) -> Image.Image:
    """The frame as displayed (pixel aspect and rotation applied), ``width`` px wide at most."""
    aspect = stream.sample_aspect_ratio
    display_width = frame.width * float(aspect) if aspect else float(frame.width)
    display_height = float(frame.height)
    quarter_turn = frame.rotation % 180 != 0
    # Scale so that the width after rotation is the requested one.
    shown_width = display_height if quarter_turn else display_width
    scale = min(1.0, width / shown_width)
    image: Image.Image = frame.to_image(  # type: ignore[no-untyped-call]
        width=max(1, round(display_width * scale)), height=max(1, round(display_height * scale))
    )
    if frame.rotation % 360:
        image = image.rotate(frame.rotation, expand=True)
    return image


def _save_jpeg(image: Image.Image, target: Path) -> None:
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        image = background
    elif image.mode != "RGB":
        image = image.convert("RGB")
    image.save(target, format="JPEG", quality=_JPEG_QUALITY, optimize=True)


def _column_peaks(container: InputContainer, stream: AudioStream, columns: int) -> list[float]:
    """Peak absolute level (0..1) per column across the whole audio stream."""
    # Between 8 and 16 buckets end up in each column, which keeps column edges
    # accurate to a fraction of a pixel without knowing the length in advance.
    peaks = _PeakBuckets(capacity=2 * columns * _WAVEFORM_BUCKETS_PER_COLUMN)
    resampler = av.AudioResampler(format="s16", layout="mono")
    for frame in container.decode(stream):
        for mono in resampler.resample(frame):
            peaks.add(memoryview(bytes(mono.planes[0])).cast("h")[: mono.samples])
    for mono in resampler.resample(None):
        peaks.add(memoryview(bytes(mono.planes[0])).cast("h")[: mono.samples])
    buckets = peaks.finish()
    if not buckets:
        return [0.0] * columns
    levels = []
    for column in range(columns):
        first = column * len(buckets) // columns
        last = max(first + 1, (column + 1) * len(buckets) // columns)
        levels.append(max(buckets[first:last]) / 32768)
    return levels


class _PeakBuckets:
    """Peaks of consecutive equal-sized runs of samples, in at most ``capacity`` buckets.

    The stream length is not trusted from metadata: buckets start one sample wide
    and double in size (merging neighbours) whenever they fill up.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity + capacity % 2
        self._buckets: list[int] = []
        self._size = 1
        self._peak = 0
        self._fill = 0

    def add(self, samples: memoryview) -> None:
        start = 0
        while start < len(samples):
            chunk = samples[start : start + self._size - self._fill]
            self._peak = max(self._peak, max(chunk), -min(chunk))
            self._fill += len(chunk)
            start += len(chunk)
            if self._fill == self._size:
                self._buckets.append(self._peak)
                self._peak = self._fill = 0
                if len(self._buckets) == self._capacity:
                    pairs = zip(self._buckets[::2], self._buckets[1::2], strict=True)
                    self._buckets = [max(pair) for pair in pairs]
                    self._size *= 2

    def finish(self) -> list[int]:
        """The bucket peaks, including a final partly filled bucket."""
        return [*self._buckets, self._peak] if self._fill else list(self._buckets)
