import hashlib
import os
import wave
from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image

from generations.media.previews import (
    image_thumbnail,
    keyframe_thumbnails,
    video_thumbnail,
    waveform_png,
)
from generations.media.probe import MediaError, file_checksum, probe
from generations.providers.local.image import render_image
from generations.providers.local.video import render_video


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "item.mp4"
    render_video(path, prompt="A red fox in fresh snow", label="A", seed=3, duration_seconds=3)
    return path


@pytest.fixture(scope="module")
def silent_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "silent.mp4"
    render_video(path, prompt="No sound", label="B", seed=4, duration_seconds=1, with_audio=False)
    return path


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "still.png"
    render_image(path, prompt="A lighthouse", label="A", seed=5)
    return path


def write_tone_wav(path: Path, *, seconds: float, amplitude: int = 12000) -> None:
    rate = 22050
    frames = bytearray()
    for n in range(round(seconds * rate)):
        value = amplitude if (n // 50) % 2 else -amplitude
        frames += value.to_bytes(2, "little", signed=True)
    with wave.open(str(path), "wb") as output:
        output.setnchannels(1)
        output.setsampwidth(2)
        output.setframerate(rate)
        output.writeframes(bytes(frames))


def test_probe_rendered_mp4(video: Path) -> None:
    info = probe(video)

    assert info.content_type == "video/mp4"
    assert info.video_codec == "h264"
    assert info.audio_codec == "aac"
    assert (info.width, info.height) == (640, 360)
    assert info.duration_seconds is not None
    assert abs(info.duration_seconds - 3.0) < 0.1
    assert info.frame_rate == pytest.approx(24.0)
    assert info.file_size == video.stat().st_size
    assert info.checksum == hashlib.sha256(video.read_bytes()).hexdigest()


def test_probe_video_without_audio(silent_video: Path) -> None:
    info = probe(silent_video)

    assert info.video_codec == "h264"
    assert info.audio_codec is None


def test_probe_wav(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    write_tone_wav(path, seconds=1.5)

    info = probe(path)

    assert info.content_type == "audio/wav"
    assert info.audio_codec == "pcm_s16le"
    assert info.video_codec is None
    assert info.width is None
    assert info.height is None
    assert info.frame_rate is None
    assert info.duration_seconds == pytest.approx(1.5, abs=0.01)


def test_probe_png(png: Path) -> None:
    info = probe(png)

    assert info.content_type == "image/png"
    assert (info.width, info.height) == (1024, 576)
    assert info.duration_seconds is None
    assert info.video_codec is None
    assert info.audio_codec is None


def test_probe_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(path, format="JPEG")

    info = probe(path)

    assert info.content_type == "image/jpeg"
    assert (info.width, info.height) == (40, 30)


def test_file_checksum_matches_hashlib_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))

    assert file_checksum(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_video_thumbnail_is_jpeg_keeping_aspect(video: Path, tmp_path: Path) -> None:
    target = tmp_path / "thumb.jpg"

    video_thumbnail(video, target)

    with Image.open(target) as image:
        assert image.format == "JPEG"
        assert image.size == (320, 180)


def test_video_thumbnail_follows_requested_time(video: Path, tmp_path: Path) -> None:
    early, late = tmp_path / "early.jpg", tmp_path / "late.jpg"

    video_thumbnail(video, early, at_seconds=0.0)
    video_thumbnail(video, late, at_seconds=2.5)

    assert early.read_bytes() != late.read_bytes()


def test_video_thumbnail_is_not_upscaled(video: Path, tmp_path: Path) -> None:
    target = tmp_path / "thumb.jpg"

    video_thumbnail(video, target, width=4000)

    with Image.open(target) as image:
        assert image.size == (640, 360)


def test_video_thumbnail_applies_display_rotation(tmp_path: Path) -> None:
    source, target = tmp_path / "rotated.mp4", tmp_path / "thumb.jpg"
    picture = Image.new("RGB", (640, 360), (255, 0, 0))
    picture.paste((0, 0, 255), (0, 0, 120, 360))  # blue band along the left edge
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.set_display_rotation(90)
        for index in range(6):
            frame = av.VideoFrame.from_image(picture)
            frame.pts, frame.time_base = index, Fraction(1, 24)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))

    video_thumbnail(source, target)

    with Image.open(target) as image:
        assert image.size == (320, 569)
        # A quarter turn counter-clockwise moves the left band to the bottom.
        assert image.getpixel((160, image.height - 10)) == pytest.approx((0, 0, 255), abs=40)
        assert image.getpixel((160, 10)) == pytest.approx((255, 0, 0), abs=40)


def test_keyframe_thumbnails(video: Path, tmp_path: Path) -> None:
    paths = keyframe_thumbnails(video, tmp_path / "frames")

    assert [path.name for path in paths] == ["keyframe_1.jpg", "keyframe_2.jpg", "keyframe_3.jpg"]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "JPEG"
            assert image.size == (320, 180)
    assert len({path.read_bytes() for path in paths}) == 3


def test_waveform_png_of_wav(tmp_path: Path) -> None:
    source, target = tmp_path / "tone.wav", tmp_path / "wave.png"
    write_tone_wav(source, seconds=2.0)

    waveform_png(source, target)

    with Image.open(target) as image:
        assert image.format == "PNG"
        assert image.size == (400, 60)
        alpha = image.getchannel("A")
        # A steady full-length tone fills every column from top to bottom.
        assert alpha.getpixel((0, 0)) == 255
        assert alpha.getpixel((399, 59)) == 255


def test_waveform_png_of_video_audio(video: Path, tmp_path: Path) -> None:
    target = tmp_path / "wave.png"

    waveform_png(video, target, width=200, height=40)

    with Image.open(target) as image:
        assert image.size == (200, 40)
        assert image.getchannel("A").getbbox() is not None


def test_waveform_png_of_silence_is_a_flat_line(tmp_path: Path) -> None:
    source, target = tmp_path / "silence.wav", tmp_path / "wave.png"
    write_tone_wav(source, seconds=0.5, amplitude=0)

    waveform_png(source, target, width=100, height=21)

    with Image.open(target) as image:
        assert image.getchannel("A").getbbox() == (0, 10, 100, 11)


def test_waveform_needs_audio(silent_video: Path, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no audio"):
        waveform_png(silent_video, tmp_path / "wave.png")


def test_image_thumbnail(png: Path, tmp_path: Path) -> None:
    target = tmp_path / "thumb.jpg"

    image_thumbnail(png, target)

    with Image.open(target) as image:
        assert image.format == "JPEG"
        assert image.size == (320, 180)


def test_image_thumbnail_flattens_transparency(tmp_path: Path) -> None:
    source, target = tmp_path / "clear.png", tmp_path / "thumb.jpg"
    Image.new("RGBA", (640, 640), (0, 0, 0, 0)).save(source)

    image_thumbnail(source, target)

    with Image.open(target) as image:
        assert image.size == (320, 320)
        assert image.convert("RGB").getpixel((5, 5)) == (255, 255, 255)


def test_thumbnail_of_audio_is_rejected(tmp_path: Path) -> None:
    source = tmp_path / "tone.wav"
    write_tone_wav(source, seconds=0.2)

    with pytest.raises(MediaError, match="no video"):
        video_thumbnail(source, tmp_path / "thumb.jpg")


@pytest.mark.parametrize(
    "action",
    [
        lambda source, out: probe(source),
        lambda source, out: video_thumbnail(source, out / "t.jpg"),
        lambda source, out: keyframe_thumbnails(source, out),
        lambda source, out: waveform_png(source, out / "w.png"),
        lambda source, out: image_thumbnail(source, out / "t.jpg"),
    ],
    ids=["probe", "video_thumbnail", "keyframe_thumbnails", "waveform_png", "image_thumbnail"],
)
def test_garbage_bytes_raise_media_error(action, tmp_path: Path) -> None:
    source = tmp_path / "garbage.mp4"
    source.write_bytes(b"\x00\x13 definitely not media \xff" * 500)

    with pytest.raises(MediaError):
        action(source, tmp_path)


@pytest.mark.parametrize(
    "action",
    [
        lambda source, out: probe(source),
        lambda source, out: file_checksum(source),
        lambda source, out: video_thumbnail(source, out / "t.jpg"),
        lambda source, out: waveform_png(source, out / "w.png"),
        lambda source, out: image_thumbnail(source, out / "t.jpg"),
    ],
    ids=["probe", "file_checksum", "video_thumbnail", "waveform_png", "image_thumbnail"],
)
def test_missing_file_raises_media_error(action, tmp_path: Path) -> None:
    with pytest.raises(MediaError):
        action(tmp_path / "missing.mp4", tmp_path)
