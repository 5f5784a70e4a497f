import hashlib
import shutil
import wave
from pathlib import Path

import av
import pytest
from PIL import Image

from generations.kinds import split_speech_sections
from generations.providers.local.image import render_image
from generations.providers.local.speech import render_speech
from generations.providers.local.video import render_video
from tests.tiers import services_required

PROMPT = "A paper boat drifting down a rainy street, reflections of neon signs"
HAS_ESPEAK = shutil.which("espeak-ng") is not None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 22050)
        return wav.getnframes() / wav.getframerate()


@pytest.fixture
def no_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)


class Abort(Exception):
    pass


# --- video ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [2, 11])
def test_video_is_deterministic_across_repeated_renders(tmp_path: Path, seed: int) -> None:
    # 320 px is 20 macroblocks, not a multiple of 8: the width at which x264's AVX-512
    # mbtree code read leftover heap memory, so repeated renders in one process differed.
    def render(name: str) -> str:
        target = tmp_path / name
        render_video(
            target,
            prompt="Offer: something",
            label="ultra",
            seed=seed,
            duration_seconds=2,
            width=320,
            height=180,
            fps=24,
        )
        return sha256(target)

    checksums = [render(f"run{index}.mp4") for index in range(5)]
    render_video(
        tmp_path / "other.mp4",
        prompt=PROMPT,
        label="B",
        seed=seed + 1,
        duration_seconds=1,
        width=352,
        height=198,
    )
    checksums.append(render("after_other.mp4"))

    assert checksums == [checksums[0]] * 6
    with av.open(str(tmp_path / "run0.mp4")) as container:
        assert len(container.streams.audio) == 1


def test_video_changes_with_seed(tmp_path: Path) -> None:
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"

    render_video(first, prompt=PROMPT, label="A", seed=11, duration_seconds=1)
    render_video(second, prompt=PROMPT, label="A", seed=12, duration_seconds=1)

    assert sha256(first) != sha256(second)


def test_video_streams_and_faststart(tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4"

    render_video(
        target, prompt=PROMPT, label="B", seed=1, duration_seconds=2, width=320, height=180
    )

    with av.open(str(target)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        assert (video.codec_context.name, video.width, video.height) == ("h264", 320, 180)
        assert video.format.name == "yuv420p"
        assert video.frames == 48
        assert audio.codec_context.name == "aac"
    data = target.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")


def test_video_without_audio(tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4"

    render_video(target, prompt=PROMPT, label="C", seed=1, duration_seconds=0.5, with_audio=False)

    with av.open(str(target)) as container:
        assert len(container.streams.video) == 1
        assert len(container.streams.audio) == 0


def test_video_calls_checkpoint_every_twelve_frames(tmp_path: Path) -> None:
    calls: list[int] = []

    render_video(
        tmp_path / "clip.mp4",
        prompt=PROMPT,
        label="A",
        seed=1,
        duration_seconds=1,
        checkpoint=lambda: calls.append(1),
    )

    assert len(calls) == 2  # frames 0 and 12 of 24


def test_raising_checkpoint_aborts_video_and_removes_file(tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4"
    calls: list[int] = []

    def checkpoint() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise Abort

    with pytest.raises(Abort):
        render_video(
            target,
            prompt=PROMPT,
            label="A",
            seed=1,
            duration_seconds=10,
            checkpoint=checkpoint,
        )

    assert len(calls) == 2
    assert not target.exists()


@pytest.mark.parametrize(
    ("width", "height", "duration"), [(641, 360, 1.0), (640, 0, 1.0), (640, 360, 0.0)]
)
def test_video_rejects_bad_arguments(
    tmp_path: Path, width: int, height: int, duration: float
) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        render_video(
            tmp_path / "clip.mp4",
            prompt=PROMPT,
            label="A",
            seed=1,
            duration_seconds=duration,
            width=width,
            height=height,
        )


# --- speech ---------------------------------------------------------------------------


@pytest.mark.usefixtures("no_espeak")
def test_synthesised_speech_is_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"

    render_speech(first, text="Hello there, world. How are you?", seed=5)
    render_speech(second, text="Hello there, world. How are you?", seed=5)

    assert sha256(first) == sha256(second)


@pytest.mark.usefixtures("no_espeak")
def test_synthesised_speech_changes_with_seed(tmp_path: Path) -> None:
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"

    render_speech(first, text="Hello there, world.", seed=5)
    render_speech(second, text="Hello there, world.", seed=6)

    assert sha256(first) != sha256(second)


@pytest.mark.usefixtures("no_espeak")
def test_synthesised_speech_length_follows_words(tmp_path: Path) -> None:
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"

    render_speech(short, text="one two three four", seed=1, words_per_minute=120)
    render_speech(long, text=" ".join(["word"] * 40), seed=1, words_per_minute=120)

    assert wav_seconds(short) == pytest.approx(2.0, abs=0.01)
    assert wav_seconds(long) == pytest.approx(20.0, abs=0.01)


@pytest.mark.usefixtures("no_espeak")
@pytest.mark.parametrize("text", ["", "   ", "Hi"])
def test_synthesised_speech_has_a_minimum_length(tmp_path: Path, text: str) -> None:
    target = tmp_path / "speech.wav"

    render_speech(target, text=text, seed=1)

    assert wav_seconds(target) == pytest.approx(0.5, abs=0.01)


@pytest.mark.usefixtures("no_espeak")
def test_synthesised_speech_checkpoint_can_abort(tmp_path: Path) -> None:
    target = tmp_path / "speech.wav"

    def checkpoint() -> None:
        raise Abort

    with pytest.raises(Abort):
        render_speech(target, text="Stop me now", seed=1, checkpoint=checkpoint)

    assert not target.exists()


def test_espeak_speech_is_deterministic_and_grows_with_text(tmp_path: Path) -> None:
    if not HAS_ESPEAK:
        # .ci/run installs espeak-ng, so under REQUIRE_SERVICES=1 its absence is a failure.
        if services_required():
            pytest.fail("REQUIRE_SERVICES=1 but espeak-ng is not installed")
        pytest.skip("espeak-ng is not installed: the built-in voice is tested instead")
    short, again, long = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    sentence = "-- The rain keeps falling on the quiet harbour."

    render_speech(short, text=sentence, seed=1)
    render_speech(again, text=sentence, seed=1)
    render_speech(long, text=" ".join([sentence] * 4), seed=1)

    assert sha256(short) == sha256(again)
    assert wav_seconds(long) > 2 * wav_seconds(short) > 0


# --- image ----------------------------------------------------------------------------


def test_image_is_deterministic_png(tmp_path: Path) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"

    render_image(first, prompt=PROMPT, label="A", seed=9)
    render_image(second, prompt=PROMPT, label="A", seed=9)

    assert sha256(first) == sha256(second)
    with Image.open(first) as image:
        assert (image.format, image.size) == ("PNG", (1024, 576))


@pytest.mark.parametrize(
    ("prompt", "label", "seed"),
    [(PROMPT, "A", 10), ("Something else entirely", "A", 9), (PROMPT, "B", 9)],
    ids=["seed", "prompt", "label"],
)
def test_image_changes_with_arguments(tmp_path: Path, prompt: str, label: str, seed: int) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"

    render_image(first, prompt=PROMPT, label="A", seed=9, width=320, height=180)
    render_image(second, prompt=prompt, label=label, seed=seed, width=320, height=180)

    assert sha256(first) != sha256(second)


def test_image_handles_long_and_empty_text(tmp_path: Path) -> None:
    target = tmp_path / "a.png"

    render_image(target, prompt="word " * 500 + "x" * 400, label="", seed=1, width=200, height=120)

    with Image.open(target) as image:
        assert image.size == (200, 120)


# --- speech sections ------------------------------------------------------------------


def test_sections_one_per_sentence() -> None:
    text = (
        "The harbour was quiet before dawn. Fishing boats rocked gently at their moorings! "
        "Would the storm arrive before the tide turned?"
    )

    assert split_speech_sections(text) == [
        "The harbour was quiet before dawn.",
        "Fishing boats rocked gently at their moorings!",
        "Would the storm arrive before the tide turned?",
    ]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t"])
def test_sections_of_blank_text(text: str) -> None:
    assert split_speech_sections(text) == []


def test_sections_merge_very_short_sentences() -> None:
    text = "Yes. No. The long answer takes rather more words than either of those."

    assert split_speech_sections(text) == [
        "Yes. No. The long answer takes rather more words than either of those."
    ]


def test_short_final_sentence_joins_the_previous_one() -> None:
    text = "This sentence is comfortably long enough to stand on its own. Done."

    assert split_speech_sections(text) == [text]


def test_sections_split_long_sentences_at_word_boundaries() -> None:
    words = [f"word{i}" for i in range(200)]
    text = " ".join(words) + "."

    sections = split_speech_sections(text, max_chars=100)

    assert len(sections) > 1
    assert all(0 < len(section) <= 100 for section in sections)
    assert " ".join(sections).split() == text.split()


def test_sections_cut_a_word_longer_than_the_limit() -> None:
    sections = split_speech_sections("a " + "x" * 25 + " b", max_chars=10)

    assert all(0 < len(section) <= 10 for section in sections)
    assert "".join(sections).replace(" ", "") == "a" + "x" * 25 + "b"


def test_sections_normalise_whitespace_and_split_paragraphs() -> None:
    text = (
        "  First paragraph line\nwraps here without a full stop\n\nSecond paragraph starts here  "
    )

    assert split_speech_sections(text) == [
        "First paragraph line wraps here without a full stop",
        "Second paragraph starts here",
    ]


def test_sections_keep_closing_quotes_with_their_sentence() -> None:
    text = 'She whispered, "Nobody is coming back tonight." Then the lights went out for good.'

    assert split_speech_sections(text) == [
        'She whispered, "Nobody is coming back tonight."',
        "Then the lights went out for good.",
    ]


def test_sections_reject_non_positive_limit() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        split_speech_sections("Hello.", max_chars=0)
