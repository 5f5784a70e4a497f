"""Speech for the local provider: a 16-bit mono WAV spoken by espeak-ng when it is
installed, otherwise by a built-in deterministic synthesiser."""

from __future__ import annotations

import math
import random
import re
import shutil
import subprocess
import sys
import time
import wave
from array import array
from pathlib import Path

from generations.providers.base import ItemRequest
from generations.providers.local.common import Checkpoint, removed_on_error, seeded_rng

_SPEECH_RATE = 22050
_MIN_SPEECH_SECONDS = 0.5
_ESPEAK_TIMEOUT_SECONDS = 120.0


def render_item(request: ItemRequest, seed: int) -> Path:
    """Render the speech of ``request`` into its workdir; returns the file."""
    target = request.workdir / "track.wav"
    render_speech(
        target,
        text=request.prompt,
        seed=seed,
        words_per_minute=int(request.parameters["words_per_minute"]),
        checkpoint=request.checkpoint,
    )
    return target


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
    with removed_on_error(target):
        if espeak is not None and text.strip():
            _speak_with_espeak(espeak, target, text, words_per_minute, checkpoint)
        else:
            _write_wav(target, _synthesise_speech(text, seed, words_per_minute, checkpoint))


# --- espeak-ng ------------------------------------------------------------------------


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


# --- built-in synthesiser -------------------------------------------------------------

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

    rng = seeded_rng("speech", seed, text)
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
