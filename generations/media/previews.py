"""The small images derived from media: a video's thumbnail and keyframes, an image's
thumbnail, and an audio track's waveform. Memory-bounded: containers are seeked rather
than decoded whole, and audio is reduced to peaks while it is decoded.
"""

from __future__ import annotations

from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from generations.media.probe import MediaError, media_duration, open_media, require_file

_JPEG_QUALITY = 85
_WAVEFORM_COLOUR = (79, 70, 229, 255)
_WAVEFORM_BUCKETS_PER_COLUMN = 8


def video_thumbnail(
    source: Path, target: Path, *, width: int = 320, at_seconds: float | None = None
) -> None:
    """Save one frame of a video as a JPEG about ``width`` px wide (never upscaled).

    The frame is the one at ``at_seconds``, by default a third into the video, or the
    first decodable frame when the duration is unknown.
    """
    with open_media(source) as container:
        stream = _video_stream(container, source)
        duration = media_duration(container)
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
    with open_media(source) as container:
        stream = _video_stream(container, source)
        duration = media_duration(container)
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
    with open_media(source) as container:
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
    require_file(source)
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
