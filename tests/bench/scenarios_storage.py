"""Large objects: saving to the S3 server and drawing a thumbnail, in child processes."""

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image

from tests.bench.database import ROOT
from tests.bench.measure import Result

MB = 1024 * 1024


def _probe(mode: str, path: Path) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "tests.bench.storage_probe", mode, str(path)],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def large_file(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        chunk = os.urandom(MB)
        for _ in range(size // MB):
            handle.write(chunk)
    return path


def large_video(path: Path, size: int) -> Path:
    """An MJPEG video of about `size` bytes: a few noise frames encoded once, their
    packets muxed again and again (cheap to make, costly to read whole)."""
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuvj420p"
        stream.time_base = Fraction(1, 25)
        packets: list[bytes] = []
        for _ in range(8):
            image = Image.frombytes("RGB", (1280, 720), os.urandom(1280 * 720 * 3))
            frame = av.VideoFrame.from_image(image)
            packets.extend(bytes(packet) for packet in stream.encode(frame))
        written, number = 0, 0
        while written < size:
            data = packets[number % len(packets)]
            packet = av.Packet(data)
            packet.stream = stream
            packet.pts = packet.dts = number
            packet.time_base = stream.time_base
            container.mux(packet)
            written += len(data)
            number += 1
    return path


def storage(*, directory: Path, size: int, repeats: int) -> list[Result]:
    source = large_file(directory / "large.bin", size)
    video = large_video(directory / "large.mkv", size)
    results = []
    for label, candidate, baseline, path, what in (
        (
            "object_save to S3 vs storage.save(ContentFile(f.read()))",
            "object_save",
            "naive_save",
            source,
            "file",
        ),
        (
            "video_thumbnail vs decoding from bytes read whole",
            "thumbnail",
            "naive_thumbnail",
            video,
            "video",
        ),
    ):
        runs: dict[str, list[dict[str, Any]]] = {candidate: [], baseline: []}
        for _ in range(repeats):
            for mode in (candidate, baseline):
                runs[mode].append(_probe(mode, path))
        growth = max(run["growth_mb"] for run in runs[candidate])
        base_growth = max(run["growth_mb"] for run in runs[baseline])
        seconds = sorted(run["seconds"] for run in runs[candidate])[repeats // 2]
        base_seconds = sorted(run["seconds"] for run in runs[baseline])[repeats // 2]
        results.append(
            Result(
                section=f"Large objects ({path.stat().st_size / MB:.0f} MB {what})",
                name=label,
                target="peak RSS growth <= 64 MB (at 1 GB)",
                measured=f"+{growth:.1f} MB peak RSS, {seconds:.2f} s",
                baseline=f"+{base_growth:.1f} MB, {base_seconds:.2f} s",
                ratio=f"{growth / max(base_growth, 0.1):.2f}x memory",
                met=growth <= 64,
                data={"growth_mb": growth, "baseline_growth_mb": base_growth},
            )
        )
    return results
