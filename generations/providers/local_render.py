"""Deterministic offline media rendering for the built-in "local" provider.

Every renderer is a pure function of its arguments: the same arguments give
byte-identical files, so the local provider behaves like a reproducible model.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import random
import re
import shutil
import subprocess
import sys
import time
import wave
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont

Checkpoint = Callable[[], None]

_CHECKPOINT_EVERY_FRAMES = 12
_VIDEO_AUDIO_RATE = 44100
_AUDIO_FRAME_SAMPLES = 1024
_SPEECH_RATE = 22050
_MIN_SPEECH_SECONDS = 0.5
_ESPEAK_TIMEOUT_SECONDS = 120.0
_MIN_SECTION_CHARS = 20
_ELLIPSIS = "…"

_Colour = tuple[int, int, int]
_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


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
    """Write an H.264/AAC MP4 of an animated item derived from seed, prompt and label.

    ``checkpoint`` runs every few frames; an exception it raises aborts the render
    and removes the partial file. Width and height must be even (yuv420p).
    """
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"video size must be positive and even, got {width}x{height}")
    if fps <= 0 or duration_seconds <= 0:
        raise ValueError("fps and duration_seconds must be positive")
    frame_count = max(1, round(duration_seconds * fps))
    total_samples = frame_count * _VIDEO_AUDIO_RATE // fps
    item = _Item(prompt=prompt, label=label, seed=seed, width=width, height=height)
    chord = _Chord(seed=seed, prompt=prompt, label=label, total_samples=total_samples)
    # bitexact keeps library version strings out of the file; the mp4 muxer only
    # writes a creation time when one is given, so none is set.
    options = {"movflags": "+faststart", "fflags": "+bitexact"}
    with (
        _removed_on_error(target),
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
                "aac", rate=_VIDEO_AUDIO_RATE, layout="mono", options={"flags": "+bitexact"}
            )
            if with_audio
            else None
        )
        written_samples = 0
        for index in range(frame_count):
            if checkpoint is not None and index % _CHECKPOINT_EVERY_FRAMES == 0:
                checkpoint()
            image = item.frame(index / fps, progress=(index + 1) / frame_count)
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
            due = (index + 1) * _VIDEO_AUDIO_RATE // fps
            while written_samples < due:
                container.mux(audio.encode(chord.frame(written_samples, _AUDIO_FRAME_SAMPLES)))
                written_samples += _AUDIO_FRAME_SAMPLES
        container.mux(video.encode(None))
        if audio is not None:
            container.mux(audio.encode(None))


def render_speech(
    target: Path,
    *,
    text: str,
    seed: int,
    words_per_minute: int = 160,
    checkpoint: Checkpoint | None = None,
) -> None:
    """Write a 16-bit mono 22050 Hz WAV of ``text`` being spoken.

    Uses ``espeak-ng`` when it is installed (its voice does not depend on ``seed``);
    otherwise synthesises a deterministic voice-like buzz lasting about
    words / words_per_minute minutes (at least 0.5 s).
    """
    if words_per_minute <= 0:
        raise ValueError("words_per_minute must be positive")
    espeak = shutil.which("espeak-ng")
    with _removed_on_error(target):
        if espeak is not None and text.strip():
            _speak_with_espeak(espeak, target, text, words_per_minute, checkpoint)
        else:
            _write_wav(target, _synthesise_speech(text, seed, words_per_minute, checkpoint))


def render_image(
    target: Path,
    *,
    prompt: str,
    label: str,
    seed: int,
    width: int = 1024,
    height: int = 576,
    checkpoint: Checkpoint | None = None,
) -> None:
    """Write a PNG of a gradient-and-shapes item with the prompt and label drawn on it."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if checkpoint is not None:
        checkpoint()
    image = _Item(prompt=prompt, label=label, seed=seed, width=width, height=height).frame(0.0)
    with _removed_on_error(target):
        image.save(target, format="PNG")


def split_speech_sections(text: str, *, max_chars: int = 400) -> list[str]:
    """Split text into speakable sections of at most ``max_chars`` characters.

    One section per sentence; very short sentences are merged with a neighbour and
    over-long ones are split at word boundaries. Blank text gives an empty list.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        for sentence in _SENTENCE.findall(" ".join(paragraph.split())):
            pieces.extend(_split_long(sentence.strip(), max_chars))
    sections: list[str] = []
    for piece in pieces:
        if sections:
            merged = f"{sections[-1]} {piece}"
            is_short = min(len(sections[-1]), len(piece)) < _MIN_SECTION_CHARS
            if is_short and len(merged) <= max_chars:
                sections[-1] = merged
                continue
        sections.append(piece)
    return sections


# A sentence runs to terminal punctuation (plus closing quotes or brackets) that is
# followed by whitespace, or to the end of the text.
_SENTENCE = re.compile(r"\S.*?(?:[.!?…]+[\"'\u201d\u2019)\]]*(?=\s|$)|$)")


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """Break one sentence into word-boundary chunks of at most ``max_chars``."""
    chunks: list[str] = []
    current = ""
    for word in sentence.split():
        while len(word) > max_chars:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(word[:max_chars])
            word = word[max_chars:]
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= max_chars:
            current = f"{current} {word}"
        else:
            chunks.append(current)
            current = word
    if current:
        chunks.append(current)
    return chunks


@contextmanager
def _removed_on_error(target: Path) -> Iterator[None]:
    """Delete ``target`` if the block fails, so no half-written file is left behind."""
    try:
        yield
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _rng(*parts: object) -> random.Random:
    """A random generator seeded stably (unlike ``hash()``) from ``parts``."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - not for security


def _hsv(hue: float, saturation: float, value: float) -> _Colour:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)


# --- pictures -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    sprite: Image.Image
    centre: tuple[float, float]
    swing: tuple[float, float]
    period: tuple[float, float]
    phase: tuple[float, float]

    def position(self, seconds: float) -> tuple[int, int]:
        """Top-left corner of the sprite at ``seconds`` (a Lissajous path)."""
        x = self.centre[0] + self.swing[0] * math.sin(
            math.tau * seconds / self.period[0] + self.phase[0]
        )
        y = self.centre[1] + self.swing[1] * math.sin(
            math.tau * seconds / self.period[1] + self.phase[1]
        )
        return round(x - self.sprite.width / 2), round(y - self.sprite.height / 2)


class _Item:
    """A seeded composition that can be drawn at any point in time."""

    def __init__(self, *, prompt: str, label: str, seed: int, width: int, height: int) -> None:
        rng = _rng("scene", seed, prompt, label)
        self._width = width
        self._height = height
        self._pan = max(1, min(width, height) // 10)
        self._background = _gradient(rng, width + 2 * self._pan, height + 2 * self._pan)
        self._pan_period = rng.uniform(6.0, 12.0)
        base_hue = rng.random()
        self._shapes = [
            _Shape(
                sprite=_sprite(
                    ellipse=rng.random() < 0.6,
                    colour=_hsv(base_hue + rng.uniform(0.2, 0.8), 0.7, 1.0),
                    opacity=rng.randint(90, 170),
                    size=max(2, round(rng.uniform(0.16, 0.44) * min(width, height))),
                ),
                centre=(rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.7) * height),
                swing=(rng.uniform(0.1, 0.3) * width, rng.uniform(0.05, 0.2) * height),
                period=(rng.uniform(2.5, 7.0), rng.uniform(2.5, 7.0)),
                phase=(rng.uniform(0, math.tau), rng.uniform(0, math.tau)),
            )
            for _ in range(rng.randint(4, 7))
        ]
        self._overlays = _text_overlays(prompt, label, width, height)

    def frame(self, seconds: float, *, progress: float | None = None) -> Image.Image:
        """Draw the item at ``seconds``; ``progress`` (0..1) adds a progress bar."""
        angle = math.tau * seconds / self._pan_period
        left = round(self._pan * (1 + math.sin(angle)))
        top = round(self._pan * (1 + math.cos(angle)))
        image = self._background.crop((left, top, left + self._width, top + self._height))
        for shape in self._shapes:
            image.paste(shape.sprite, shape.position(seconds), shape.sprite)
        for overlay, position in self._overlays:
            image.paste(overlay, position, overlay)
        if progress is not None:
            bar = max(2, self._height // 90)
            ImageDraw.Draw(image, "RGBA").rectangle(
                (0, self._height - bar, round(self._width * progress), self._height),
                fill=(255, 255, 255, 200),
            )
        return image


def _sprite(*, ellipse: bool, colour: _Colour, opacity: int, size: int) -> Image.Image:
    """A translucent ellipse or rounded square, pre-rendered once and pasted per frame."""
    # Drawing the shape into its own mask avoids the seams that translucent fills
    # leave where Pillow's rounded-rectangle parts overlap.
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    box = (0, 0, size - 1, size - 1)
    if ellipse:
        draw.ellipse(box, fill=opacity)
    else:
        draw.rounded_rectangle(box, radius=size // 8, fill=opacity)
    sprite = Image.new("RGBA", (size, size), (*colour, 0))
    sprite.putalpha(mask)
    return sprite


def _gradient(rng: random.Random, width: int, height: int) -> Image.Image:
    """A smooth four-corner colour gradient, made by upscaling a 2x2 image."""
    hue = rng.random()
    corners = Image.new("RGB", (2, 2))
    corners.putdata(
        [
            _hsv(hue, 0.65, 0.35),
            _hsv(hue + 0.12, 0.7, 0.55),
            _hsv(hue - 0.1, 0.6, 0.45),
            _hsv(hue + 0.3, 0.75, 0.25),
        ]
    )
    # Sampling between the pixel centres stretches the blend over the whole image
    # instead of leaving flat bands along the edges.
    return corners.resize((width, height), Image.Resampling.BICUBIC, box=(0.5, 0.5, 1.5, 1.5))


def _text_overlays(
    prompt: str, label: str, width: int, height: int
) -> list[tuple[Image.Image, tuple[int, int]]]:
    """Pre-rendered RGBA patches, with their positions, for the label and the prompt."""
    margin = max(4, height // 24)
    overlays: list[tuple[Image.Image, tuple[int, int]]] = []
    label_font = ImageFont.load_default(size=max(10, height // 16))
    label_text = " ".join(label.split())
    if label_text:
        line = _fit(label_text, label_font, width - 4 * margin)
        overlays.append((_text_patch([line], label_font, margin // 2), (margin, margin)))
    prompt_font = ImageFont.load_default(size=max(9, height // 20))
    lines = _wrap(prompt, prompt_font, width - 4 * margin, max_lines=3)
    if lines:
        patch = _text_patch(lines, prompt_font, margin // 2)
        overlays.append((patch, (margin, height - margin - patch.height)))
    return overlays


def _text_patch(lines: list[str], font: _Font, padding: int) -> Image.Image:
    """White text lines on a translucent dark rounded backdrop."""
    line_height = round(_font_size(font) * 1.3)
    text_width = max(math.ceil(font.getlength(line)) for line in lines)
    size = (text_width + 2 * padding, line_height * len(lines) + 2 * padding)
    patch = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(patch)
    draw.rounded_rectangle((0, 0, size[0] - 1, size[1] - 1), radius=padding, fill=(0, 0, 0, 140))
    for row, line in enumerate(lines):
        draw.text((padding, padding + row * line_height), line, font=font, fill=(255, 255, 255))
    return patch


def _font_size(font: _Font) -> float:
    return font.size if isinstance(font, ImageFont.FreeTypeFont) else 11.0


def _wrap(text: str, font: _Font, max_width: int, *, max_lines: int) -> list[str]:
    """Greedy word wrap to ``max_width`` pixels, ending with an ellipsis if cut short."""
    words = text.split()
    lines: list[str] = []
    index = 0
    while index < len(words) and len(lines) < max_lines:
        line = words[index]
        index += 1
        while index < len(words) and font.getlength(f"{line} {words[index]}") <= max_width:
            line = f"{line} {words[index]}"
            index += 1
        lines.append(_fit(line, font, max_width))
    if index < len(words):
        lines[-1] = _fit(lines[-1], font, max_width, truncated=True)
    return lines


def _fit(line: str, font: _Font, max_width: int, *, truncated: bool = False) -> str:
    """``line`` shortened with an ellipsis until it fits ``max_width`` pixels."""
    if not truncated and font.getlength(line) <= max_width:
        return line
    while line and font.getlength(line + _ELLIPSIS) > max_width:
        line = line[:-1]
    return line.rstrip() + _ELLIPSIS


# --- sound ----------------------------------------------------------------------------


class _Chord:
    """A soft sustained chord with a gentle swell, faded in and out over the track."""

    _FADE_SECONDS = 0.4
    _GAIN = 0.12

    def __init__(self, *, seed: int, prompt: str, label: str, total_samples: int) -> None:
        rng = _rng("chord", seed, prompt, label)
        root = 110.0 * 2 ** (rng.randrange(12) / 12)
        ratios = rng.choice(
            [(1.0, 1.25, 1.5), (1.0, 1.2, 1.5), (1.0, 1.5, 2.0), (1.0, 1.25, 1.875)]
        )
        # Whole-hertz tones (and a 1 Hz swell) repeat exactly every second, so one
        # second is computed and then looped instead of evaluated sample by sample.
        low, mid, high = (round(root * ratio) for ratio in ratios)
        rate = _VIDEO_AUDIO_RATE
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
        frame.sample_rate = _VIDEO_AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, _VIDEO_AUDIO_RATE)
        return frame


_WORD = re.compile(r"[\w'\u2019-]+([,;:]|[.!?…]+)?")
_VOWEL_GROUP = re.compile(r"[aeiouyàáâäèéêëìíîïòóôöùúûü]+", re.IGNORECASE)
_TABLE_SIZE = 1024
_ENVELOPE_STEPS = 256
# sin(pi x)^0.6 rises quickly and lingers, like a spoken vowel.
_SYLLABLE_ENVELOPE = [
    math.sin(math.pi * i / _ENVELOPE_STEPS) ** 0.6 for i in range(_ENVELOPE_STEPS)
]
# Harmonic emphasis (harmonic number -> boost) loosely imitating vowel formants.
_VOWEL_FORMANTS = ((3, 9), (4, 7), (2, 14), (3, 5), (2, 4))


def _synthesise_speech(
    text: str, seed: int, words_per_minute: int, checkpoint: Checkpoint | None
) -> array[int]:
    """16-bit samples of a syllable-paced buzz whose length follows the word count."""
    words = [(match.group(0), match.group(1) or "") for match in _WORD.finditer(text)]
    duration = max(_MIN_SPEECH_SECONDS, len(words) * 60.0 / words_per_minute)
    # Time units: 1 per syllable, 0.3 between words, more after punctuation.
    plan: list[tuple[bool, float]] = []
    for word, punctuation in words:
        plan.extend((True, 1.0) for _ in range(max(1, len(_VOWEL_GROUP.findall(word)))))
        plan.append((False, _pause_units(punctuation)))
    total_units = sum(units for _, units in plan) or 1.0
    total_samples = round(duration * _SPEECH_RATE)
    samples = array("h", bytes(2 * total_samples))

    rng = _rng("speech", seed, text)
    tables = [_vowel_table(low, high) for low, high in _VOWEL_FORMANTS]
    base_pitch = rng.uniform(95.0, 210.0)
    position = 0
    elapsed_units = 0.0
    phase = 0.0
    for voiced, units in plan:
        elapsed_units += units
        end = round(total_samples * elapsed_units / total_units)
        if voiced:
            if checkpoint is not None:
                checkpoint()
            phase = _voice_syllable(
                samples,
                position,
                end,
                table=rng.choice(tables),
                pitch=base_pitch * rng.uniform(0.88, 1.12) * (1 - 0.1 * position / total_samples),
                loudness=rng.uniform(0.55, 1.0),
                phase=phase,
                rng=rng,
            )
        position = end
    return samples


def _pause_units(punctuation: str) -> float:
    """Silence after a word, in syllable units: longer after clause and sentence ends."""
    if not punctuation:
        return 0.3
    return 1.1 if punctuation[0] in ",;:" else 1.9


def _vowel_table(first_boost: int, second_boost: int) -> array[float]:
    """One period of a buzzy waveform with two emphasised harmonics, peak 1."""
    weights = {harmonic: 1.0 / harmonic for harmonic in range(1, 16)}
    weights[first_boost] += 0.9
    weights[second_boost] += 0.5
    table = array(
        "d",
        (
            sum(w * math.sin(math.tau * h * i / _TABLE_SIZE) for h, w in weights.items())
            for i in range(_TABLE_SIZE)
        ),
    )
    peak = max(abs(value) for value in table)
    return array("d", (value / peak for value in table))


def _voice_syllable(
    samples: array[int],
    start: int,
    end: int,
    *,
    table: array[float],
    pitch: float,
    loudness: float,
    phase: float,
    rng: random.Random,
) -> float:
    """Render one syllable into ``samples[start:end]``; returns the oscillator phase."""
    length = end - start
    onset = min(length, _SPEECH_RATE // 60)
    amplitude = 0.5 * 32767 * loudness
    step = pitch * _TABLE_SIZE / _SPEECH_RATE
    for offset in range(length):
        x = offset / length
        # The pitch falls slightly across the syllable, as in natural speech.
        phase = (phase + step * (1.0 - 0.08 * x)) % _TABLE_SIZE
        value = table[int(phase)] * _SYLLABLE_ENVELOPE[int(x * _ENVELOPE_STEPS)]
        if offset < onset:
            # A short noise burst stands in for the consonant that opens the syllable.
            value = 0.6 * value + 0.25 * rng.uniform(-1.0, 1.0) * (1 - offset / onset)
        samples[start + offset] = round(amplitude * value)
    return phase


def _write_wav(target: Path, samples: array[int]) -> None:
    """Write 16-bit mono PCM samples as a WAV file."""
    if sys.byteorder == "big":
        samples = array("h", samples)
        samples.byteswap()
    with wave.open(str(target), "wb") as output:
        output.setnchannels(1)
        output.setsampwidth(2)
        output.setframerate(_SPEECH_RATE)
        output.writeframes(samples.tobytes())


def _speak_with_espeak(
    espeak: str, target: Path, text: str, words_per_minute: int, checkpoint: Checkpoint | None
) -> None:
    """Speak ``text`` into ``target`` with espeak-ng, polling ``checkpoint`` while it runs."""
    speed = min(max(words_per_minute, 80), 450)  # the range espeak-ng accepts
    command = [espeak, "-w", str(target), "-s", str(speed)]
    # The argument list is passed without a shell; "--" keeps text from being read as options.
    process = subprocess.Popen(  # noqa: S603
        [*command, "--", text],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + _ESPEAK_TIMEOUT_SECONDS
    try:
        while True:
            try:
                _, errors = process.communicate(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise RuntimeError("espeak-ng timed out") from None
                if checkpoint is not None:
                    checkpoint()
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"espeak-ng failed ({process.returncode}): {errors.strip()}")
