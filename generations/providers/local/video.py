"""Video for the local provider: an H.264/AAC MP4 of the animated composition with a
chord soundtrack."""

from __future__ import annotations

import math
from array import array
from fractions import Fraction
from pathlib import Path

import av

from generations.providers.base import ItemRequest
from generations.providers.local.common import Checkpoint, removed_on_error, seeded_rng
from generations.providers.local.composition import Composition

_CHECKPOINT_EVERY_FRAMES = 12
_AUDIO_RATE = 44100
_AUDIO_FRAME_SAMPLES = 1024


def render_item(request: ItemRequest, seed: int) -> Path:
    """Render the video of ``request`` into its workdir; returns the file."""
    parameters = request.parameters
    target = request.workdir / "scene.mp4"
    render_video(
        target,
        prompt=request.prompt,
        label=request.variant_label,
        seed=seed,
        duration_seconds=float(parameters["scene_seconds"]),
        width=int(parameters["width"]),
        height=int(parameters["height"]),
        fps=int(parameters["fps"]),
        checkpoint=request.checkpoint,
    )
    return target


def render_video(
    target: Path,
    *,
    prompt: str,
    label: str,
    seed: int,
    duration_seconds: float,
    width: int = 640,
    height: int = 360,
    fps: int = 24,
    with_audio: bool = True,
    checkpoint: Checkpoint | None = None,
) -> None:
    """Write an H.264/AAC MP4 of an animated composition derived from seed, prompt and label.

    ``checkpoint`` runs every few frames; an exception it raises aborts the render
    and removes the partial file. Width and height must be even (yuv420p).
    """
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"video size must be positive and even, got {width}x{height}")
    if fps <= 0 or duration_seconds <= 0:
        raise ValueError("fps and duration_seconds must be positive")
    frame_count = max(1, round(duration_seconds * fps))
    total_samples = frame_count * _AUDIO_RATE // fps
    composition = Composition(prompt=prompt, label=label, seed=seed, width=width, height=height)
    chord = _Chord(seed=seed, prompt=prompt, label=label, total_samples=total_samples)
    # bitexact keeps library version strings out of the file; the mp4 muxer only
    # writes a creation time when one is given, so none is set.
    options = {"movflags": "+faststart", "fflags": "+bitexact"}
    with (
        removed_on_error(target),
        av.open(str(target), "w", format="mp4", options=options) as container,
    ):
        video = container.add_stream(
            "libx264",
            rate=fps,
            options={
                "preset": "veryfast",
                "crf": "23",
                # mbtree=0: x264's AVX-512 mbtree code reads uninitialised memory past rows.
                # Fixed thread counts keep the bitstream independent of the machine's cores.
                "x264-params": "mbtree=0:threads=1:lookahead-threads=1:sliced-threads=0",
            },
        )
        video.width = width
        video.height = height
        video.pix_fmt = "yuv420p"
        video.codec_context.gop_size = 2 * fps
        audio = (
            container.add_stream(
                "aac", rate=_AUDIO_RATE, layout="mono", options={"flags": "+bitexact"}
            )
            if with_audio
            else None
        )
        written_samples = 0
        for index in range(frame_count):
            if checkpoint is not None and index % _CHECKPOINT_EVERY_FRAMES == 0:
                checkpoint()
            image = composition.frame(index / fps, progress=(index + 1) / frame_count)
            frame = av.VideoFrame.from_image(image).reformat(format="yuv420p")  # type: ignore[no-untyped-call]
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(video.encode(frame))
            if audio is None:
                continue
            # Interleave audio up to the end of this video frame so the muxer never
            # has to buffer one stream while waiting for the other.
            # Whole encoder frames only: a short frame goes through the encoder's FIFO,
            # whose padding made the AAC bitstream differ between runs.
            due = (index + 1) * _AUDIO_RATE // fps
            while written_samples < due:
                container.mux(audio.encode(chord.frame(written_samples, _AUDIO_FRAME_SAMPLES)))
                written_samples += _AUDIO_FRAME_SAMPLES
        container.mux(video.encode(None))
        if audio is not None:
            container.mux(audio.encode(None))


class _Chord:
    """A soft sustained chord with a gentle swell, faded in and out over the track."""

    _FADE_SECONDS = 0.4
    _GAIN = 0.12

    def __init__(self, *, seed: int, prompt: str, label: str, total_samples: int) -> None:
        rng = seeded_rng("chord", seed, prompt, label)
        root = 110.0 * 2 ** (rng.randrange(12) / 12)
        ratios = rng.choice(
            [(1.0, 1.25, 1.5), (1.0, 1.2, 1.5), (1.0, 1.5, 2.0), (1.0, 1.25, 1.875)]
        )
        # Whole-hertz tones (and a 1 Hz swell) repeat exactly every second, so one
        # second is computed and then looped instead of evaluated sample by sample.
        low, mid, high = (round(root * ratio) for ratio in ratios)
        rate = _AUDIO_RATE
        sine = [math.sin(math.tau * n / rate) for n in range(rate)]
        self._loop = array(
            "f",
            (
                self._GAIN
                * (0.85 + 0.15 * sine[n])
                * (sine[low * n % rate] + sine[mid * n % rate] + sine[high * n % rate])
                for n in range(rate)
            ),
        )
        self._total = total_samples
        self._fade = max(1, min(total_samples // 2, round(self._FADE_SECONDS * rate)))

    def frame(self, start: int, count: int) -> av.AudioFrame:
        """An audio frame holding samples ``start`` to ``start + count`` (count <= 1 s)."""
        offset = start % len(self._loop)
        samples = self._loop[offset : offset + count]
        if len(samples) < count:
            samples += self._loop[: count - len(samples)]
        if start < self._fade or start + count > self._total - self._fade:
            samples = array(
                "f",
                (
                    value
                    * min(1.0, (start + k) / self._fade, (self._total - start - k) / self._fade)
                    for k, value in enumerate(samples)
                ),
            )
        frame = av.AudioFrame(format="fltp", layout="mono", samples=count)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = _AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, _AUDIO_RATE)
        return frame
